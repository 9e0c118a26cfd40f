package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
)

// deliverChecked sends one message through the Send API, never twice:
//   - a failure before Meta was called (database, page lookup) is retried
//     like any activity failure; a permanent one (page deleted, invalid
//     message) fails the message with its reason;
//   - Meta's clear refusals fail it with their reason, and flag the page
//     when the page itself is at fault;
//   - throttling is retried after a pause;
//   - when the outcome is unknown (Meta may hold the message), Parley waits
//     briefly for the echo, then looks for the message on Meta's side, and
//     sends again only when Meta says it is absent; without the permissions
//     to look, it waits longer for the echo.
//
// The messaging type is decided at each send, with the edge margin; a reply
// refused as outside the window is retried once as HUMAN_AGENT when allowed.
func (c *conversation) deliverChecked(ctx workflow.Context, p outgoing, res MessageResult) (MessageResult, error) {
	id := res.ID
	c.state.Outbox[id] = ""
	defer delete(c.state.Outbox, id)
	summary := "send reply to customer"
	if p.automated {
		summary = "send automated message to customer"
	}
	forceHumanAgent := false
	notAttempted := 0
	var firstTry time.Time
	for attempt := 1; ; {
		m := c.threadMode(ReplyMode(workflow.Now(ctx), c.state.LastCustomerMessageAt, c.windows, p.tagOn, p.automated))
		if forceHumanAgent && m.Mode == ModeResponse {
			m.Mode, m.MessagingType, m.Tag = ModeHumanAgent, messenger.MessagingTypeMessageTag, messenger.TagHumanAgent
		}
		if m.Mode == ModeNone {
			return c.failed(ctx, res, 0, 0, "not sent: "+m.Reason)
		}
		res.MessagingType, res.Tag = m.MessagingType, m.Tag
		in := c.sendInput(p, res)
		if firstTry.IsZero() {
			firstTry = workflow.Now(ctx).UTC()
		}
		var out activities.SendOutcome
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: sendTimeout(p, c.limits.SendTimeout),
			Summary:             summary,
			// One call per attempt: a retry could send the message twice.
			// This loop decides, knowing what Meta answered.
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		err := workflow.ExecuteActivity(actx, activities.SendMessageName, in).Get(ctx, &out)
		if err != nil {
			var ae *temporal.ApplicationError
			switch {
			case errors.As(err, &ae) && ae.Type() == activities.SendNotAttemptedErrorType:
				// Meta was not called: retry as any activity, without
				// counting it as an attempt at Meta.
				notAttempted++
				if err := c.pause(ctx, backoff(notAttempted), "pause before trying to send again (Parley could not prepare the send)"); err != nil {
					return res, err
				}
				continue
			case errors.As(err, &ae) && ae.Type() == activities.SendImpossibleErrorType:
				return c.failed(ctx, res, 0, 0, "not sent: "+ae.Message())
			}
			// Timed out, or the worker died during the call: Meta may hold it.
			out = activities.SendOutcome{Outcome: activities.OutcomeUnknown, Reason: "the send did not finish: " + err.Error()}
		}
		switch out.Outcome {
		case activities.OutcomeSent:
			return c.sent(ctx, res, out.MID)
		case activities.OutcomeRefused:
			if out.Class == string(messenger.ClassOutsideWindow) && !forceHumanAgent && res.MessagingType == messenger.MessagingTypeResponse && p.tagOn && !p.automated {
				// Meta's clock saw the 24 hours over: a human agent's reply
				// may still go with the tag while the 7 days last.
				forceHumanAgent = true
				continue
			}
			if err := c.flagPage(ctx, out); err != nil {
				return res, err
			}
			return c.failed(ctx, res, out.Code, out.Subcode, out.Reason)
		case activities.OutcomeDelayed:
			// The page's limiter held it back (Meta was not called): wait
			// for its turn; it keeps its place in the conversation's order.
			if err := c.pause(ctx, max(out.RetryAfter, time.Second), "wait for the page's send limit: "+out.Reason); err != nil {
				return res, err
			}
			continue
		case activities.OutcomeRetry:
			if c.sendLimitsOn(ctx) {
				// Meta throttles the page: its sends pause (the limiter
				// tells every worker); this one is delayed, not given up,
				// for as long as Meta's windows allow (checked above).
				if err := c.pause(ctx, max(out.RetryAfter, backoff(attempt)), "pause before sending again (Meta is throttling the page)"); err != nil {
					return res, err
				}
				attempt++
				continue
			}
			if attempt >= c.limits.MaxSendAttempts {
				return c.failed(ctx, res, out.Code, out.Subcode, fmt.Sprintf("gave up after %d attempts: %s", attempt, out.Reason))
			}
			if err := c.pause(ctx, backoff(attempt), "pause before sending again (Meta is throttling)"); err != nil {
				return res, err
			}
		default:
			mid, found, err := c.settle(ctx, id, p, firstTry)
			if err != nil {
				return res, err
			}
			if found {
				return c.sent(ctx, res, mid)
			}
			if attempt >= c.limits.MaxSendAttempts {
				return c.failed(ctx, res, out.Code, out.Subcode, fmt.Sprintf("gave up after %d attempts: %s", attempt, out.Reason))
			}
		}
		attempt++
	}
}

