package workflows

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/store"
)

// AssignRequest gives the conversation to an agent (admins, until routing).
type AssignRequest struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	// Force lets a supervisor exceed the agent's capacity (routing runs).
	Force bool `json:"force,omitempty"`
}

// ActionRequest is a transition asked by an agent (ActorAgentID) or by an
// administrator (ActorAgentID empty).
type ActionRequest struct {
	ConversationID string `json:"conversation_id"`
	ActorAgentID   string `json:"actor_agent_id,omitempty"`
	// Reason, when set, says why the conversation is closed (e.g. its page
	// was deleted); otherwise the reason names the actor.
	Reason string `json:"reason,omitempty"`
}

// ReplyRequest is an agent's reply: text, or one file (or, in replies
// accepted before files were uploaded, one attachment by URL).
type ReplyRequest struct {
	ConversationID string `json:"conversation_id"`
	AgentID        string `json:"agent_id"`
	Text           string `json:"text,omitempty"`
	AttachmentType string `json:"attachment_type,omitempty"`
	AttachmentURL  string `json:"attachment_url,omitempty"`
	// File is a file the API checked and put in the blob store, sent by
	// upload (attachment_id).
	File *activities.OutFile `json:"file,omitempty"`
	// The workstream's settings as the API read them when the agent sent
	// the reply: a tag switched on mid-conversation applies to the next reply.
	HumanAgentTag    bool `json:"human_agent_tag"`
	AgentAttachments bool `json:"agent_attachments"`
}

// AgentAttachmentsOff is the refusal of an agent's file when the
// workstream does not allow them.
const AgentAttachmentsOff = "attachments from agents are off for this workstream"

// MaxReplyLength bounds one reply, in UTF-16 units as Meta counts (split
// into messages of 2,000).
const MaxReplyLength = 20000

// MessageResult is one message Parley sent (or could not send).
type MessageResult struct {
	ID            string `json:"id"`
	Seq           int64  `json:"seq"`
	Status        string `json:"status"`
	MessagingType string `json:"messaging_type,omitempty"`
	Tag           string `json:"tag,omitempty"`
	MID           string `json:"mid,omitempty"`
	ErrorCode     int    `json:"error_code,omitempty"`
	ErrorSubcode  int    `json:"error_subcode,omitempty"`
	ErrorReason   string `json:"error_reason,omitempty"`
}

// ReplyResult lists the messages a reply became, in order.
type ReplyResult struct {
	Messages []MessageResult `json:"messages"`
}

// TransitionResult is the conversation after a transition.
type TransitionResult struct {
	ConversationID string `json:"conversation_id"`
	State          string `json:"state"`
	AgentID        string `json:"agent_id,omitempty"`
}

type updateDef struct {
	name, description  string
	handler, validator any
}

func (c *conversation) registerUpdates(ctx workflow.Context) error {
	updates := []updateDef{
		{UpdateAssign, "Give the conversation to an agent", c.assign, c.validateAssign},
		{UpdateSetWaiting, "The agent sets the conversation aside", c.setWaiting, c.validateSetWaiting},
		{UpdateEnd, "The agent ends the conversation (wrap-up)", c.end, c.validateEnd},
		{UpdateClose, "Close the conversation now", c.closeByRequest, c.validateClose},
		{UpdateSendReply, "Send the agent's reply to the customer, inside Meta's rules", c.sendReply, c.validateReply},
		{UpdateThreadControl, "Take the Messenger thread back from another app, or pass it to one", c.threadControl, c.validateThreadControl},
	}
	if c.routingV {
		updates = append(updates, c.routingUpdates()...)
	}
	for _, u := range updates {
		opts := workflow.UpdateHandlerOptions{Validator: u.validator, Description: u.description}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, opts); err != nil {
			return fmt.Errorf("register %s update: %w", u.name, err)
		}
	}
	return nil
}

func (c *conversation) validateTarget(id string) error {
	switch {
	case c.state.Lifecycle == 0:
		return refuse("this conversation is being upgraded; try again in a moment")
	case id != c.state.ConversationID:
		return refuse("conversation %s is closed", id)
	case c.state.State == StateClosed:
		return refuse("the conversation is closed")
	}
	return nil
}

func (c *conversation) validateActor(actor string) error {
	if actor != "" && actor != c.state.AgentID {
		return refuse("the conversation is not assigned to agent %s", actor)
	}
	return nil
}

func (c *conversation) result() TransitionResult {
	return TransitionResult{ConversationID: c.state.ConversationID, State: c.state.State, AgentID: c.state.AgentID}
}

