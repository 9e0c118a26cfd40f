package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
)

// versionProfile: the conversation reads its customer's profile (issue 8)
// before routing, and again when due.
const versionProfile = "customer-profile"

// loadProfile reads the customer's profile; the activity asks Meta only
// when due, and a refusal is not an error (the name stays unknown).
func (c *conversation) loadProfile(ctx workflow.Context) error {
	in := activities.ProfileInput{PageRef: c.in.PageRef, PSID: c.in.PSID, Now: workflow.Now(ctx).UTC(),
		AutoCreateContact: c.state.Settings != nil && c.state.Settings.AutoCreateContacts}
	// Local (versionLocalReads): one short Graph call at most, and what it
	// writes (the profile, the contact) is the same whoever asks.
	actx := c.readContext(ctx, storeActivity("read the customer's profile (name)"))
	var p activities.CustomerProfile
	if err := c.execRead(actx, activities.LoadProfileName, in).Get(ctx, &p); err != nil {
		return fmt.Errorf("load profile: %w", err)
	}
	c.state.Customer = &p
	return nil
}

// customerDetails says who the customer is, for Temporal Web.
func (c *conversation) customerDetails() string {
	p := c.state.Customer
	switch {
	case p == nil:
		return ""
	case p.Name() != "":
		return fmt.Sprintf("Customer: %s (PSID %s).", p.Name(), c.in.PSID)
	case p.Reason != "":
		return fmt.Sprintf("Customer: PSID %s, name unknown (%s; next try %s).", c.in.PSID, p.Reason, stamp(p.NextAttemptAt))
	}
	return fmt.Sprintf("Customer: PSID %s, name unknown.", c.in.PSID)
}