// versionSendLimits: per-page send limits (issue 10). A throttled send
// waits for Meta's pause instead of giving up after MaxSendAttempts. Asked
// lazily, at the first throttled answer, so that histories recorded before
// it replay unchanged.
const versionSendLimits = "send-limits"

func (c *conversation) sendLimitsOn(ctx workflow.Context) bool {
	return c.current || workflow.GetVersion(ctx, versionSendLimits, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

// sendInput is the Send API call for one message, as res says to send it.
func (c *conversation) sendInput(p outgoing, res MessageResult) activities.SendInput {
	return activities.SendInput{
		MessageID: res.ID, PageRef: c.in.PageRef, FacebookPageID: c.in.FacebookPageID, PSID: c.in.PSID,
		Text: p.text, AttachmentType: p.attachmentType, AttachmentURL: p.attachmentURL, File: p.file,
		MessagingType: res.MessagingType, Tag: res.Tag, QuickReplies: p.quickReplies,
	}
}

// sendTimeout bounds one SendMessage activity: a file may be uploaded
// (up to 25 MB) before it is sent.
func sendTimeout(p outgoing, d time.Duration) time.Duration {
	if p.file != nil {
		return d + messenger.UploadTimeout
	}
	return d
}

func (c *conversation) pause(ctx workflow.Context, d time.Duration, summary string) error {
	return workflow.NewTimerWithOptions(ctx, d, workflow.TimerOptions{Summary: summary}).Get(ctx, nil)
}

// settle finds out whether Meta holds a message whose send had no clear
// answer: its echo, or Meta's own list of the thread's messages.
func (c *conversation) settle(ctx workflow.Context, id string, p outgoing, since time.Time) (mid string, found bool, err error) {
	echoed := func() bool { return c.state.Outbox[id] != "" }
	ok, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
		Timeout:      c.limits.EchoWait,
		TimerOptions: workflow.TimerOptions{Summary: "wait for Meta's echo of the message"},
	}, echoed)
	if err != nil || ok {
		return c.state.Outbox[id], ok, err
	}
	in := activities.FindSentInput{
		MessageID: id, PageRef: c.in.PageRef, FacebookPageID: c.in.FacebookPageID, PSID: c.in.PSID,
		Text: p.text, AttachmentURL: p.attachmentURL, Since: since,
	}
	var look activities.FindSentOutcome
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             "look for the message on Meta's side",
		// Reading Meta's side is safe to retry.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(actx, activities.FindSentMessageName, in).Get(ctx, &look); err != nil {
		look = activities.FindSentOutcome{Outcome: activities.LookupUnavailable, Reason: err.Error()}
	}
	switch look.Outcome {
	case activities.LookupFound:
		return look.MID, true, nil
	case activities.LookupAbsent:
		if echoed() { // the echo came while we looked
			return c.state.Outbox[id], true, nil
		}
		return "", false, nil
	}
	// Meta's side cannot be read: only the echo can tell.
	ok, err = workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
		Timeout:      c.limits.BlindEchoWait,
		TimerOptions: workflow.TimerOptions{Summary: "wait longer for Meta's echo (Meta's side cannot be read: " + look.Reason + ")"},
	}, echoed)
	return c.state.Outbox[id], ok, err
}

// flagPage tells admins when Meta refused because of the page itself.
func (c *conversation) flagPage(ctx workflow.Context, out activities.SendOutcome) error {
	switch messenger.ErrorClass(out.Class) {
	case messenger.ClassTokenInvalid:
		return c.flagToken(ctx, out)
	case messenger.ClassPageRestricted, messenger.ClassPolicyBlock, messenger.ClassAppNotLive:
	default:
		return nil
	}
	actx := workflow.WithActivityOptions(ctx, storeActivity("flag the page: "+out.Class))
	in := activities.FlagPageInput{PageRef: c.in.PageRef, Code: out.Code, Subcode: out.Subcode, Class: out.Class, Reason: out.Reason}
	if err := workflow.ExecuteActivity(actx, activities.FlagPageName, in).Get(ctx, nil); err != nil {
		return fmt.Errorf("flag page: %w", err)
	}
	return nil
}
