package activities_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"parley/activities"
	"parley/metrics"
	"parley/routing"
	"parley/secrets"
	"parley/store"
)

// TestRoutingCountsOffers: offers made by a round, then accepted, timed
// out, withdrawn by a release or by a supervisor's assign; an offer ended
// twice counts once.
func TestRoutingCountsOffers(t *testing.T) {
	ctx := context.Background()
	box, err := secrets.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "offers.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := st.CreateQueue(ctx, store.Queue{Name: "Sales", Method: routing.MethodHighestCapacity})
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, name := range []string{"Ada", "Grace", "Linus", "Ken"} {
		a, err := st.CreateAgent(ctx, name, strings.ToLower(name)+"@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetPresence(ctx, a.ID, routing.PresenceAvailable); err != nil {
			t.Fatal(err)
		}
		if err := st.AddQueueAgent(ctx, q.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, a.ID)
	}
	now := time.Now().UTC()
	dist := routing.Distribution{Mode: routing.ModePush, CapacityUnits: 1,
		AllowedPresences: []string{routing.PresenceAvailable, routing.PresenceBusy},
		OfferTimeout:     routing.Duration(2 * time.Minute), FallbackQueueID: q.ID}
	for i := range 4 {
		c := fmt.Sprintf("conv-%d", i)
		res, err := st.RouteAndEnqueue(ctx, store.Route{ConversationID: c, WorkflowID: "wf-" + c, PageRef: "page", RouteID: "r-" + c,
			Distribution: dist, QueueID: q.ID, WaitingSince: now.Add(-time.Duration(4-i) * time.Minute), Now: now})
		if err != nil || res.Outcome != store.RouteQueued {
			t.Fatalf("enqueue %s: %+v %v", c, res, err)
		}
	}

	m := metrics.New(metrics.Options{})
	t.Cleanup(func() { m.Close() })
	rt := &activities.Routing{Store: st, Metrics: m}
	offers, err := rt.DistributeRound(ctx, "round-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 4 {
		t.Fatalf("%d offers, want 4 (4 free agents, 4 waiting)", len(offers))
	}
	if _, err := rt.AcceptOffer(ctx, activities.AcceptInput{ConversationID: offers[0].ConversationID, OfferID: offers[0].OfferID,
		AgentID: offers[0].AgentID, Now: now}); err != nil {
		t.Fatal(err)
	}
	timeout := store.Decline{ConversationID: offers[1].ConversationID, OfferID: offers[1].OfferID, Why: store.DeclineTimedOut, Now: now}
	for range 2 { // the second finds the offer gone: not counted
		if _, err := rt.DeclineOffer(ctx, timeout); err != nil {
			t.Fatal(err)
		}
	}
	// The conversation closes while offered: the offer is withdrawn.
	if _, err := rt.ReleaseCapacity(ctx, activities.ReleaseInput{ConversationID: offers[2].ConversationID, Now: now}); err != nil {
		t.Fatal(err)
	}
	// A supervisor assigns the last one, still offered, to the agent whose
	// offer timed out: its offer is withdrawn.
	claim := activities.ClaimInput{Claim: store.Claim{ConversationID: offers[3].ConversationID, AgentID: offers[1].AgentID,
		How: store.ClaimAssign, Now: now}}
	if res, err := rt.ClaimConversation(ctx, claim); err != nil || res.WithdrawnOfferID != offers[3].OfferID {
		t.Fatalf("assign while offered: %+v, %v; want offer %s withdrawn", res, err, offers[3].OfferID)
	}
	// Releasing the accepted one frees capacity but withdraws no offer.
	if _, err := rt.ReleaseCapacity(ctx, activities.ReleaseInput{ConversationID: offers[0].ConversationID, Now: now}); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP parley_offers_total Offers of conversations to agents: created, then how they ended (accepted, rejected, timed_out, withdrawn).
# TYPE parley_offers_total counter
parley_offers_total{outcome="accepted"} 1
parley_offers_total{outcome="created"} 4
parley_offers_total{outcome="rejected"} 0
parley_offers_total{outcome="timed_out"} 1
parley_offers_total{outcome="withdrawn"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "parley_offers_total"); err != nil {
		t.Error(err)
	}

	// Without metrics the same calls work (nil Metrics).
	plain := &activities.Routing{Store: st}
	if _, err := plain.DeclineOffer(ctx, timeout); err != nil {
		t.Error(err)
	}
}
