package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Post-conversation survey modes and statuses (issue 9).
const (
	SurveyModeInChat = "in_chat"
	SurveyModeLink   = "link" // a link to a page with a per-conversation token

	SurveySent     = "sent"      // asked; no rating yet
	SurveyAnswered = "answered"  // rated (a comment may follow)
	SurveyTimedOut = "timed_out" // no rating within the response time-out
	SurveyNotSent  = "not_sent"  // not asked: not_sent_reason says why
)

// Bounds of a post-survey's response time-out: Meta's window is 24 hours
// for an in-chat survey; a link survey's time-out is how long its link
// works, up to MaxLinkSurveyTimeout.
const (
	MinSurveyTimeout     = time.Minute
	MaxSurveyTimeout     = 24 * time.Hour
	MaxLinkSurveyTimeout = 7 * 24 * time.Hour
	DefaultSurveyTimeout = time.Hour
)

// SurveyLinkPlaceholder marks where a link survey's question puts the
// survey's address.
const SurveyLinkPlaceholder = "{link}"

// MaxSurveyComment bounds a survey's comment, in characters.
const MaxSurveyComment = 2000

// Errors of AnswerSurveyByToken.
var (
	// ErrSurveyExpired: the survey's link is past its expiry.
	ErrSurveyExpired = errors.New("the survey link has expired")
	// ErrSurveyAnswered: the survey was already answered (an ErrConflict).
	ErrSurveyAnswered = fmt.Errorf("%w: the survey was already answered", ErrConflict)
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
	// OnAutoClose: conversations that close for inactivity after an agent
	// took them are surveyed too (otherwise only those an agent ends).
	OnAutoClose bool      `json:"on_auto_close"`
	UpdatedAt   time.Time `json:"updated_at"`
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
	switch p.Mode {
	case SurveyModeInChat:
		if p.Timeout < MinSurveyTimeout || p.Timeout > MaxSurveyTimeout {
			return fieldErrorf("response_timeout", "the response time-out must be between %s and %s (Meta's window)", MinSurveyTimeout, MaxSurveyTimeout)
		}
	case SurveyModeLink:
		if p.Timeout < MinSurveyTimeout || p.Timeout > MaxLinkSurveyTimeout {
			return fieldErrorf("response_timeout", "the response time-out (how long the link works) must be between %s and %s", MinSurveyTimeout, MaxLinkSurveyTimeout)
		}
	default:
		return fieldErrorf("mode", "mode must be %q or %q", SurveyModeInChat, SurveyModeLink)
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
	hasLink := strings.Contains(p.Question, SurveyLinkPlaceholder)
	if p.Mode == SurveyModeLink && !hasLink {
		return fieldErrorf("question", "a link survey's question must contain %s where the survey's address goes, e.g. \"How did we do? Tell us here: %s\"", SurveyLinkPlaceholder, SurveyLinkPlaceholder)
	}
	if p.Mode == SurveyModeInChat && hasLink {
		return fieldErrorf("question", "an in-chat survey's question may not contain %s (only a link survey sends a link)", SurveyLinkPlaceholder)
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
	OnAutoClose    bool      `db:"on_auto_close"`
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
	err := get(ctx, s.db, &r, `SELECT workstream_id, enabled, mode, timeout_seconds, question, comment_prompt, thanks, on_auto_close, updated_at
		FROM workstream_post_surveys WHERE workstream_id = ?`, workstreamID)
	if errors.Is(err, ErrNotFound) {
		return DefaultPostSurvey(workstreamID), nil
	}
	if err != nil {
		return PostSurvey{}, err
	}
	return PostSurvey{WorkstreamID: r.WorkstreamID, Enabled: r.Enabled, Mode: r.Mode, Timeout: time.Duration(r.TimeoutSeconds) * time.Second, Question: r.Question, CommentPrompt: r.CommentPrompt,
		Thanks: r.Thanks, OnAutoClose: r.OnAutoClose, UpdatedAt: r.UpdatedAt.UTC()}, nil
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
		(workstream_id, enabled, mode, timeout_seconds, question, comment_prompt, thanks, on_auto_close, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (workstream_id) DO UPDATE SET enabled = excluded.enabled, mode = excluded.mode,
			timeout_seconds = excluded.timeout_seconds, question = excluded.question,
			comment_prompt = excluded.comment_prompt, thanks = excluded.thanks, on_auto_close = excluded.on_auto_close,
			updated_at = excluded.updated_at`,
		p.WorkstreamID, p.Enabled, p.Mode, int64(p.Timeout/time.Second), p.Question, p.CommentPrompt, p.Thanks, p.OnAutoClose,
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
	// Token is a link survey's secret (set on the save that sends it; only
	// its SHA-256 is kept). ExpiresAt: the link's end.
	Token     string     `json:"token,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
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
	ExpiresAt      sql.NullTime `db:"expires_at"`
}

// surveyColumns are the columns of a surveyRow.
const surveyColumns = `conversation_id, workstream_id, queue_id, agent_id, mode, status, not_sent_reason,
		rating, comment, created_at, sent_at, answered_at, expires_at`

func (r surveyRow) survey() Survey {
	return Survey{ConversationID: r.ConversationID, WorkstreamID: r.WorkstreamID, QueueID: r.QueueID, AgentID: r.AgentID,
		Mode: r.Mode, Status: r.Status, NotSentReason: r.NotSentReason, Rating: r.Rating, Comment: r.Comment,
		CreatedAt: r.CreatedAt.UTC(), SentAt: nullTime(r.SentAt), AnsweredAt: nullTime(r.AnsweredAt), ExpiresAt: nullTime(r.ExpiresAt)}
}

// surveyTokenHash is what the store keeps of a link survey's token: its
// SHA-256, in hex.
func surveyTokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// SaveSurvey records the survey as the workflow sees it now (the whole
// row: a retried save writes the same). CreatedAt is kept from the first;
// so are the token (kept as its SHA-256) and ExpiresAt when v has none. An
// answered survey stays answered: a later save with another status (a
// retried "sent" after the customer answered on the survey page) changes
// nothing.
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
	tokenHash := ""
	if v.Token != "" {
		tokenHash = surveyTokenHash(v.Token)
	}
	_, err = exec(ctx, s.db, `INSERT INTO surveys (conversation_id, workstream_id, queue_id, agent_id, mode, status,
			not_sent_reason, rating, comment, created_at, sent_at, answered_at, token_hash, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (conversation_id) DO UPDATE SET workstream_id = excluded.workstream_id, queue_id = excluded.queue_id,
			agent_id = excluded.agent_id, mode = excluded.mode, status = excluded.status, not_sent_reason = excluded.not_sent_reason,
			rating = excluded.rating, comment = excluded.comment, sent_at = excluded.sent_at, answered_at = excluded.answered_at,
			token_hash = CASE WHEN excluded.token_hash <> '' THEN excluded.token_hash ELSE surveys.token_hash END,
			expires_at = COALESCE(excluded.expires_at, surveys.expires_at)
		WHERE surveys.status <> 'answered' OR excluded.status = 'answered'`,
		v.ConversationID, v.WorkstreamID, v.QueueID, v.AgentID, v.Mode, v.Status, v.NotSentReason, v.Rating, v.Comment,
		s.timestamp(v.CreatedAt), s.nullTimestamp(v.SentAt), s.nullTimestamp(v.AnsweredAt), tokenHash, s.nullTimestamp(v.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: another survey has this token", ErrConflict)
	}
	return err
}

// GetSurvey returns the conversation's survey; ErrNotFound when none.
func (s *Store) GetSurvey(ctx context.Context, conversationID string) (_ Survey, err error) {
	defer wrap(&err, "store.GetSurvey(%s)", conversationID)
	var r surveyRow
	if err := get(ctx, s.db, &r, `SELECT `+surveyColumns+` FROM surveys WHERE conversation_id = ?`, conversationID); err != nil {
		return Survey{}, err
	}
	return r.survey(), nil
}

// SurveyByToken returns the link survey whose token is token (never read
// back: Token is empty); ErrNotFound when none (or token is empty).
func (s *Store) SurveyByToken(ctx context.Context, token string) (_ Survey, err error) {
	defer wrap(&err, "store.SurveyByToken")
	return s.surveyByToken(ctx, token)
}

func (s *Store) surveyByToken(ctx context.Context, token string) (Survey, error) {
	if token == "" {
		return Survey{}, ErrNotFound
	}
	var r surveyRow
	if err := get(ctx, s.db, &r, `SELECT `+surveyColumns+` FROM surveys WHERE token_hash = ?`, surveyTokenHash(token)); err != nil {
		return Survey{}, err
	}
	return r.survey(), nil
}

// AnswerSurveyByToken records the customer's answer on a link survey's
// page: rating 1 to 5 and an optional comment (trimmed, at most
// MaxSurveyComment characters); a bad rating or comment is a *FieldError
// (ErrInvalid). It returns the answered survey; ErrNotFound for an unknown
// token or a survey that was not sent; ErrSurveyAnswered (an ErrConflict)
// when it was already answered; ErrSurveyExpired when its link has expired
// (or the survey was recorded as timed out).
func (s *Store) AnswerSurveyByToken(ctx context.Context, token string, rating int, comment string) (_ Survey, err error) {
	defer wrap(&err, "store.AnswerSurveyByToken")
	if rating < 1 || rating > 5 {
		return Survey{}, fieldErrorf("rating", "a rating is 1 to 5, not %d", rating)
	}
	comment = strings.TrimSpace(comment)
	if utf8.RuneCountInString(comment) > MaxSurveyComment {
		return Survey{}, fieldErrorf("comment", "the comment is longer than %d characters", MaxSurveyComment)
	}
	if token == "" {
		return Survey{}, ErrNotFound
	}
	now := s.clock()
	n, err := exec(ctx, s.db, `UPDATE surveys SET status = ?, rating = ?, comment = ?, answered_at = ?
		WHERE token_hash = ? AND status = ? AND (expires_at IS NULL OR expires_at > ?)`,
		SurveyAnswered, rating, comment, s.timestamp(now), surveyTokenHash(token), SurveySent, s.timestamp(now))
	if err != nil {
		return Survey{}, err
	}
	v, err := s.surveyByToken(ctx, token)
	if err != nil {
		return Survey{}, err
	}
	if n == 1 {
		return v, nil
	}
	// Why nothing changed.
	switch v.Status {
	case SurveyAnswered:
		return Survey{}, ErrSurveyAnswered
	case SurveyTimedOut:
		return Survey{}, ErrSurveyExpired
	case SurveySent:
		if v.ExpiresAt != nil && !v.ExpiresAt.After(now) {
			return Survey{}, ErrSurveyExpired
		}
		// Answered and then changed in between: unlikely; say so.
		return Survey{}, fmt.Errorf("%w: the survey changed while it was answered", ErrConflict)
	default:
		return Survey{}, ErrNotFound
	}
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
	// A link survey still waiting past its link's expiry timed out.
	args := []any{s.timestamp(s.clock()), s.timestamp(f.From), s.timestamp(f.To)}
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
	if err := list(ctx, s.db, &rows, `SELECT
			CASE WHEN status = 'sent' AND expires_at IS NOT NULL AND expires_at <= ? THEN 'timed_out' ELSE status END AS status,
			rating, not_sent_reason, COUNT(*) AS n FROM surveys
		WHERE `+strings.Join(where, " AND ")+` GROUP BY 1, 2, 3`, args...); err != nil {
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
