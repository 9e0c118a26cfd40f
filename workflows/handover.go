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

// versionHandover: thread control (the handover protocol, issue 10). Asked
// lazily, at the first handover or standby event, so that histories
// recorded before it replay unchanged.
const versionHandover = "handover"

// versionThreadOwnerRow: a take or pass of the thread through the API saves
// the conversation's row, so that the API's reply mode shows who has the
// thread. Asked lazily, at the first such update.
const versionThreadOwnerRow = "thread-owner-row"

// anotherApp stands for an app whose id Meta did not give.
const anotherApp = "another app"

func (c *conversation) handoverOn(ctx workflow.Context) bool {
	return c.current || workflow.GetVersion(ctx, versionHandover, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

// trackThread follows who controls the thread: a pass_thread_control
// delivered to Parley gives it the thread, a take_thread_control takes it
// away; standby events mean another app has it, and a customer message in
// messaging[] means Parley has it again.
func (c *conversation) trackThread(ctx workflow.Context, events []messenger.Event) {
	for _, e := range events {
		relevant := e.Kind == messenger.KindHandover || (e.Standby && e.Inbound())
		if relevant && !c.handoverOn(ctx) {
			return
		}
		now := workflow.Now(ctx).UTC()
		switch {
		case e.Kind == messenger.KindHandover && e.Handover != nil:
			h := e.Handover
			switch h.Action {
			case messenger.HandoverPass:
				c.setThreadOwner("", now, "took the thread back: "+appName(h.PreviousOwnerAppID)+" passed it to Parley")
			case messenger.HandoverTake:
				owner := h.NewOwnerAppID
				if owner == "" {
					owner = anotherApp
				}
				c.setThreadOwner(owner, now, appName(owner)+" took the thread")
			case messenger.HandoverRequest:
				c.state.RoutingLog = appendLog(c.state.RoutingLog, appName(h.RequestedOwnerAppID)+" asks for the thread")
				// The agent decides: pass it, or keep it.
				c.state.ThreadRequestedBy = h.RequestedOwnerAppID
				if c.state.ThreadRequestedBy == "" {
					c.state.ThreadRequestedBy = anotherApp
				}
				c.state.ThreadAnnounce = true
			}
		case e.Standby && e.Inbound() && c.state.ThreadOwner == "":
			c.setThreadOwner(anotherApp, now, "the customer's messages arrive as standby: another app has the thread")
		case !e.Standby && e.OpensWindow() && c.state.ThreadOwner != "":
			c.setThreadOwner("", now, "the customer's messages reach Parley again: it has the thread")
		}
	}
}

func (c *conversation) setThreadOwner(owner string, now time.Time, why string) {
	if c.state.ThreadOwner == owner {
		return
	}
	c.state.ThreadOwner, c.state.ThreadOwnerSince = owner, now
	c.state.ThreadRequestedBy = ""
	c.state.ThreadAnnounce = true
	c.state.RoutingLog = appendLog(c.state.RoutingLog, why)
}

// appName names an app for people: the Page Inbox is Meta Business Suite.
func appName(id string) string {
	switch id {
	case "", anotherApp:
		return anotherApp
	case messenger.PageInboxAppID:
		return "the Page Inbox (Meta Business Suite)"
	}
	return "app " + id
}

// threadMode: while another app controls the thread, Parley sends nothing
// (agents take control first); Meta's windows still run.
func (c *conversation) threadMode(m Mode) Mode {
	return ThreadMode(m, c.state.ThreadOwner, c.state.ThreadOwnerSince, c.state.ConversationID)
}

// ThreadMode is m while owner ("" for Parley) controls the conversation's
// thread since since: nothing may be sent while another app has it. The
// REST API tells it from the conversation's row, the workflow from its state.
func ThreadMode(m Mode, owner string, since time.Time, conversationID string) Mode {
	if owner == "" || m.Mode == ModeNone {
		return m
	}
	return Mode{Mode: ModeNone, ReplyDeadline: m.ReplyDeadline, HumanAgentDeadline: m.HumanAgentDeadline,
		Reason: fmt.Sprintf("%s controls this thread on Messenger since %s: take control first (POST /api/v1/conversations/%s/take-control)",
			appName(owner), stamp(since), conversationID)}
}

// standbyOnlyWork says whether events open no work for agents: they all
// came as standby and the workstream does not open conversations for them
// (read now: it is asked before a conversation has settings).
func (c *conversation) standbyOnlyWork(ctx workflow.Context, events []messenger.Event) (bool, error) {
	if !standbyOnly(events) || !c.handoverOn(ctx) {
		return false, nil
	}
	if c.state.Settings == nil {
		if err := c.loadSettings(ctx); err != nil {
			return false, err
		}
	}
	return !c.state.Settings.StandbyOpens, nil
}

// standbyOnly says whether the window-opening events all came as standby:
// the customer talks to another app, which opens no work for agents.
func standbyOnly(events []messenger.Event) bool {
	seen := false
	for _, e := range events {
		if e.OpensWindow() {
			if !e.Standby {
				return false
			}
			seen = true
		}
	}
	return seen
}

// UpdateThreadControl takes the thread back for Parley or passes it to
// another app (ThreadControlRequest).
const UpdateThreadControl = "thread-control"

// ThreadControlRequest takes the thread (Take) or passes it to TargetAppID
// (the Page Inbox when empty). ActorAgentID is the agent asking; "" for an
// administrator or supervisor.
type ThreadControlRequest struct {
	ConversationID string `json:"conversation_id"`
	Take           bool   `json:"take"`
	TargetAppID    string `json:"target_app_id,omitempty"`
	ActorAgentID   string `json:"actor_agent_id,omitempty"`
}

// ThreadControlResult is who controls the thread now ("" for Parley).
type ThreadControlResult struct {
	ConversationID string    `json:"conversation_id"`
	ThreadOwner    string    `json:"thread_owner"`
	Since          time.Time `json:"since"`
}

func (c *conversation) validateThreadControl(ctx workflow.Context, r ThreadControlRequest) error {
	if err := c.validateTarget(r.ConversationID); err != nil {
		return err
	}
	return c.validateActor(r.ActorAgentID)
}

// threadControl asks Meta, then records who controls the thread.
func (c *conversation) threadControl(ctx workflow.Context, r ThreadControlRequest) (ThreadControlResult, error) {
	unlock, err := c.lock(ctx)
	if err != nil {
		return ThreadControlResult{}, err
	}
	defer unlock()
	if err := c.validateThreadControl(ctx, r); err != nil {
		return ThreadControlResult{}, err
	}
	target := r.TargetAppID
	if !r.Take && target == "" {
		target = messenger.PageInboxAppID
	}
	in := activities.ThreadControlInput{PageRef: c.in.PageRef, PSID: c.in.PSID, Take: r.Take, TargetAppID: target,
		Metadata: "parley conversation " + c.state.ConversationID}
	summary := "take the thread back from " + appName(c.state.ThreadOwner)
	if !r.Take {
		summary = "pass the thread to " + appName(target)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second, Summary: summary,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{activities.ThreadRefusedType}},
	})
	if err := workflow.ExecuteActivity(actx, activities.ControlThreadName, in).Get(ctx, nil); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && ae.Type() == activities.ThreadRefusedType {
			return ThreadControlResult{}, refuse("%s", ae.Message())
		}
		return ThreadControlResult{}, fmt.Errorf("thread control: %w", err)
	}
	now := workflow.Now(ctx).UTC()
	who := "a supervisor"
	if r.ActorAgentID != "" {
		who = "agent " + r.ActorAgentID
	}
	if r.Take {
		c.setThreadOwner("", now, who+" took the thread back for Parley")
	} else {
		c.setThreadOwner(target, now, who+" passed the thread to "+appName(target))
	}
	if workflow.GetVersion(ctx, versionThreadOwnerRow, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
		if err := c.save(ctx); err != nil {
			return ThreadControlResult{}, err
		}
	}
	c.wake.SendAsync(true)
	return ThreadControlResult{ConversationID: c.state.ConversationID, ThreadOwner: c.state.ThreadOwner, Since: c.state.ThreadOwnerSince}, nil
}
