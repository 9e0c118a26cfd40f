package workflows_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"parley/activities"
	"parley/routing"
	"parley/store"
	"parley/workflows"
)

// sentTexts are the texts Meta received; it fails the test on any tagged
// automated message or any {variable} left unfilled.
func (h *harness) sentTexts() []string {
	h.t.Helper()
	var texts []string
	for _, s := range h.sends {
		texts = append(texts, s.Text)
		if s.Tag != "" || s.MessagingType != "RESPONSE" {
			h.t.Errorf("automated message %q sent as %s/%s, want RESPONSE untagged", s.Text, s.MessagingType, s.Tag)
		}
		if strings.ContainsAny(s.Text, "{}") {
			h.t.Errorf("sent %q with a variable left unfilled", s.Text)
		}
	}
	return texts
}

// A new conversation gets the greeting, then the privacy notice, then the
// queue position and, once an agent accepts, agent_assigned: every variable
// filled, in the customer's language when a translation matches, and
// without a name when Meta gives none.
func TestGreetingPrivacyNoticeAndRoutingMessagesFillEveryVariable(t *testing.T) {
	for _, tc := range []struct {
		what    string
		profile func(now time.Time) activities.CustomerProfile
		want    []string
	}{
		{"named", func(now time.Time) activities.CustomerProfile {
			return activities.CustomerProfile{Status: store.ProfileKnown, FirstName: "Ada", LastName: "Lovelace", FetchedAt: now}
		}, []string{"Hello Ada!", "This conversation may be recorded.", "Ada, you are number 1 in General (open 24/7).",
			"Tom from General is with you, Ada."}},
		{"french locale", func(now time.Time) activities.CustomerProfile {
			return activities.CustomerProfile{Status: store.ProfileKnown, FirstName: "Ada", Locale: "fr_CA", FetchedAt: now}
		}, []string{"Bonjour Ada !", "This conversation may be recorded.", "Ada, you are number 1 in General (open 24/7).",
			"Tom from General is with you, Ada."}},
		// No name from Meta: left out with the space before it, never a
		// made-up name.
		{"unnamed", nil, []string{"Hello!", "This conversation may be recorded.", "You are number 1 in General (open 24/7).",
			"Tom from General is with you."}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			f := newRoutingFixture(t)
			general := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
			tom := f.agent("Tom", 2, routing.PresenceAvailable, "General")
			h := f.routed(push(general.ID))
			h.profile = tc.profile
			h.settings.Messages = map[string]string{
				store.TriggerGreeting:         "Hello {first_name}!",
				store.TriggerPrivacyNotice:    "This conversation may be recorded.",
				store.TriggerQueuePosition:    "{first_name}, you are number {position} in {queue} (open {hours}).",
				store.TriggerAgentAssigned:    "{agent} from {queue} is with you, {first_name}.",
				store.TriggerTransferAccepted: "unused",
			}
			h.settings.Translations = map[string]map[string]string{store.TriggerGreeting: {"fr": "Bonjour {first_name} !"}}
			h.customer(0, "m1", "hello")
			h.distribute(time.Second, 10*time.Second)
			h.offerUpdate(5*time.Second, "accept", workflows.UpdateAccept, tom.ID)
			h.run(time.Minute)
			h.completed("accept")
			if got := h.sentTexts(); !slices.Equal(got, tc.want) {
				t.Errorf("sent %q, want %q", got, tc.want)
			}
		})
	}
}

// An automated message that comes due after the 24-hour window closed is
// not sent (not even tagged), and the transcript records why.
func TestAnAutomatedMessageDueAfterTheWindowIsNotSentAndTheTranscriptSaysWhy(t *testing.T) {
	f := newRoutingFixture(t)
	general := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
	tom := f.agent("Tom", 2, routing.PresenceAway, "General")
	h := f.routed(push(general.ID))
	h.settings.HumanAgentTag = true // tagging allowed for agents: still never for automated messages
	h.settings.Messages = map[string]string{
		store.TriggerGreeting:      "Hello {first_name}!",
		store.TriggerAgentAssigned: "{agent} is with you.",
	}
	h.customer(0, "m1", "hello")
	h.at(25*time.Hour, func() {
		h.update(0, "assign", workflows.UpdateAssign, workflows.AssignRequest{ConversationID: h.state().ConversationID, AgentID: tom.ID})
	})
	h.run(26 * time.Hour)
	h.completed("assign")
	if got := h.sentTexts(); !slices.Equal(got, []string{"Hello!"}) {
		t.Fatalf("sent %q, want only the greeting, inside the window", got)
	}
	i := slices.IndexFunc(h.entries, func(e activities.TranscriptEntry) bool { return e.Text == "Tom is with you." })
	if i < 0 {
		t.Fatalf("the transcript does not record the agent_assigned message: %+v", h.entries)
	}
	if e := h.entries[i]; e.Status != "failed" || e.Sender != "system" || e.Tag != "" ||
		!strings.Contains(e.ErrorReason, "not sent: automated messages may only be sent inside") {
		t.Fatalf("agent_assigned after the window recorded as %+v, want failed with the reason", e)
	}
}

