package workflows

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
)

// versionPostSurvey: the post-conversation survey (issue 9). Asked lazily,
// where a survey would start (only when the workstream has one), so that
// histories recorded before it replay without it.
const versionPostSurvey = "post-survey"

// Post-survey steps.
const (
	stepRating  = "rating"
	stepComment = "comment"
)

// SurveyPayloadPrefix starts the payload of the rating's quick replies:
// "PARLEY_CSAT:<conversation id>:<rating>", so a tap names its survey.
const SurveyPayloadPrefix = "PARLEY_CSAT:"

// SurveyState is a post-conversation survey waiting for an answer.
type SurveyState struct {
	Step  string    `json:"step"`
	Until time.Time `json:"until"`
	// Record is the survey's row as last saved.
	Record store.Survey `json:"record"`
}

// SurveyPayload is the payload of the rating quick reply n.
func SurveyPayload(conversationID string, n int) string {
	return SurveyPayloadPrefix + conversationID + ":" + strconv.Itoa(n)
}

func ratingReplies(conversationID string) []messenger.QuickReply {
	out := make([]messenger.QuickReply, 0, 5)
	for n := 1; n <= 5; n++ {
		out = append(out, messenger.QuickReply{ContentType: "text", Title: strconv.Itoa(n), Payload: SurveyPayload(conversationID, n)})
	}
	return out
}

// typedRating: a rating written rather than tapped ("5", "4/5", "3 stars").
var typedRating = regexp.MustCompile(`(?i)^\s*([1-5])\s*(?:/\s*5|out of 5|stars?|⭐)?\s*[.!]?\s*$`)

// surveyRating is the rating e gives this conversation's survey, if any.
func surveyRating(e messenger.Event, conversationID string) (int, bool) {
	if e.Kind != messenger.KindMessage {
		return 0, false
	}
	if p := e.QuickReplyPayload; p != "" {
		n, ok := strings.CutPrefix(p, SurveyPayloadPrefix+conversationID+":")
		if !ok {
			return 0, false
		}
		r, err := strconv.Atoi(n)
		return r, err == nil && r >= 1 && r <= 5
	}
	if len(e.Attachments) > 0 {
		return 0, false
	}
	m := typedRating.FindStringSubmatch(e.Text)
	if m == nil {
		return 0, false
	}
	r, err := strconv.Atoi(m[1])
	return r, err == nil
}

// isSurveyComment: a plain text message; anything else (a file, a tap on
// another button, a postback, a referral) is clearly not a comment.
func isSurveyComment(e messenger.Event) bool {
	return e.Kind == messenger.KindMessage && e.QuickReplyPayload == "" && len(e.Attachments) == 0 && strings.TrimSpace(e.Text) != ""
}

