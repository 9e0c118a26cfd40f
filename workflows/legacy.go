package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// runLegacy is the recording-only loop of conversations started before the
// lifecycle (versionLifecycle). It replays their histories unchanged; at its
// next event such a conversation continues as new into the lifecycle.
func (c *conversation) runLegacy(ctx workflow.Context) error {
	if c.state.ConversationID == "" {
		if err := c.open(ctx); err != nil {
			return err
		}
	}
	c.state.Runs++
	c.describeLegacy(ctx)
	for i := 1; ; i++ {
		var first MessengerEventsSignal
		c.signals.Receive(ctx, &first)
		c.signalsThisRun++
		batch := append(first.Events, c.drain()...)
		if err := c.record(ctx, batch); err != nil {
			return err
		}
		c.describeLegacy(ctx)
		// GetVersion answers once per change id for a whole run, so each
		// iteration asks with its own: replayed ones say DefaultVersion, the
		// first new one says 1 and the conversation moves to the lifecycle.
		upgrade := fmt.Sprintf("%s-%d", versionUpgrade, i)
		if workflow.GetVersion(ctx, upgrade, workflow.DefaultVersion, 1) == 1 || c.shouldContinueAsNew(ctx) {
			return c.continueAsNew(ctx)
		}
	}
}

func (c *conversation) describeLegacy(ctx workflow.Context) {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**: waiting for an agent.\n\n", strings.ToUpper(c.state.State[:1])+c.state.State[1:])
	fmt.Fprintf(&b, "%d message(s) from the customer, %d from the page.", c.state.CustomerMessages, c.state.PageMessages)
	if c.state.LastCustomerMessageAt != nil {
		fmt.Fprintf(&b, " Last customer message at %s.", c.state.LastCustomerMessageAt.Format(time.RFC3339))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}