// A transfer that took effect tells the customer where it went.
func TestTransferAcceptedIsSentAfterTheTransfer(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("Billing", 1, routing.Overflow{}, routing.OperatingHours{})
	ada := f.agent("Ada", 2, routing.PresenceAvailable, "Billing")
	sue := f.agent("Sue", 2, routing.PresenceAway)
	h := f.routed(push(q.ID))
	h.settings.Messages = map[string]string{store.TriggerTransferAccepted: "You are being helped by {agent} now."}
	h.customer(0, "m1", "my router is broken")
	h.distribute(time.Second, 10*time.Second)
	h.offerUpdate(5*time.Second, "accept ada", workflows.UpdateAccept, ada.ID)
	h.at(20*time.Second, func() {
		h.update(0, "to sue", workflows.UpdateTransfer, workflows.TransferRequest{ConversationID: h.state().ConversationID,
			ActorAgentID: ada.ID, AgentID: sue.ID})
	})
	h.run(time.Minute)
	h.completed("to sue")
	if got := h.sentTexts(); !slices.Equal(got, []string{"You are being helped by Sue now."}) {
		t.Fatalf("sent %q, want the transfer_accepted message naming Sue", got)
	}
}

// A queue closed for a holiday sends the holiday message, not out_of_hours.
func TestAHolidaySendsTheHolidayMessageInsteadOfOutOfHours(t *testing.T) {
	f := newRoutingFixture(t)
	start := time.Now().UTC()
	closed := routing.OperatingHours{TimeZone: "UTC", Holidays: []string{start.Format(time.DateOnly), start.Add(24 * time.Hour).Format(time.DateOnly)}}
	q := f.queue("Billing", 1, routing.Overflow{OutOfHours: &routing.OverflowAction{Action: routing.ActionEnd}}, closed)
	h := f.routed(push(q.ID))
	h.settings.Messages = map[string]string{
		store.TriggerOutOfHours: "{queue} is closed.",
		store.TriggerHoliday:    "{queue} is closed for a holiday.",
	}
	h.customer(0, "m1", "hello")
	h.run(time.Minute)
	if got := h.sentTexts(); !slices.Equal(got, []string{"Billing is closed for a holiday."}) {
		t.Fatalf("sent %q, want the holiday message only", got)
	}
}

// The position is announced on joining a queue, and again on joining
// another (a transfer), which transfer_accepted names.
func TestQueuePositionIsAnnouncedInEachQueueAndTransferAcceptedNamesIt(t *testing.T) {
	f := newRoutingFixture(t)
	general := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
	tech := f.queue("Tech", 1, routing.Overflow{}, routing.OperatingHours{})
	h := f.routed(push(general.ID))
	h.settings.Messages = map[string]string{
		store.TriggerQueuePosition:    "You are number {position} in {queue}.",
		store.TriggerTransferAccepted: "Transferred to {queue}.",
	}
	h.settings.PositionStep, h.settings.PositionEvery = 5, time.Hour
	h.customer(0, "m1", "hello")
	h.at(30*time.Second, func() {
		h.update(0, "to tech", workflows.UpdateTransfer, workflows.TransferRequest{ConversationID: h.state().ConversationID, QueueID: tech.ID})
	})
	h.run(time.Minute)
	h.completed("to tech")
	want := []string{"You are number 1 in General.", "You are number 1 in Tech.", "Transferred to Tech."}
	if got := h.sentTexts(); !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
}