// startPostSurvey asks the workstream's post-conversation survey, inside
// the 24-hour window only and never tagged; otherwise it records why not.
func (c *conversation) startPostSurvey(ctx workflow.Context) error {
	s := c.state.Settings
	if s == nil || s.PostSurvey == nil || c.state.Survey != nil {
		return nil
	}
	if !c.current && workflow.GetVersion(ctx, versionPostSurvey, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	p := s.PostSurvey
	now := workflow.Now(ctx).UTC()
	agent := c.state.AgentID
	if agent == "" {
		agent = c.state.LastAgentID
	}
	rec := store.Survey{ConversationID: c.state.ConversationID, WorkstreamID: p.WorkstreamID, QueueID: cmp.Or(c.queueID(), c.state.AnsweredQueueID),
		AgentID: agent, Mode: p.Mode, CreatedAt: now}
	if m := c.mode(now, true); m.Mode == ModeNone {
		rec.Status, rec.NotSentReason = store.SurveyNotSent, m.Reason
		return c.recordSurvey(ctx, rec)
	}
	if p.Mode == store.SurveyModeLink {
		return c.sendSurveyLink(ctx, p, rec)
	}
	res, err := c.sendSurvey(ctx, p.Question, ratingReplies(c.state.ConversationID))
	if err != nil {
		return err
	}
	if res.Status == "failed" {
		rec.Status, rec.NotSentReason = store.SurveyNotSent, strings.TrimPrefix(res.ErrorReason, "not sent: ")
		return c.recordSurvey(ctx, rec)
	}
	rec.Status, rec.SentAt = store.SurveySent, &now
	c.state.Survey = &SurveyState{Step: stepRating, Until: now.Add(p.Timeout), Record: rec}
	return c.recordSurvey(ctx, rec)
}

// sendSurveyLink sends the survey as a link with the conversation's own
// token; the customer answers on Parley's page, so the conversation does
// not wait for it. The link works until the response time-out.
func (c *conversation) sendSurveyLink(ctx workflow.Context, p *activities.PostSurveySettings, rec store.Survey) error {
	var token string
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return newSurveyToken() }).Get(&token); err != nil {
		return fmt.Errorf("survey token: %w", err)
	}
	// Saved before it is sent, so that the page knows the link the moment
	// the customer can tap it; a send that fails makes it not_sent.
	now := workflow.Now(ctx).UTC()
	expires := now.Add(p.Timeout)
	rec.Status, rec.SentAt, rec.Token, rec.ExpiresAt = store.SurveySent, &now, token, &expires
	if err := c.recordSurvey(ctx, rec); err != nil {
		return err
	}
	res, err := c.sendSurvey(ctx, strings.ReplaceAll(p.Question, "{link}", p.LinkBase+token), nil)
	if err != nil || res.Status != "failed" {
		return err
	}
	rec.Status, rec.SentAt, rec.NotSentReason = store.SurveyNotSent, nil, strings.TrimPrefix(res.ErrorReason, "not sent: ")
	return c.recordSurvey(ctx, rec)
}

// newSurveyToken is 32 random bytes, URL-safe: the customer's only key to
// the survey page. Called in a side effect (recorded, never re-drawn).
func newSurveyToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sendSurvey sends one survey message as an automated message.
func (c *conversation) sendSurvey(ctx workflow.Context, text string, replies []messenger.QuickReply) (MessageResult, error) {
	if err := c.sendMu.Lock(ctx); err != nil {
		return MessageResult{}, err
	}
	defer c.sendMu.Unlock()
	res, err := c.send(ctx, []outgoing{{text: text, sender: "system", automated: true, quickReplies: replies}})
	if err != nil || len(res) == 0 {
		return MessageResult{}, err
	}
	return res[0], nil
}

func (c *conversation) recordSurvey(ctx workflow.Context, rec store.Survey) error {
	actx := workflow.WithActivityOptions(ctx, storeActivity("record the post-conversation survey"))
	if err := workflow.ExecuteActivity(actx, activities.RecordSurveyName, rec).Get(ctx, nil); err != nil {
		return fmt.Errorf("record survey: %w", err)
	}
	return nil
}

// onSurveyEvents takes the customer's answers to the running survey: they
// are recorded in the transcript and belong to the survey. It returns the
// events from the first one that is not an answer: they go on as without a
// survey (in wrap-up, they open the next conversation), and the survey ends.
func (c *conversation) onSurveyEvents(ctx workflow.Context, events []messenger.Event) ([]messenger.Event, error) {
	sv := c.state.Survey
	type answer struct {
		rating  int
		comment string
	}
	var answers []answer
	step := sv.Step
	cut := len(events)
	for i, e := range events {
		if step == "" {
			cut = i // answered: what follows is not the survey's
			break
		}
		if !e.OpensWindow() || c.state.seen(e.DedupeKey()) {
			continue // echoes, receipts, Meta's retries: recorded as usual
		}
		if r, ok := surveyRating(e, c.state.ConversationID); ok {
			answers = append(answers, answer{rating: r})
			step = stepComment
			continue
		}
		if step == stepComment && isSurveyComment(e) {
			answers = append(answers, answer{comment: e.Text})
			step = ""
			continue
		}
		cut = i
		break
	}
	if err := c.record(ctx, events[:cut]); err != nil {
		return nil, err
	}
	for _, a := range answers {
		if err := c.surveyAnswer(ctx, a.rating, a.comment); err != nil {
			return nil, err
		}
	}
	if cut < len(events) && c.state.Survey != nil {
		// Not an answer: the customer moved on. A survey still waiting for
		// its rating stays "sent" (asked, not answered).
		c.state.Survey = nil
	}
	return events[cut:], nil
}

