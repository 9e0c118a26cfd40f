package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Post-conversation survey modes and statuses (issue 9).
const (
	SurveyModeInChat = "in_chat"

	SurveySent     = "sent"      // asked; no rating yet
	SurveyAnswered = "answered"  // rated (a comment may follow)
	SurveyTimedOut = "timed_out" // no rating within the response time-out
	SurveyNotSent  = "not_sent"  // not asked: not_sent_reason says why
)

// Bounds of a post-survey's response time-out: Meta's window is 24 hours.
const (
	MinSurveyTimeout     = time.Minute
	MaxSurveyTimeout     = 24 * time.Hour
	DefaultSurveyTimeout = time.Hour
)

// PostSurvey is a workstream's post-conversation survey.
type PostSurvey struct {
	WorkstreamID  string        `json:"workstream_id"`
	Enabled       bool          `json:"enabled"`
	Mode          string        `json:"mode"`
	Timeout       time.Duration `json:"-"`
	Question      string        `json:"question"`
	CommentPrompt string        `json:"comment_prompt"`
	Thanks        string        `json:"thanks"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

// DefaultPostSurvey is a disabled in-chat survey with Parley's wording.
func DefaultPostSurvey(workstreamID string) PostSurvey {
	return PostSurvey{
		WorkstreamID:  workstreamID,
		Mode:          SurveyModeInChat,
		Timeout:       DefaultSurveyTimeout,
		Question:      "How would you rate the help you received? Tap 1 (poor) to 5 (excellent).",
		CommentPrompt: "Thank you! Anything you would like to add? Just write it here (optional).",
		Thanks:        "Thank you for your feedback!",
	}
}

func (p *PostSurvey) normalize() error {
	if p.Mode == "" {
		p.Mode = SurveyModeInChat
	}
	if p.Mode != SurveyModeInChat {
		return fieldErrorf("mode", "mode must be %q", SurveyModeInChat)
	}
	if p.Timeout < MinSurveyTimeout || p.Timeout > MaxSurveyTimeout {
		return fieldErrorf("response_timeout", "the response time-out must be between %s and %s (Meta's window)", MinSurveyTimeout, MaxSurveyTimeout)
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"question", &p.Question, 2000}, {"comment_prompt", &p.CommentPrompt, 2000}, {"thanks", &p.Thanks, 2000}} {
		*f.v = strings.TrimSpace(*f.v)
		if len([]rune(*f.v)) > f.max {
			return fieldErrorf(f.name, "%s is longer than %d characters", f.name, f.max)
		}
	}
	if p.Question == "" {
		return fieldErrorf("question", "the rating question may not be empty")
	}
	return nil
}

type postSurveyRow struct {
	WorkstreamID   string    `db:"workstream_id"`
	Enabled        bool      `db:"enabled"`
	Mode           string    `db:"mode"`
	TimeoutSeconds int64     `db:"timeout_seconds"`
	Question       string    `db:"question"`
	CommentPrompt  string    `db:"comment_prompt"`
	Thanks         string    `db:"thanks"`
	UpdatedAt      time.Time `db:"updated_at"`
}

// PostSurveyOf returns the workstream's post-survey: the disabled default
// when none was saved; ErrNotFound when the workstream does not exist.
func (s *Store) PostSurveyOf(ctx context.Context, workstreamID string) (_ PostSurvey, err error) {
	defer wrap(&err, "store.PostSurveyOf(%s)", workstreamID)
	if _, err := s.GetWorkstream(ctx, workstreamID); err != nil {
		return PostSurvey{}, err
	}
	return s.postSurvey(ctx, workstreamID)
}

func (s *Store) postSurvey(ctx context.Context, workstreamID string) (PostSurvey, error) {
	var r postSurveyRow
	err := get(ctx, s.db, &r, `SELECT workstream_id, enabled, mode, timeout_seconds, question, comment_prompt, thanks, updated_at
		FROM workstream_post_surveys WHERE workstream_id = ?`, workstreamID)
	if errors.Is(err, ErrNotFound) {
		return DefaultPostSurvey(workstreamID), nil
	}
	if err != nil {
		return PostSurvey{}, err
	}
	return PostSurvey{WorkstreamID: r.WorkstreamID, Enabled: r.Enabled, Mode: r.Mode, Timeout: time.Duration(r.TimeoutSeconds) * time.Second, Question: r.Question, CommentPrompt: r.CommentPrompt,
		Thanks: r.Thanks, UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// PostSurveyForPage is the post-survey of the page's workstream (disabled
// when the page has none).
func (s *Store) PostSurveyForPage(ctx context.Context, pageRef string) (_ PostSurvey, err error) {
	defer wrap(&err, "store.PostSurveyForPage(%s)", pageRef)
	w, err := s.WorkstreamForPage(ctx, pageRef)
	if errors.Is(err, ErrNotFound) {
		return DefaultPostSurvey(""), nil
	}
	if err != nil {
		return PostSurvey{}, err
	}
	return s.postSurvey(ctx, w.ID)
}

// SavePostSurvey replaces the workstream's post-survey. It returns a
// *FieldError (ErrInvalid) when p is invalid, ErrNotFound when the
// workstream does not exist.
func (s *Store) SavePostSurvey(ctx context.Context, p PostSurvey) (_ PostSurvey, err error) {
	defer wrap(&err, "store.SavePostSurvey(%s)", p.WorkstreamID)
	if err := p.normalize(); err != nil {
		return PostSurvey{}, err
	}
	if _, err := s.GetWorkstream(ctx, p.WorkstreamID); err != nil {
		return PostSurvey{}, err
	}
	p.UpdatedAt = utc(s.clock())
	_, err = exec(ctx, s.db, `INSERT INTO workstream_post_surveys
		(workstream_id, enabled, mode, timeout_seconds, question, comment_prompt, thanks, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (workstream_id) DO UPDATE SET enabled = excluded.enabled, mode = excluded.mode,
			timeout_seconds = excluded.timeout_seconds, question = excluded.question,
			comment_prompt = excluded.comment_prompt, thanks = excluded.thanks, updated_at = excluded.updated_at`,
		p.WorkstreamID, p.Enabled, p.Mode, int64(p.Timeout/time.Second), p.Question, p.CommentPrompt, p.Thanks,
		s.timestamp(p.UpdatedAt))
	return p, err
}

// Survey is one conversation's post-conversation survey.
type Survey struct {
	ConversationID string     `json:"conversation_id"`
	WorkstreamID   string     `json:"workstream_id"`
	QueueID        string     `json:"queue_id"`
	AgentID        string     `json:"agent_id"`
	Mode           string     `json:"mode"`
	Status         string     `json:"status"`
	NotSentReason  string     `json:"not_sent_reason"`
	Rating         int        `json:"rating"`
	Comment        string     `json:"comment"`
	CreatedAt      time.Time  `json:"created_at"`
	SentAt         *time.Time `json:"sent_at"`
	AnsweredAt     *time.Time `json:"answered_at"`
}

type surveyRow struct {
	ConversationID string       `db:"conversation_id"`
	WorkstreamID   string       `db:"workstream_id"`
	QueueID        string       `db:"queue_id"`
	AgentID        string       `db:"agent_id"`
	Mode           string       `db:"mode"`
	Status         string       `db:"status"`
	NotSentReason  string       `db:"not_sent_reason"`
	Rating         int          `db:"rating"`
	Comment        string       `db:"comment"`
	CreatedAt      time.Time    `db:"created_at"`
	SentAt         sql.NullTime `db:"sent_at"`
	AnsweredAt     sql.NullTime `db:"answered_at"`
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// SaveSurvey records the survey as the workflow sees it now (the whole
// row: a retried save writes the same). CreatedAt is kept from the first.
func (s *Store) SaveSurvey(ctx context.Context, v Survey) (err error) {
	defer wrap(&err, "store.SaveSurvey(%s)", v.ConversationID)
	if v.ConversationID == "" {
		return invalidf("a survey belongs to a conversation")
	}
	switch v.Status {
	case SurveySent, SurveyAnswered, SurveyTimedOut, SurveyNotSent:
	default:
		return invalidf("unknown survey status %q", v.Status)
	}
	if v.Rating < 0 || v.Rating > 5 {
		return invalidf("a rating is 1 to 5, not %d", v.Rating)
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = s.clock()
	}
	_, err = exec(ctx, s.db, `INSERT INTO surveys (conversation_id, workstream_id, queue_id, agent_id, mode, status,
			not_sent_reason, rating, comment, created_at, sent_at, answered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id) DO UPDATE SET workstream_id = excluded.workstream_id, queue_id = excluded.queue_id,
			agent_id = excluded.agent_id, mode = excluded.mode, status = excluded.status, not_sent_reason = excluded.not_sent_reason,
			rating = excluded.rating, comment = excluded.comment, sent_at = excluded.sent_at, answered_at = excluded.answered_at`,
		v.ConversationID, v.WorkstreamID, v.QueueID, v.AgentID, v.Mode, v.Status, v.NotSentReason, v.Rating, v.Comment,
		s.timestamp(v.CreatedAt), s.nullTimestamp(v.SentAt), s.nullTimestamp(v.AnsweredAt))
	return err
}

// GetSurvey returns the conversation's survey; ErrNotFound when none.
func (s *Store) GetSurvey(ctx context.Context, conversationID string) (_ Survey, err error) {
	defer wrap(&err, "store.GetSurvey(%s)", conversationID)
	var r surveyRow
	if err := get(ctx, s.db, &r, `SELECT conversation_id, workstream_id, queue_id, agent_id, mode, status, not_sent_reason,
		rating, comment, created_at, sent_at, answered_at FROM surveys WHERE conversation_id = ?`, conversationID); err != nil {
		return Survey{}, err
	}
	return Survey{ConversationID: r.ConversationID, WorkstreamID: r.WorkstreamID, QueueID: r.QueueID, AgentID: r.AgentID,
		Mode: r.Mode, Status: r.Status, NotSentReason: r.NotSentReason, Rating: r.Rating, Comment: r.Comment,
		CreatedAt: r.CreatedAt.UTC(), SentAt: nullTime(r.SentAt), AnsweredAt: nullTime(r.AnsweredAt)}, nil
}

// CSATFilter selects the surveys of a report: decided in [From, To), and
// of the workstream, queue and agent when set.
type CSATFilter struct {
	From, To                       time.Time
	WorkstreamID, QueueID, AgentID string
}

// CSATReport sums up post-conversation surveys.
type CSATReport struct {
	// Sent counts the surveys asked: answered, timed out, or still waiting.
	Sent     int `json:"sent"`
	Answered int `json:"answered"`
	TimedOut int `json:"timed_out"`
	// Average is the mean rating of the answered ones (nil: none).
	Average *float64 `json:"average"`
	// Distribution counts the ratings, "1" to "5".
	Distribution map[string]int `json:"distribution"`
	// ResponseRate is answered / sent (0 when none was sent).
	ResponseRate float64       `json:"response_rate"`
	NotSent      int           `json:"not_sent"`
	NotSentBy    []ReasonCount `json:"not_sent_by_reason"`
}

// ReasonCount is how many surveys were not sent for one reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// CSAT aggregates the surveys that f selects.
func (s *Store) CSAT(ctx context.Context, f CSATFilter) (_ CSATReport, err error) {
	defer wrap(&err, "store.CSAT")
	where := []string{"created_at >= ?", "created_at < ?"}
	args := []any{s.timestamp(f.From), s.timestamp(f.To)}
	for _, c := range []struct{ col, v string }{{"workstream_id", f.WorkstreamID}, {"queue_id", f.QueueID}, {"agent_id", f.AgentID}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	var rows []struct {
		Status string `db:"status"`
		Rating int    `db:"rating"`
		Reason string `db:"not_sent_reason"`
		N      int64  `db:"n"`
	}
	if err := list(ctx, s.db, &rows, `SELECT status, rating, not_sent_reason, COUNT(*) AS n FROM surveys
		WHERE `+strings.Join(where, " AND ")+` GROUP BY status, rating, not_sent_reason`, args...); err != nil {
		return CSATReport{}, err
	}
	r := CSATReport{Distribution: map[string]int{"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}, NotSentBy: []ReasonCount{}}
	reasons := map[string]int{}
	sum := 0
	for _, row := range rows {
		n := int(row.N)
		switch row.Status {
		case SurveyNotSent:
			r.NotSent += n
			reasons[row.Reason] += n
			continue
		case SurveyAnswered:
			r.Answered += n
			if row.Rating >= 1 && row.Rating <= 5 {
				r.Distribution[fmt.Sprint(row.Rating)] += n
				sum += row.Rating * n
			}
		case SurveyTimedOut:
			r.TimedOut += n
		}
		r.Sent += n
	}
	if r.Answered > 0 {
		avg := float64(sum) / float64(r.Answered)
		r.Average = &avg
	}
	if r.Sent > 0 {
		r.ResponseRate = float64(r.Answered) / float64(r.Sent)
	}
	for reason, n := range reasons {
		r.NotSentBy = append(r.NotSentBy, ReasonCount{Reason: reason, Count: n})
	}
	sort.Slice(r.NotSentBy, func(i, j int) bool {
		a, b := r.NotSentBy[i], r.NotSentBy[j]
		return a.Count > b.Count || a.Count == b.Count && a.Reason < b.Reason
	})
	return r, nil
}