func (c *conversation) validateAssign(ctx workflow.Context, r AssignRequest) error {
	if _, ok := c.findUpdate(ctx, UpdateAssign); ok {
		return nil // answered with its first result
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	if r.AgentID == "" {
		return refuse("no agent given")
	}
	if c.state.State == StateWrapUp {
		return refuse("the agent has ended the conversation: it cannot be assigned any more")
	}
	return nil
}

func (c *conversation) assign(ctx workflow.Context, r AssignRequest) (TransitionResult, error) {
	return c.transitionUpdate(ctx, UpdateAssign, func() error { return c.validateAssign(ctx, r) }, func() error {
		if c.ledger() {
			// A supervisor's assignment goes through the capacity ledger
			// like any other; it exceeds capacity only when forced.
			asg, err := c.claim(ctx, "assign", r.AgentID, "", r.Force)
			if err != nil {
				return err
			}
			c.state.RoutingLog = appendLog(c.state.RoutingLog, "assigned to "+name(asg.AgentName, r.AgentID)+" by a supervisor")
			return c.assignTo(ctx, r.AgentID, asg.AgentName)
		}
		if err := c.interruptPreSurvey(ctx); err != nil {
			return err
		}
		c.state.AgentID = r.AgentID
		return c.transition(ctx, StateActive)
	})
}

// transitionUpdate runs a state-changing update under the state mutex: it
// checks again, once it holds the mutex, what the validator checked, since
// another handler may have changed the state meanwhile. A retried update id
// gets its first answer.
func (c *conversation) transitionUpdate(ctx workflow.Context, name string, validate, apply func() error) (TransitionResult, error) {
	var res TransitionResult
	if ok, err := c.answered(ctx, name, &res); ok {
		return res, err
	}
	c.updatesThisRun++
	unlock, err := c.lock(ctx)
	if err != nil {
		return res, err
	}
	defer unlock()
	if c.nothingLost {
		if err := validate(); err != nil {
			return res, err
		}
	}
	if err := apply(); err != nil {
		return res, err
	}
	res = c.result()
	c.remember(ctx, name, res)
	return res, nil
}

func (c *conversation) validateSetWaiting(ctx workflow.Context, r ActionRequest) error {
	if _, ok := c.findUpdate(ctx, UpdateSetWaiting); ok {
		return nil // answered with its first result
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	if c.state.State != StateActive {
		return refuse("only an active conversation can be set to waiting; it is %s", c.state.State)
	}
	return c.validateActor(r.ActorAgentID)
}

func (c *conversation) setWaiting(ctx workflow.Context, r ActionRequest) (TransitionResult, error) {
	return c.transitionUpdate(ctx, UpdateSetWaiting, func() error { return c.validateSetWaiting(ctx, r) }, func() error {
		if err := c.transition(ctx, StateWaiting); err != nil {
			return err
		}
		// A waiting conversation holds no capacity.
		return c.release(ctx, "set aside: release the agent's capacity")
	})
}

func (c *conversation) validateEnd(ctx workflow.Context, r ActionRequest) error {
	if _, ok := c.findUpdate(ctx, UpdateEnd); ok {
		return nil // answered with its first result
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	if c.state.State != StateActive && c.state.State != StateWaiting {
		return refuse("only an active or waiting conversation can be ended; it is %s", c.state.State)
	}
	return c.validateActor(r.ActorAgentID)
}

// end moves to wrap-up and sends the workstream's "conversation ended"
// message, if any, only inside the 24-hour window and never tagged.
func (c *conversation) end(ctx workflow.Context, r ActionRequest) (TransitionResult, error) {
	return c.transitionUpdate(ctx, UpdateEnd, func() error { return c.validateEnd(ctx, r) }, func() error {
		if err := c.transition(ctx, StateWrapUp); err != nil {
			return err
		}
		if err := c.wrapUpCapacity(ctx); err != nil {
			return err
		}
		if text := c.state.Settings.EndedMessage; text != "" {
			if c.automatedV {
				text = c.fillAutomated(store.TriggerConversationEnded, text, nil)
			}
			if _, err := c.sendAutomated(ctx, text); err != nil {
				return err
			}
		}
		// After the "conversation ended" message: the survey comes last.
		return c.startPostSurvey(ctx)
	})
}

func (c *conversation) validateClose(ctx workflow.Context, r ActionRequest) error {
	if _, ok := c.findUpdate(ctx, UpdateClose); ok {
		return nil // answered with its first result
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	return c.validateActor(r.ActorAgentID)
}

func (c *conversation) closeByRequest(ctx workflow.Context, r ActionRequest) (TransitionResult, error) {
	return c.transitionUpdate(ctx, UpdateClose, func() error { return c.validateClose(ctx, r) }, func() error {
		reason := "closed by an administrator"
		if r.ActorAgentID != "" {
			reason = "closed by agent " + r.ActorAgentID
		}
		if r.Reason != "" {
			reason = r.Reason
		}
		return c.close(ctx, reason)
	})
}

// validateReply refuses what Meta would refuse, with the reason.
func (c *conversation) validateReply(ctx workflow.Context, r ReplyRequest) error {
	if _, ok := c.findUpdate(ctx, UpdateSendReply); ok {
		return nil // answered with its first result
	}
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	if c.state.State != StateActive && !(c.nothingLost && c.state.State == StateWaiting) {
		return refuse("only the agent of an active or waiting conversation can reply; it is %s", c.state.State)
	}
	if r.AgentID == "" || r.AgentID != c.state.AgentID {
		return refuse("the conversation is not assigned to agent %s", r.AgentID)
	}
	attached := r.AttachmentURL != "" || r.File != nil
	switch {
	case r.Text == "" && !attached:
		return refuse("a reply needs text or an attachment")
	case r.Text != "" && attached:
		return refuse("send the text and the attachment as two replies")
	case r.AttachmentURL != "" && r.File != nil:
		return refuse("a reply carries one attachment")
	case messenger.TextLength(r.Text) > MaxReplyLength:
		return refuse("the reply is longer than %d characters", MaxReplyLength)
	case attached && !r.AgentAttachments:
		return refuse(AgentAttachmentsOff)
	case r.File != nil:
		f := r.File
		switch {
		case !slices.Contains(messenger.AttachmentTypes, f.Type):
			return refuse("attachment type must be image, audio, video or file")
		case f.BlobKey == "" || f.SHA256 == "":
			return refuse("the file was not stored")
		case f.Size > messenger.MaxAttachmentSize:
			return refuse("the file is %s; Messenger accepts files up to %s", messenger.ByteSize(f.Size), messenger.MaxAttachmentSizeText)
		}
	case r.AttachmentURL != "":
		switch r.AttachmentType {
		case messenger.AttachmentImage, messenger.AttachmentAudio, messenger.AttachmentVideo, messenger.AttachmentFile:
		default:
			return refuse("attachment type must be image, audio, video or file")
		}
		if u, err := url.Parse(r.AttachmentURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return refuse("the attachment URL must be an absolute http(s) URL")
		}
	}
	if m := c.threadMode(ReplyMode(workflow.Now(ctx), c.state.LastCustomerMessageAt, c.windows, r.HumanAgentTag, false)); m.Mode == ModeNone {
		return refuse("%s", m.Reason)
	}
	return nil
}

func (c *conversation) sendReply(ctx workflow.Context, r ReplyRequest) (ReplyResult, error) {
	var out ReplyResult
	if ok, err := c.answered(ctx, UpdateSendReply, &out); ok {
		return out, err
	}
	c.updatesThisRun++
	if c.nothingLost {
		out, err := c.sendReplyLocked(ctx, r)
		if err == nil {
			c.remember(ctx, UpdateSendReply, out)
		}
		return out, err
	}
	if err := c.sendMu.Lock(ctx); err != nil {
		return ReplyResult{}, err
	}
	defer c.sendMu.Unlock()
	parts := replyParts(r)
	res, err := c.send(ctx, parts)
	c.state.AgentMessages += len(parts)
	c.state.LastActivityAt = workflow.Now(ctx).UTC()
	c.wake.SendAsync(true)
	return ReplyResult{Messages: res}, err
}

// sendReplyLocked checks the reply again under the state mutex, brings a
// waiting conversation back to active (the agent answers; Meta accepts it),
// and takes the send mutex before releasing the state one, so that replies
// go out in the order they were accepted.
func (c *conversation) sendReplyLocked(ctx workflow.Context, r ReplyRequest) (ReplyResult, error) {
	unlock, err := c.lock(ctx)
	if err != nil {
		return ReplyResult{}, err
	}
	if err := c.validateReply(ctx, r); err != nil {
		unlock()
		return ReplyResult{}, err
	}
	if c.state.State == StateWaiting {
		// The agent answers: the conversation comes back to it, taking its
		// capacity again; without room it stays waiting, and the reply still goes.
		back := true
		if c.ledger() {
			if _, err := c.claim(ctx, "assign", r.AgentID, "", false); err != nil {
				if _, refused := IsRefused(err); !refused {
					unlock()
					return ReplyResult{}, err
				}
				back = false
			}
		}
		if back {
			if err := c.transition(ctx, StateActive); err != nil {
				unlock()
				return ReplyResult{}, err
			}
		}
	}
	if err := c.sendMu.Lock(ctx); err != nil {
		unlock()
		return ReplyResult{}, err
	}
	unlock()
	defer c.sendMu.Unlock()
	parts := replyParts(r)
	res, err := c.send(ctx, parts)
	c.state.AgentMessages += len(parts)
	c.state.LastActivityAt = workflow.Now(ctx).UTC()
	c.wake.SendAsync(true)
	return ReplyResult{Messages: res}, err
}

func replyParts(r ReplyRequest) []outgoing {
	var parts []outgoing
	switch {
	case r.File != nil:
		parts = []outgoing{{attachmentType: r.File.Type, file: r.File}}
	case r.AttachmentURL != "":
		parts = []outgoing{{attachmentType: r.AttachmentType, attachmentURL: r.AttachmentURL}}
	default:
		for _, t := range messenger.SplitText(r.Text, messenger.MaxTextLength) {
			parts = append(parts, outgoing{text: t})
		}
	}
	for i := range parts {
		parts[i].sender, parts[i].agentID, parts[i].tagOn = "agent", r.AgentID, r.HumanAgentTag
	}
	return parts
}

// sendAutomated sends a system message: never tagged, never outside the
// 24-hour window (it is then recorded as not sent, with the reason).
func (c *conversation) sendAutomated(ctx workflow.Context, text string) ([]MessageResult, error) {
	if err := c.sendMu.Lock(ctx); err != nil {
		return nil, err
	}
	defer c.sendMu.Unlock()
	return c.send(ctx, []outgoing{{text: text, sender: "system", automated: true}})
}

// outgoing is one message to send.
type outgoing struct {
	text, attachmentType, attachmentURL string
	// file is sent by upload; the transcript shows it from the blob store.
	file *activities.OutFile
	// quickReplies go with a text (the post-survey's rating).
	quickReplies     []messenger.QuickReply
	sender, agentID  string
	tagOn, automated bool
}

// send records the messages as pending (or failed, when nothing may be sent
// now), then sends them one after the other, in order.
func (c *conversation) send(ctx workflow.Context, parts []outgoing) ([]MessageResult, error) {
	now := workflow.Now(ctx).UTC()
	entries := make([]activities.TranscriptEntry, len(parts))
	results := make([]MessageResult, len(parts))
	for i, p := range parts {
		m := c.threadMode(ReplyMode(now, c.state.LastCustomerMessageAt, c.windows, p.tagOn, p.automated))
		e := activities.TranscriptEntry{
			Seq: c.state.NextSeq, Kind: string(messenger.KindMessage), Direction: "out", Sender: p.sender,
			Text: p.text, At: now, Status: "pending", MessagingType: m.MessagingType, Tag: m.Tag,
			AgentID: p.agentID, AttachmentType: p.attachmentType, AttachmentURL: p.attachmentURL, File: p.file,
		}
		c.state.NextSeq++
		if m.Mode == ModeNone {
			e.Status, e.ErrorReason = "failed", "not sent: "+m.Reason
		}
		entries[i] = e
		results[i] = MessageResult{ID: activities.MessageID(c.state.ConversationID, e.Seq), Seq: e.Seq, Status: e.Status,
			MessagingType: e.MessagingType, Tag: e.Tag, ErrorReason: e.ErrorReason}
	}
	actx := workflow.WithActivityOptions(ctx, storeActivity("record the outgoing messages"))
	if err := workflow.ExecuteActivity(actx, activities.RecordTranscriptName, c.recordInput(entries)).Get(ctx, nil); err != nil {
		return nil, fmt.Errorf("record outgoing messages: %w", err)
	}
	for i, p := range parts {
		if results[i].Status == "failed" {
			continue
		}
		var r MessageResult
		var err error
		if c.nothingLost {
			r, err = c.deliverChecked(ctx, p, results[i])
		} else {
			r, err = c.deliver(ctx, p, entries[i], results[i])
		}
		if err != nil {
			return results, err
		}
		results[i] = r
	}
	return results, nil
}

// deliver sends one message through the Send API. Meta's clear refusals
// fail it with their reason; throttling is retried after a pause; when the
// outcome is unknown (Meta may have accepted it), Parley waits for the echo
// that carries the message's id before trying again, so that a retry never
// sends a message twice.
func (c *conversation) deliver(ctx workflow.Context, p outgoing, e activities.TranscriptEntry, res MessageResult) (MessageResult, error) {
	id := res.ID
	c.state.Outbox[id] = ""
	defer delete(c.state.Outbox, id)
	summary := "send reply to customer"
	if p.automated {
		summary = "send automated message to customer"
	}
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			m := c.threadMode(ReplyMode(workflow.Now(ctx), c.state.LastCustomerMessageAt, c.windows, p.tagOn, p.automated))
			if m.Mode == ModeNone {
				return c.failed(ctx, res, 0, 0, "not sent: "+m.Reason)
			}
			res.MessagingType, res.Tag = m.MessagingType, m.Tag
		}
		in := c.sendInput(p, res)
		var out activities.SendOutcome
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: sendTimeout(p, 30*time.Second),
			Summary:             summary,
			// One call per attempt: this loop decides, knowing what Meta answered.
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		if err := workflow.ExecuteActivity(actx, activities.SendMessageName, in).Get(ctx, &out); err != nil {
			out = activities.SendOutcome{Outcome: activities.OutcomeUnknown, Reason: "the send did not finish: " + err.Error()}
		}
		switch out.Outcome {
		case activities.OutcomeSent:
			return c.sent(ctx, res, out.MID)
		case activities.OutcomeRefused:
			if out.Class == string(messenger.ClassTokenInvalid) {
				if err := c.flagToken(ctx, out); err != nil {
					return res, err
				}
			}
			return c.failed(ctx, res, out.Code, out.Subcode, out.Reason)
		case activities.OutcomeRetry:
			if attempt >= c.limits.MaxSendAttempts {
				return c.failed(ctx, res, out.Code, out.Subcode, fmt.Sprintf("gave up after %d attempts: %s", attempt, out.Reason))
			}
			if err := c.pause(ctx, backoff(attempt), "pause before sending again (Meta is throttling)"); err != nil {
				return res, err
			}
		default:
			ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout:      c.limits.EchoWait,
				TimerOptions: workflow.TimerOptions{Summary: "wait for Meta's echo of the message"},
			}, func() bool { return c.state.Outbox[id] != "" })
			if err != nil {
				return res, err
			}
			if ok {
				return c.sent(ctx, res, c.state.Outbox[id])
			}
			if attempt >= c.limits.MaxSendAttempts {
				return c.failed(ctx, res, out.Code, out.Subcode, fmt.Sprintf("gave up after %d attempts: %s", attempt, out.Reason))
			}
		}
	}
}

