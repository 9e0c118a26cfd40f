package workflows_test

import (
	"slices"
	"testing"
	"time"

	"parley/activities"
	"parley/routing"
	"parley/store"
)

// A customer whose name Meta gives is routed by a rule on the name; one
// whose profile Meta refuses keeps the PSID as identity (no name), goes to
// the fallback queue, and is asked about again only once the wait is over,
// not on every message.
func TestTheCustomersNameIsRoutingContextAndARefusalIsRetriedLater(t *testing.T) {
	for _, tc := range []struct {
		what      string
		profile   func(now time.Time) activities.CustomerProfile
		wantQueue string
		wantCalls int
	}{
		{"named", func(now time.Time) activities.CustomerProfile {
			return activities.CustomerProfile{Status: store.ProfileKnown, FirstName: "Ada", LastName: "Lovelace", FetchedAt: now}
		}, "VIP", 1},
		// Messages at 0, 20 s and 90 s: asked at 0 and, the 1 min wait over, at 90 s.
		{"refused", nil, "General", 2},
	} {
		t.Run(tc.what, func(t *testing.T) {
			f := newRoutingFixture(t)
			general := f.queue("General", 2, routing.Overflow{}, routing.OperatingHours{})
			vip := f.queue("VIP", 1, routing.Overflow{}, routing.OperatingHours{})
			f.agent("Ada", 3, routing.PresenceAway, "General", "VIP")
			d := push(general.ID)
			d.Rules = []routing.Rule{{Name: "Ada", QueueID: vip.ID, Conditions: []routing.Condition{
				{Field: routing.FieldCustomerName, Operator: routing.OpContains, Value: "Lovelace"}}}}
			h := f.routed(d)
			h.profile = tc.profile
			h.customer(0, "m1", "hello")
			h.customer(20*time.Second, "m2", "anyone?")
			h.customer(90*time.Second, "m3", "hello?")
			snaps := map[time.Duration]snapshot{}
			h.snapshotAt(10*time.Second, snaps)
			h.run(2 * time.Minute)
			if s := snaps[10*time.Second]; s.queue != tc.wantQueue {
				t.Errorf("queued in %q, want %q", s.queue, tc.wantQueue)
			}
			if h.profileCalls != tc.wantCalls {
				t.Errorf("%d profile reads, want %d", h.profileCalls, tc.wantCalls)
			}
			c := h.state().Customer
			if c == nil {
				t.Fatal("no customer profile in the conversation's state")
			}
			if tc.profile == nil && (c.Name() != "" || c.Status != store.ProfileUnavailable) {
				t.Errorf("refused profile: %+v, want no name", c)
			}
		})
	}
}

// The workstream's privacy notice goes to a new conversation first, before
// the routing messages, untagged; a later message of the same conversation
// does not send it again.
func TestThePrivacyNoticeGoesFirstToANewConversationOnce(t *testing.T) {
	f := newRoutingFixture(t)
	general := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
	h := f.routed(push(general.ID))
	h.settings.Messages = map[string]string{
		store.TriggerPrivacyNotice: "This conversation may be recorded.",
		store.TriggerQueuePosition: "You are number {position} in {queue}.",
	}
	h.customer(0, "m1", "hello")
	h.customer(time.Minute, "m2", "still there?")
	h.run(2 * time.Minute)
	var texts []string
	for _, s := range h.sends {
		texts = append(texts, s.Text)
		if s.Tag != "" || s.MessagingType != "RESPONSE" {
			t.Errorf("automated message %q sent as %s/%s, want RESPONSE untagged", s.Text, s.MessagingType, s.Tag)
		}
	}
	want := []string{"This conversation may be recorded.", "You are number 1 in General."}
	if !slices.Equal(texts, want) {
		t.Errorf("sent %q, want %q", texts, want)
	}
}
