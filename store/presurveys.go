package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"parley/routing"
)

// Pre-conversation survey limits (issue 9): Meta allows 13 quick replies
// of at most 20 characters each.
const (
	MaxPreSurveyQuestions = 10
	MaxPreSurveyChoices   = 13
	MaxChoiceTitle        = 20
	MaxQuestionText       = 1000

	DefaultPreSurveyQuestionTimeout = 10 * time.Minute
	DefaultPreSurveyTimeout         = 30 * time.Minute
)

// Pre-conversation survey statuses of a conversation.
const (
	PreSurveyAsking   = "asking"
	PreSurveyAnswered = "answered"
	PreSurveyTimedOut = "timed_out" // routed with what was answered
	PreSurveyNotSent  = "not_sent"  // outside the 24-hour window
	// PreSurveyInterrupted: an agent took the conversation before it ended.
	PreSurveyInterrupted = "interrupted"
)

// PreSurveyQuestion is one question: free text when Choices is empty,
// otherwise a choice by quick replies.
type PreSurveyQuestion struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Choices  []string `json:"choices,omitempty"`
	Required bool     `json:"required"`
}

// PreSurvey is a workstream's pre-conversation survey.
type PreSurvey struct {
	WorkstreamID    string              `json:"workstream_id"`
	Enabled         bool                `json:"enabled"`
	Questions       []PreSurveyQuestion `json:"questions"`
	QuestionTimeout time.Duration       `json:"question_timeout"`
	Timeout         time.Duration       `json:"timeout"`
	UpdatedAt       time.Time           `json:"updated_at"`
}

// DefaultPreSurvey is a disabled survey without questions.
func DefaultPreSurvey(workstreamID string) PreSurvey {
	return PreSurvey{WorkstreamID: workstreamID, Questions: []PreSurveyQuestion{},
		QuestionTimeout: DefaultPreSurveyQuestionTimeout, Timeout: DefaultPreSurveyTimeout}
}

func (p *PreSurvey) normalize() error {
	if p.Questions == nil {
		p.Questions = []PreSurveyQuestion{}
	}
	if len(p.Questions) > MaxPreSurveyQuestions {
		return fieldErrorf("questions", "at most %d questions, got %d", MaxPreSurveyQuestions, len(p.Questions))
	}
	if p.Enabled && len(p.Questions) == 0 {
		return fieldErrorf("questions", "an enabled survey needs at least one question")
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"question_timeout", p.QuestionTimeout}, {"timeout", p.Timeout}} {
		if f.d < MinSurveyTimeout || f.d > MaxSurveyTimeout {
			return fieldErrorf(f.name, "%s must be between %s and %s (Meta's window)", f.name, MinSurveyTimeout, MaxSurveyTimeout)
		}
	}
	seen := map[string]bool{}
	for i := range p.Questions {
		q := &p.Questions[i]
		at := fmt.Sprintf("questions[%d]", i)
		q.ID, q.Text = strings.TrimSpace(q.ID), strings.TrimSpace(q.Text)
		switch {
		case !routing.ValidQuestionID(q.ID):
			return fieldErrorf(at+".id", "a question id is %s", routing.QuestionIDRule)
		case seen[q.ID]:
			return fieldErrorf(at+".id", "question id %q is used twice", q.ID)
		case q.Text == "":
			return fieldErrorf(at+".text", "the question may not be empty")
		case utf8.RuneCountInString(q.Text) > MaxQuestionText:
			return fieldErrorf(at+".text", "the question is longer than %d characters", MaxQuestionText)
		case len(q.Choices) > MaxPreSurveyChoices:
			return fieldErrorf(at+".choices", "at most %d choices (Meta's quick replies), got %d", MaxPreSurveyChoices, len(q.Choices))
		}
		seen[q.ID] = true
		titles := map[string]bool{}
		for j := range q.Choices {
			c := strings.TrimSpace(q.Choices[j])
			q.Choices[j] = c
			field := fmt.Sprintf("%s.choices[%d]", at, j)
			switch {
			case c == "":
				return fieldErrorf(field, "a choice may not be empty")
			case utf8.RuneCountInString(c) > MaxChoiceTitle:
				return fieldErrorf(field, "a choice has at most %d characters (Meta's quick reply titles)", MaxChoiceTitle)
			case titles[strings.ToLower(c)]:
				return fieldErrorf(field, "choice %q is listed twice", c)
			}
			titles[strings.ToLower(c)] = true
		}
	}
	return nil
}

