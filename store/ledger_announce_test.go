package store

import (
	"context"
	"testing"
	"time"

	"parley/routing"
)

// A round made for delivery first announces nothing; AnnounceOffers then
// announces each open offer once, and never one that ended meanwhile. A
// waiting conversation's place reads back with its position and offer.
func TestLedgerAnnounceOffersAndConversationInQueue(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		billing := insertQueue(t, s, testQueue{Name: "Billing", Priority: 1})
		ada := insertAgent(t, s, "Ada", 1, routing.PresenceAvailable, billing)
		bob := insertAgent(t, s, "Bob", 1, routing.PresenceAvailable, billing)
		for i, c := range []string{"c0", "c1", "c2"} {
			enqueue(t, s, c, billing, ledgerNow.Add(time.Duration(i-10)*time.Minute))
		}
		offerEvents := func() map[string]int {
			evs, err := s.EventsAfter(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			n := map[string]int{}
			for _, e := range evs {
				if e.Type == EventOfferCreated {
					n[e.ConversationID]++
				}
			}
			return n
		}
		offers, err := s.DistributeRoundUnannounced(ctx, "r1", ledgerNow)
		if err != nil {
			t.Fatal(err)
		}
		if len(offers) != 2 || offers[0].ConversationID == offers[1].ConversationID {
			t.Fatalf("offers %+v: want c0 and c1, one each to Ada and Bob", offers)
		}
		if n := offerEvents(); len(n) != 0 {
			t.Fatalf("offer events before the announcement: %v", n)
		}
		evs, err := s.EventsAfter(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var lastQueued int64 // the round's own presence changes come after it
		for _, e := range evs {
			if e.Type == EventConversationQueued {
				lastQueued = e.ID
			}
		}
		for _, o := range offers {
			if o.MadeAfterEvent != lastQueued {
				t.Errorf("offer made after event %d, want %d (c2 queued, the last before the round)", o.MadeAfterEvent, lastQueued)
			}
		}

		// Places: c0 and c1 offered, c2 third in line.
		for i, c := range []string{"c0", "c1", "c2"} {
			q, ok, err := s.ConversationInQueue(ctx, c)
			if err != nil || !ok {
				t.Fatalf("%s in queue: %v %v", c, ok, err)
			}
			if q.Position != i+1 || q.QueueID != billing {
				t.Errorf("%s: position %d in %s, want %d in Billing", c, q.Position, q.QueueID, i+1)
			}
			offered := c != "c2"
			if offered != (q.OfferedTo == ada || q.OfferedTo == bob) || offered == q.OfferExpiresAt.IsZero() {
				t.Errorf("%s: offered to %q until %v", c, q.OfferedTo, q.OfferExpiresAt)
			}
			if offered && !q.OfferExpiresAt.Equal(ledgerNow.Add(2*time.Minute)) {
				t.Errorf("%s: offer expires %v, want the workstream's 2 min after the round", c, q.OfferExpiresAt)
			}
		}
		if _, ok, err := s.ConversationInQueue(ctx, "nobody"); err != nil || ok {
			t.Errorf("a conversation that does not wait: %v %v", ok, err)
		}

		// c1's agent rejects it before the announcement: only c0 is announced.
		var c1 OfferMade
		for _, o := range offers {
			if o.ConversationID == "c1" {
				c1 = o
			}
		}
		if _, err := s.DeclineOffer(ctx, Decline{ConversationID: "c1", OfferID: c1.OfferID, AgentID: c1.AgentID, Why: DeclineRejected, Now: ledgerNow}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // a retried round announces again: nothing doubles
			if err := s.AnnounceOffers(ctx, offers); err != nil {
				t.Fatal(err)
			}
		}
		if n := offerEvents(); n["c0"] != 1 || n["c1"] != 0 || len(n) != 1 {
			t.Errorf("offer.created events per conversation: %v, want c0 once", n)
		}
	})
}