// surveyAnswer applies a rating (then asks for the comment) or the comment
// (then thanks the customer and ends the survey).
func (c *conversation) surveyAnswer(ctx workflow.Context, rating int, comment string) error {
	sv := c.state.Survey
	if sv == nil {
		return nil
	}
	p := c.state.Settings.PostSurvey
	now := workflow.Now(ctx).UTC()
	rec := sv.Record
	if rating > 0 {
		rec.Status, rec.Rating, rec.AnsweredAt = store.SurveyAnswered, rating, &now
	} else {
		rec.Comment = truncateRunes(strings.TrimSpace(comment), 2000)
	}
	sv.Record = rec
	if err := c.recordSurvey(ctx, rec); err != nil {
		return err
	}
	if rating > 0 && sv.Step == stepRating && p != nil && p.CommentPrompt != "" {
		sv.Step, sv.Until = stepComment, now.Add(p.Timeout)
		_, err := c.sendSurvey(ctx, p.CommentPrompt, nil)
		return err
	}
	if rating > 0 && sv.Step == stepComment {
		return nil // a new rating while the comment is awaited
	}
	c.state.Survey = nil
	c.surveyEnd, c.surveyEndAt = "answered", now
	if p != nil && p.Thanks != "" {
		_, err := c.sendSurvey(ctx, p.Thanks, nil)
		return err
	}
	return nil
}

// checkSurvey ends a survey whose response time-out has come: without a
// rating it timed out; with one, the comment was optional.
func (c *conversation) checkSurvey(ctx workflow.Context) error {
	sv := c.state.Survey
	if sv == nil || workflow.Now(ctx).Before(sv.Until) {
		return nil
	}
	c.state.Survey = nil
	c.surveyEnd, c.surveyEndAt = "answered", workflow.Now(ctx).UTC()
	if sv.Step != stepRating {
		return nil
	}
	c.surveyEnd = "timed out"
	rec := sv.Record
	rec.Status = store.SurveyTimedOut
	return c.recordSurvey(ctx, rec)
}

// withSurvey is the wrap-up's closing time d, or the survey's end when
// later: the conversation closes at the later of the two.
func (c *conversation) withSurvey(d time.Time) time.Time {
	if sv := c.state.Survey; sv != nil && !d.IsZero() && sv.Until.After(d) {
		return sv.Until
	}
	return d
}

// armSurvey keeps one timer for the survey's response time-out.
func (c *conversation) armSurvey(ctx workflow.Context) {
	var until time.Time
	if sv := c.state.Survey; sv != nil {
		until = sv.Until
		c.surveyTimer.summary = "post-conversation survey: time-out for the " + sv.Step
	}
	c.surveyTimer.arm(ctx, until)
}

func (c *conversation) surveyDetails() string {
	sv := c.state.Survey
	if sv == nil {
		return ""
	}
	return fmt.Sprintf("Post-conversation survey: waiting for the %s until %s.", sv.Step, stamp(sv.Until))
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// wrapUpEndReason is the close reason at the end of wrap-up: the survey's
// end when the survey held the conversation past the wrap-up's own end.
func (c *conversation) wrapUpEndReason() string {
	if r := c.state.AutoClosed; r != "" {
		if c.surveyEnd != "" {
			return r + "; post-conversation survey ended (" + c.surveyEnd + ")"
		}
		return r
	}
	if c.surveyEnd != "" && c.surveyEndAt.After(c.inactivityDeadline()) {
		return "post-conversation survey ended (" + c.surveyEnd + ")"
	}
	return "wrap-up ended after " + span(c.state.Settings.WrapUp)
}