type preSurveyRow struct {
	WorkstreamID           string    `db:"workstream_id"`
	Enabled                bool      `db:"enabled"`
	Questions              string    `db:"questions"`
	QuestionTimeoutSeconds int64     `db:"question_timeout_seconds"`
	TimeoutSeconds         int64     `db:"timeout_seconds"`
	UpdatedAt              time.Time `db:"updated_at"`
}

// PreSurveyOf returns the workstream's pre-survey: the disabled default
// when none was saved; ErrNotFound when the workstream does not exist.
func (s *Store) PreSurveyOf(ctx context.Context, workstreamID string) (_ PreSurvey, err error) {
	defer wrap(&err, "store.PreSurveyOf(%s)", workstreamID)
	if _, err := s.GetWorkstream(ctx, workstreamID); err != nil {
		return PreSurvey{}, err
	}
	return s.preSurvey(ctx, workstreamID)
}

func (s *Store) preSurvey(ctx context.Context, workstreamID string) (PreSurvey, error) {
	var r preSurveyRow
	err := get(ctx, s.db, &r, `SELECT workstream_id, enabled, questions, question_timeout_seconds, timeout_seconds, updated_at
		FROM workstream_pre_surveys WHERE workstream_id = ?`, workstreamID)
	if errors.Is(err, ErrNotFound) {
		return DefaultPreSurvey(workstreamID), nil
	}
	if err != nil {
		return PreSurvey{}, err
	}
	p := PreSurvey{WorkstreamID: r.WorkstreamID, Enabled: r.Enabled, QuestionTimeout: time.Duration(r.QuestionTimeoutSeconds) * time.Second,
		Timeout: time.Duration(r.TimeoutSeconds) * time.Second, UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Questions), &p.Questions); err != nil {
		return PreSurvey{}, fmt.Errorf("questions: %w", err)
	}
	return p, nil
}

// PreSurveyForPage is the pre-survey of the page's workstream (disabled
// when the page has none).
func (s *Store) PreSurveyForPage(ctx context.Context, pageRef string) (_ PreSurvey, err error) {
	defer wrap(&err, "store.PreSurveyForPage(%s)", pageRef)
	w, err := s.WorkstreamForPage(ctx, pageRef)
	if errors.Is(err, ErrNotFound) {
		return DefaultPreSurvey(""), nil
	}
	if err != nil {
		return PreSurvey{}, err
	}
	return s.preSurvey(ctx, w.ID)
}

// SavePreSurvey replaces the workstream's pre-survey. It returns a
// *FieldError (ErrInvalid) naming the field when p is invalid, ErrNotFound
// when the workstream does not exist.
func (s *Store) SavePreSurvey(ctx context.Context, p PreSurvey) (_ PreSurvey, err error) {
	defer wrap(&err, "store.SavePreSurvey(%s)", p.WorkstreamID)
	if err := p.normalize(); err != nil {
		return PreSurvey{}, err
	}
	if _, err := s.GetWorkstream(ctx, p.WorkstreamID); err != nil {
		return PreSurvey{}, err
	}
	qs, err := json.Marshal(p.Questions)
	if err != nil {
		return PreSurvey{}, fmt.Errorf("questions: %w", err)
	}
	p.UpdatedAt = utc(s.clock())
	_, err = exec(ctx, s.db, `INSERT INTO workstream_pre_surveys
		(workstream_id, enabled, questions, question_timeout_seconds, timeout_seconds, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (workstream_id) DO UPDATE SET enabled = excluded.enabled, questions = excluded.questions,
			question_timeout_seconds = excluded.question_timeout_seconds, timeout_seconds = excluded.timeout_seconds,
			updated_at = excluded.updated_at`,
		p.WorkstreamID, p.Enabled, string(qs), int64(p.QuestionTimeout/time.Second), int64(p.Timeout/time.Second),
		s.timestamp(p.UpdatedAt))
	return p, err
}

