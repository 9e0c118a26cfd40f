package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"parley/store"
	"parley/testenv"
)

// breakdown splits message-to-offer latency in two, from the event log:
// message to queued (gateway, conversation start, routing) and queued to
// offer (distribution).
func breakdown(e *testenv.Env, sent map[string]time.Time) {
	ctx := context.Background()
	evs, _ := e.App.Store.EventsAfter(ctx, 0, 100000)
	queued, offered := map[string]time.Time{}, map[string]time.Time{}
	for _, ev := range evs {
		switch ev.Type {
		case store.EventConversationQueued:
			if _, ok := queued[ev.ConversationID]; !ok {
				queued[ev.ConversationID] = ev.CreatedAt
			}
		case store.EventOfferCreated:
			if _, ok := offered[ev.ConversationID]; !ok {
				offered[ev.ConversationID] = ev.CreatedAt
			}
		}
	}
	var a, b []time.Duration
	for conv, q := range queued {
		cv, err := e.App.Store.GetConversation(ctx, conv)
		if err != nil {
			continue
		}
		if s, ok := sent[cv.PSID]; ok {
			a = append(a, q.Sub(s))
		}
		if o, ok := offered[conv]; ok {
			b = append(b, o.Sub(q))
		}
	}
	p := func(l []time.Duration) string {
		if len(l) == 0 {
			return "-"
		}
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		return fmt.Sprintf("p50 %s, p99 %s", l[len(l)/2].Round(time.Millisecond), l[len(l)*99/100].Round(time.Millisecond))
	}
	fmt.Printf("message to queued: %s; queued to offer: %s\n", p(a), p(b))
}
