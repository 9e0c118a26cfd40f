package workflows

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
)

// versionPreSurvey: the pre-conversation survey (issue 9). Asked lazily,
// where a survey would start (only when the workstream has one), so that
// histories recorded before it replay without it.
const versionPreSurvey = "pre-survey"

// PreSurveyPayloadPrefix starts the payload of a choice's quick reply:
// "PARLEY_PRE:<conversation id>:<question id>:<choice index>".
const PreSurveyPayloadPrefix = "PARLEY_PRE:"

// preSurveyReask is said before a choice question asked again.
const preSurveyReask = "Please choose one of the options."

// PreSurveyState is a pre-conversation survey waiting for an answer.
type PreSurveyState struct {
	// Questions as asked: a settings change does not move the survey.
	Questions []store.PreSurveyQuestion `json:"questions"`
	Index     int                       `json:"index"`
	// Until is the current question's time-out, End the whole survey's.
	Until time.Time `json:"until"`
	End   time.Time `json:"end"`
	// Reasked: the current choice question was asked again.
	Reasked      bool   `json:"reasked,omitempty"`
	WorkstreamID string `json:"workstream_id"`
}

// PreSurveyPayload is the payload of choice n of question qid.
func PreSurveyPayload(conversationID, qid string, n int) string {
	return PreSurveyPayloadPrefix + conversationID + ":" + qid + ":" + strconv.Itoa(n)
}

