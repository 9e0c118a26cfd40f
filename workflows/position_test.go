package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"parley/routing"
	"parley/store"
	"parley/workflows"
)

// While a customer waits, the position is read again and announced when it
// moved by the workstream's step, at most every "every" minutes.
func TestQueuePositionIsAnnouncedAgainWhenItMovesByTheStep(t *testing.T) {
	f := newRoutingFixture(t)
	q := f.queue("General", 1, routing.Overflow{}, routing.OperatingHours{})
	h := f.routed(push(q.ID))
	h.settings.Messages = map[string]string{store.TriggerQueuePosition: "You are number {position} in {queue}."}
	h.settings.PositionStep, h.settings.PositionEvery = 2, 5*time.Minute
	ctx := context.Background()
	// Four customers wait ahead; no agent is available.
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("ahead-%d", i)
		if _, err := f.st.RouteAndEnqueue(ctx, store.Route{ConversationID: id, WorkflowID: "conversation/" + id, PageRef: "page-1", RouteID: id,
			Distribution: push(q.ID).WithDefaults(), QueueID: q.ID, WaitingSince: h.start.Add(-time.Hour), Now: h.start}); err != nil {
			t.Fatal(err)
		}
	}
	leave := func(d time.Duration, ids ...string) {
		h.at(d, func() {
			for _, id := range ids {
				if _, err := f.st.ReleaseConversation(ctx, id, h.env.Now()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	h.customer(0, "m1", "hello")
	leave(3*time.Minute, "ahead-1")             // 4th at the 5 min check: moved 1, not announced
	leave(6*time.Minute, "ahead-2")             // 3rd at the 10 min check: moved 2
	leave(11*time.Minute, "ahead-3", "ahead-4") // 1st at the 15 min check
	var at14 workflows.ConversationState
	h.at(14*time.Minute, func() { at14 = h.state() })
	h.run(20 * time.Minute)
	want := []string{"You are number 5 in General.", "You are number 3 in General.", "You are number 1 in General."}
	if got := h.sentTexts(); !slices.Equal(got, want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	if at14.Queue == nil || at14.Queue.Position != 3 {
		t.Errorf("position at 14 min: %+v, want 3 (as last read)", at14.Queue)
	}
	for i, s := range h.sends {
		if s.MessagingType != "RESPONSE" || s.Tag != "" {
			t.Errorf("send %d = %+v, want an untagged response", i, s)
		}
	}
}