// PreSurveyAnswer is one answer, with its question's text as asked.
type PreSurveyAnswer struct {
	QuestionID string `json:"question_id"`
	Question   string `json:"question"`
	Answer     string `json:"answer"`
}

// PreSurveyResult is one conversation's pre-conversation survey.
type PreSurveyResult struct {
	ConversationID string            `json:"conversation_id"`
	WorkstreamID   string            `json:"workstream_id"`
	Status         string            `json:"status"`
	Answers        []PreSurveyAnswer `json:"answers"`
	TimedOut       bool              `json:"timed_out"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

type preSurveyResultRow struct {
	ConversationID string    `db:"conversation_id"`
	WorkstreamID   string    `db:"workstream_id"`
	Status         string    `db:"status"`
	Answers        string    `db:"answers"`
	TimedOut       bool      `db:"timed_out"`
	UpdatedAt      time.Time `db:"updated_at"`
}

// SavePreSurveyResult records the survey as the workflow sees it now (the
// whole row: a retried save writes the same).
func (s *Store) SavePreSurveyResult(ctx context.Context, v PreSurveyResult) (err error) {
	defer wrap(&err, "store.SavePreSurveyResult(%s)", v.ConversationID)
	if v.ConversationID == "" {
		return invalidf("a pre-survey belongs to a conversation")
	}
	switch v.Status {
	case PreSurveyAsking, PreSurveyAnswered, PreSurveyTimedOut, PreSurveyNotSent, PreSurveyInterrupted:
	default:
		return invalidf("unknown pre-survey status %q", v.Status)
	}
	if v.Answers == nil {
		v.Answers = []PreSurveyAnswer{}
	}
	answers, err := json.Marshal(v.Answers)
	if err != nil {
		return fmt.Errorf("answers: %w", err)
	}
	_, err = exec(ctx, s.db, `INSERT INTO pre_surveys (conversation_id, workstream_id, status, answers, timed_out, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id) DO UPDATE SET workstream_id = excluded.workstream_id, status = excluded.status,
			answers = excluded.answers, timed_out = excluded.timed_out, updated_at = excluded.updated_at`,
		v.ConversationID, v.WorkstreamID, v.Status, string(answers), v.TimedOut, s.timestamp(v.UpdatedAt))
	return err
}

// PreSurveyResultOf is the conversation's pre-survey; ErrNotFound when it
// had none.
func (s *Store) PreSurveyResultOf(ctx context.Context, conversationID string) (_ PreSurveyResult, err error) {
	defer wrap(&err, "store.PreSurveyResultOf(%s)", conversationID)
	var r preSurveyResultRow
	if err := get(ctx, s.db, &r, `SELECT conversation_id, workstream_id, status, answers, timed_out, updated_at
		FROM pre_surveys WHERE conversation_id = ?`, conversationID); err != nil {
		return PreSurveyResult{}, err
	}
	v := PreSurveyResult{ConversationID: r.ConversationID, WorkstreamID: r.WorkstreamID, Status: r.Status,
		TimedOut: r.TimedOut, UpdatedAt: r.UpdatedAt.UTC()}
	if err := json.Unmarshal([]byte(r.Answers), &v.Answers); err != nil {
		return PreSurveyResult{}, fmt.Errorf("answers: %w", err)
	}
	return v, nil
}
