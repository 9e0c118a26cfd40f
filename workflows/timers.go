package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// lazyTimer is one timer for one deadline. A deadline that moves later
// leaves the timer alone: when it fires early the loop re-arms it. Only a
// deadline that moves earlier cancels it. Never a timer per message.
type lazyTimer struct {
	summary string
	at      time.Time
	future  workflow.Future
	cancel  workflow.CancelFunc
}

func (t *lazyTimer) arm(ctx workflow.Context, deadline time.Time) {
	now := workflow.Now(ctx)
	if t.future != nil {
		if !deadline.IsZero() && !t.at.After(deadline) {
			return // fires at or before the deadline: re-armed then if need be
		}
		t.cancel()
		t.future = nil
	}
	if deadline.IsZero() || !deadline.After(now) {
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	t.future = workflow.NewTimerWithOptions(tctx, deadline.Sub(now), workflow.TimerOptions{Summary: t.summary})
	t.at, t.cancel = deadline, cancel
}

// fire is the selector callback: the timer is spent.
func (t *lazyTimer) fire(workflow.Future) {
	t.future = nil
}