func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt-1, 6)
	return min(d, time.Minute)
}

func (c *conversation) sent(ctx workflow.Context, res MessageResult, mid string) (MessageResult, error) {
	actx := workflow.WithActivityOptions(ctx, storeActivity("mark the message sent"))
	in := activities.MarkSentInput{MessageID: res.ID, MID: mid, At: workflow.Now(ctx).UTC()}
	if err := workflow.ExecuteActivity(actx, activities.MarkMessageSentName, in).Get(ctx, nil); err != nil {
		return res, fmt.Errorf("mark sent: %w", err)
	}
	res.Status, res.MID = "sent", mid
	return res, nil
}

func (c *conversation) failed(ctx workflow.Context, res MessageResult, code, subcode int, reason string) (MessageResult, error) {
	actx := workflow.WithActivityOptions(ctx, storeActivity("mark the message failed"))
	in := activities.MarkFailedInput{MessageID: res.ID, Code: code, Subcode: subcode, Reason: reason}
	if err := workflow.ExecuteActivity(actx, activities.MarkMessageFailedName, in).Get(ctx, nil); err != nil {
		return res, fmt.Errorf("mark failed: %w", err)
	}
	res.Status, res.ErrorCode, res.ErrorSubcode, res.ErrorReason = "failed", code, subcode, reason
	return res, nil
}

func (c *conversation) flagToken(ctx workflow.Context, out activities.SendOutcome) error {
	actx := workflow.WithActivityOptions(ctx, storeActivity("flag the page's token as invalid"))
	in := activities.TokenInvalidInput{PageRef: c.in.PageRef, Code: out.Code, Subcode: out.Subcode, Reason: out.Reason}
	if err := workflow.ExecuteActivity(actx, activities.MarkPageTokenInvalidName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("flag page token: %w", err)
	}
	return nil
}