// startPreSurvey asks the workstream's pre-conversation survey, inside the
// 24-hour window only and never tagged; otherwise it records why not.
func (c *conversation) startPreSurvey(ctx workflow.Context) error {
	s := c.state.Settings
	if s == nil || s.PreSurvey == nil || c.state.PreSurvey != nil || c.state.PreSurveyStatus != "" {
		return nil
	}
	if !c.current && workflow.GetVersion(ctx, versionPreSurvey, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	p := s.PreSurvey
	now := workflow.Now(ctx).UTC()
	if m := c.mode(now, true); m.Mode == ModeNone {
		c.state.PreSurveyStatus = store.PreSurveyNotSent
		return c.recordPreSurvey(ctx, p.WorkstreamID)
	}
	c.state.PreSurveyStatus = store.PreSurveyAsking
	c.state.PreSurvey = &PreSurveyState{Questions: p.Questions, End: now.Add(p.Timeout), WorkstreamID: p.WorkstreamID}
	if err := c.recordPreSurvey(ctx, p.WorkstreamID); err != nil {
		return err
	}
	return c.askPreSurvey(ctx, "")
}

// askPreSurvey sends the current question (with its choices as quick
// replies), prefixed when it is asked again; a question that cannot be
// sent ends the survey: routing goes on.
func (c *conversation) askPreSurvey(ctx workflow.Context, prefix string) error {
	ps := c.state.PreSurvey
	q := ps.Questions[ps.Index]
	var replies []messenger.QuickReply
	for n, choice := range q.Choices {
		replies = append(replies, messenger.QuickReply{ContentType: "text", Title: choice,
			Payload: PreSurveyPayload(c.state.ConversationID, q.ID, n)})
	}
	text := q.Text
	if prefix != "" {
		text = prefix + " " + text
	}
	now := workflow.Now(ctx).UTC()
	ps.Until = now.Add(c.state.Settings.PreSurvey.QuestionTimeout)
	if ps.Until.After(ps.End) {
		ps.Until = ps.End
	}
	if err := c.sendMu.Lock(ctx); err != nil {
		return err
	}
	res, err := c.send(ctx, []outgoing{{text: text, sender: "system", automated: true, quickReplies: replies}})
	c.sendMu.Unlock()
	if err != nil {
		return err
	}
	if len(res) > 0 && res[0].Status == "failed" {
		return c.endPreSurvey(ctx, store.PreSurveyNotSent, false)
	}
	return nil
}

// preSurveyAnswers are the events that may answer the survey: new messages
// from the customer (before they are recorded: Meta's retries are not).
func (c *conversation) preSurveyAnswers(events []messenger.Event) []messenger.Event {
	if c.state.PreSurvey == nil {
		return nil
	}
	var out []messenger.Event
	for _, e := range events {
		if e.Kind == messenger.KindMessage && e.OpensWindow() && !c.state.seen(e.DedupeKey()) {
			out = append(out, e)
		}
	}
	return out
}

// onPreSurveyAnswer takes one customer message as the current question's
// answer. A message that is not an answer (a file, a sticker) is only kept
// in the transcript; a choice question answered otherwise is asked again
// once, then left unanswered.
func (c *conversation) onPreSurveyAnswer(ctx workflow.Context, e messenger.Event) error {
	ps := c.state.PreSurvey
	if ps == nil {
		return nil
	}
	q := ps.Questions[ps.Index]
	text := strings.TrimSpace(e.Text)
	if text == "" && e.QuickReplyPayload == "" {
		return nil
	}
	answer, ok := "", false
	if len(q.Choices) == 0 && strings.HasPrefix(e.QuickReplyPayload, PreSurveyPayloadPrefix) {
		return nil // a late tap on an earlier question's choice: not this answer
	}
	if len(q.Choices) == 0 {
		answer, ok = truncateRunes(text, 1000), text != ""
	} else {
		answer, ok = choiceOf(q, e, c.state.ConversationID)
	}
	if !ok && !ps.Reasked {
		ps.Reasked = true
		return c.askPreSurvey(ctx, preSurveyReask)
	}
	if ok {
		if c.state.SurveyAnswers == nil {
			c.state.SurveyAnswers = map[string]string{}
		}
		c.state.SurveyAnswers[q.ID] = answer
		c.state.PreSurveyAnswers = append(c.state.PreSurveyAnswers, store.PreSurveyAnswer{QuestionID: q.ID, Question: q.Text, Answer: answer})
	}
	return c.nextPreSurveyQuestion(ctx)
}

// choiceOf is the choice e picks: a tap on one of q's quick replies or its
// title typed (any case).
func choiceOf(q store.PreSurveyQuestion, e messenger.Event, conversationID string) (string, bool) {
	if p := e.QuickReplyPayload; p != "" {
		n, found := strings.CutPrefix(p, PreSurveyPayloadPrefix+conversationID+":"+q.ID+":")
		if i, err := strconv.Atoi(n); found && err == nil && i >= 0 && i < len(q.Choices) {
			return q.Choices[i], true
		}
		return "", false
	}
	for _, choice := range q.Choices {
		if strings.EqualFold(strings.TrimSpace(e.Text), choice) {
			return choice, true
		}
	}
	return "", false
}

func (c *conversation) nextPreSurveyQuestion(ctx workflow.Context) error {
	ps := c.state.PreSurvey
	ps.Index++
	ps.Reasked = false
	if ps.Index >= len(ps.Questions) {
		return c.endPreSurvey(ctx, store.PreSurveyAnswered, false)
	}
	if err := c.recordPreSurvey(ctx, ps.WorkstreamID); err != nil {
		return err
	}
	return c.askPreSurvey(ctx, "")
}

// checkPreSurvey applies a time-out that has come: the whole survey's, or a
// required question's, ends it (routing goes on with what was answered); an
// optional question's moves on to the next one.
func (c *conversation) checkPreSurvey(ctx workflow.Context) error {
	ps := c.state.PreSurvey
	now := workflow.Now(ctx)
	if ps == nil || now.Before(ps.Until) {
		return nil
	}
	if !now.Before(ps.End) || ps.Questions[ps.Index].Required {
		return c.endPreSurvey(ctx, store.PreSurveyTimedOut, true)
	}
	return c.nextPreSurveyQuestion(ctx)
}

// endPreSurvey records the survey's outcome, then routes the conversation.
func (c *conversation) endPreSurvey(ctx workflow.Context, status string, timedOut bool) error {
	ws := c.state.PreSurvey.WorkstreamID
	c.state.PreSurvey = nil
	c.state.PreSurveyStatus, c.state.SurveyTimedOut = status, timedOut
	if err := c.recordPreSurvey(ctx, ws); err != nil {
		return err
	}
	return c.routeIfUnrouted(ctx)
}

// interruptPreSurvey ends a pre-survey under way when an agent takes the
// conversation first: the customer's next messages are for the agent, not
// answers. What was answered is kept.
func (c *conversation) interruptPreSurvey(ctx workflow.Context) error {
	ps := c.state.PreSurvey
	if ps == nil {
		return nil
	}
	c.state.PreSurvey = nil
	c.state.PreSurveyStatus = store.PreSurveyInterrupted
	return c.recordPreSurvey(ctx, ps.WorkstreamID)
}

func (c *conversation) recordPreSurvey(ctx workflow.Context, workstreamID string) error {
	r := store.PreSurveyResult{ConversationID: c.state.ConversationID, WorkstreamID: workstreamID, Status: c.state.PreSurveyStatus,
		Answers: c.state.PreSurveyAnswers, TimedOut: c.state.SurveyTimedOut, UpdatedAt: workflow.Now(ctx).UTC()}
	actx := workflow.WithActivityOptions(ctx, storeActivity("record the pre-conversation survey"))
	if err := workflow.ExecuteActivity(actx, activities.RecordPreSurveyName, r).Get(ctx, nil); err != nil {
		return fmt.Errorf("record pre-survey: %w", err)
	}
	return nil
}

// armPreSurvey keeps one timer for the current question's time-out (never
// later than the whole survey's).
func (c *conversation) armPreSurvey(ctx workflow.Context) {
	var until time.Time
	if ps := c.state.PreSurvey; ps != nil {
		until = ps.Until
		c.preSurveyTimer.summary = fmt.Sprintf("pre-conversation survey: time-out for question %d of %d", ps.Index+1, len(ps.Questions))
	}
	c.preSurveyTimer.arm(ctx, until)
}

func (c *conversation) preSurveyDetails() string {
	ps := c.state.PreSurvey
	if ps == nil {
		return ""
	}
	return fmt.Sprintf("Pre-conversation survey: question %d of %d, waiting for the answer until %s.", ps.Index+1, len(ps.Questions), stamp(ps.Until))
}

// surveyContext is the survey's answers as routing rules see them.
func (c *conversation) surveyContext() map[string]string {
	if len(c.state.SurveyAnswers) == 0 {
		return nil
	}
	return maps.Clone(c.state.SurveyAnswers)
}
