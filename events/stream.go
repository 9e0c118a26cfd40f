package events

import (
	"context"
	"fmt"

	"parley/store"
)

// Reset tells a client that it cannot have every event after the id it
// resumed from (they were pruned, or the id is unknown): it should reload
// its state, then carry on with the stream, which continues after ID.
type Reset struct {
	// ID is where the stream continues: the next event has a larger id.
	// Sent as the SSE id, so that a reconnect resumes from here.
	ID      int64
	Reason  string // "pruned" or "unknown_id"
	Message string
}

// Item is what a Stream yields: an event, or a reset notice.
type Item struct {
	Event store.Event
	Reset *Reset
}

// Stream is one client's ordered events: those after its starting point,
// replayed from the database, then live from the hub, each once.
type Stream struct {
	h       *Hub
	sub     *Subscription
	cursor  int64 // the last id yielded (or the starting point)
	replay  bool  // still reading the database
	pending []store.Event
	reset   *Reset
}

// Open starts a stream at the present: the events committed after the
// latest one in the database now. (The hub may lag behind the database by
// a poll: the live events up to the latest are dropped, none is missing.)
func (h *Hub) Open(ctx context.Context) (*Stream, error) {
	sub, last, err := h.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := h.src.LatestEventID(ctx)
	if err != nil {
		sub.Close()
		return nil, err
	}
	return &Stream{h: h, sub: sub, cursor: max(last, latest)}, nil
}

// OpenAfter starts a stream with the events after id after (a client's
// Last-Event-ID): it replays them from the database, then goes live,
// without a gap or a duplicate. It subscribes first, then replays, and
// drops the live events that the replay already yielded. When events after
// after were pruned (after < oldest retained - 1), or after is beyond the
// latest event, the stream starts with a Reset and continues from the
// oldest retained event (or the latest).
func (h *Hub) OpenAfter(ctx context.Context, after int64) (*Stream, error) {
	if after < 0 {
		return nil, fmt.Errorf("events: negative event id %d", after)
	}
	sub, _, err := h.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	st := &Stream{h: h, sub: sub, cursor: after, replay: true}
	latest, err := h.src.LatestEventID(ctx)
	if err != nil {
		sub.Close()
		return nil, err
	}
	if after > latest {
		st.cursor = latest
		st.reset = &Reset{ID: latest, Reason: "unknown_id", Message: fmt.Sprintf(
			"event id %d is unknown (the latest is %d): reload your state (conversations, offers, presence); events continue after %d",
			after, latest, latest)}
		return st, nil
	}
	oldest, err := h.src.OldestEventID(ctx)
	if err != nil {
		sub.Close()
		return nil, err
	}
	if after < oldest-1 {
		st.cursor = oldest - 1
		st.reset = prunedReset(after, oldest-1)
	}
	return st, nil
}

func prunedReset(after, resume int64) *Reset {
	return &Reset{ID: resume, Reason: "pruned", Message: fmt.Sprintf(
		"events %d to %d are past the retention window and were deleted: reload your state (conversations, offers, presence); events continue after %d",
		after+1, resume, resume)}
}

// Next blocks until the next item, ctx's end or the subscription's end
// (ErrSlow: reconnect with the last id; ErrClosed: the server stops).
func (st *Stream) Next(ctx context.Context) (Item, error) {
	for {
		if r := st.reset; r != nil {
			st.reset = nil
			return Item{Reset: r}, nil
		}
		if len(st.pending) > 0 {
			ev := st.pending[0]
			if ev.ID <= st.cursor {
				st.pending = st.pending[1:]
				continue
			}
			if ev.ID > st.cursor+1 {
				// Ids are dense: a hole is events pruned while we read.
				st.reset = prunedReset(st.cursor, ev.ID-1)
				st.cursor = ev.ID - 1
				continue
			}
			st.pending = st.pending[1:]
			st.cursor = ev.ID
			return Item{Event: ev}, nil
		}
		if st.replay {
			evs, err := st.h.src.EventsAfter(ctx, st.cursor, st.h.opts.Batch)
			if err != nil {
				return Item{}, err
			}
			if len(evs) < st.h.opts.Batch {
				st.replay = false
			}
			st.pending = evs
			continue
		}
		select {
		case <-ctx.Done():
			return Item{}, ctx.Err()
		case ev, ok := <-st.sub.C():
			if !ok {
				if err := st.sub.Err(); err != nil {
					return Item{}, err
				}
				return Item{}, ErrClosed
			}
			st.pending = append(st.pending[:0], ev)
		}
	}
}

// Cursor is the id of the last item yielded (or the starting point).
func (st *Stream) Cursor() int64 { return st.cursor }

// Close ends the stream.
func (st *Stream) Close() { st.sub.Close() }
