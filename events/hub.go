// Package events fans the live event log (store: table events) out to the
// streams of GET /api/v1/events.
//
// One Hub per API process runs ONE poller: it reads the events committed
// after the last one it saw (store.EventsAfter) and hands each to every
// subscriber in memory. It polls every PollInterval and, on PostgreSQL, also
// wakes at once on a NOTIFY that the appending transaction sends at commit
// (LISTEN on a connection of its own, reconnected after a failure); the poll
// stays as the safety net. Events are rows of the database, not process
// memory, so any number of API processes on one database serve the same
// stream, and a client resumes on any of them with Last-Event-ID.
//
// Event ids are dense and visible in commit order (store.appendEvents), so
// "every id after n, in order" is well defined: a Stream replays from the
// database, then goes live, with no gap and no duplicate; a hole in the ids
// means pruned events and becomes a reset notice.
//
// A subscriber that cannot keep up (its buffer is full) is dropped, never
// waited for: its stream ends with ErrSlow and the client reconnects with
// Last-Event-ID, reading what it missed from the database.
package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"parley/store"
)

// Source is where events come from: *store.Store.
type Source interface {
	EventsAfter(ctx context.Context, after int64, limit int) ([]store.Event, error)
	LatestEventID(ctx context.Context) (int64, error)
	OldestEventID(ctx context.Context) (int64, error)
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	// ListenEvents calls wake when events may have been committed; it
	// blocks until ctx ends or fails. store.ErrNoListen: poll only.
	ListenEvents(ctx context.Context, wake func()) error
}

var _ Source = (*store.Store)(nil)

// Defaults of Options.
const (
	DefaultPollInterval      = 250 * time.Millisecond
	DefaultRetention         = 24 * time.Hour
	DefaultPruneInterval     = 5 * time.Minute
	DefaultHeartbeat         = 15 * time.Second
	DefaultMembershipRefresh = 5 * time.Second
	DefaultBuffer            = 1024
	DefaultBatch             = 500
)

// Options tune a Hub; zero values take the defaults.
type Options struct {
	// PollInterval is how often the poller reads new events when nothing
	// wakes it.
	PollInterval time.Duration
	// Retention is how long events are kept; older ones are pruned every
	// PruneInterval. Negative: never prune.
	Retention     time.Duration
	PruneInterval time.Duration
	// Heartbeat is how often a stream with nothing to say sends a comment
	// (streams read it from the hub).
	Heartbeat time.Duration
	// MembershipRefresh is how often an agent's stream re-reads the
	// queues the agent belongs to.
	MembershipRefresh time.Duration
	// Buffer is each subscriber's queue; a subscriber whose queue is full
	// is dropped.
	Buffer int
	// Batch is how many events one read takes.
	Batch  int
	Logger *slog.Logger
	// Now is the clock of the pruner.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = DefaultPruneInterval
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.MembershipRefresh <= 0 {
		o.MembershipRefresh = DefaultMembershipRefresh
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Why a subscription ended.
var (
	// ErrSlow: the subscriber did not keep up and was dropped; it should
	// reconnect with the last id it got.
	ErrSlow = errors.New("events: subscriber too slow, dropped: reconnect with Last-Event-ID")
	// ErrClosed: the hub stopped (the server is shutting down).
	ErrClosed = errors.New("events: hub closed")
)

// Hub is one API process's poller and its subscribers.
type Hub struct {
	src   Source
	opts  Options
	log   *slog.Logger
	wake  chan struct{}
	ready chan struct{} // closed once last is known
	done  chan struct{} // closed by Close

	mu     sync.Mutex
	last   int64 // the last id handed to subscribers
	subs   map[*Subscription]struct{}
	closed bool

	startOnce, closeOnce sync.Once
	cancel               context.CancelFunc
	wg                   sync.WaitGroup
}

// New returns a hub reading src; Start starts it.
func New(src Source, opts Options) *Hub {
	opts = opts.withDefaults()
	return &Hub{
		src: src, opts: opts, log: opts.Logger.With("component", "events"),
		wake: make(chan struct{}, 1), ready: make(chan struct{}), done: make(chan struct{}),
		subs: map[*Subscription]struct{}{},
	}
}

// Options returns the hub's options, defaults applied.
func (h *Hub) Options() Options { return h.opts }

// Start runs the poller, the listener (PostgreSQL) and the pruner until
// Close. Calling it again does nothing.
func (h *Hub) Start() {
	h.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			cancel()
			return
		}
		h.cancel = cancel
		h.mu.Unlock()
		h.wg.Add(3)
		go func() { defer h.wg.Done(); h.poll(ctx) }()
		go func() { defer h.wg.Done(); h.listen(ctx) }()
		go func() { defer h.wg.Done(); h.prune(ctx) }()
	})
}

// Close stops the hub and ends every subscription with ErrClosed.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		close(h.done)
		cancel := h.cancel
		for sub := range h.subs {
			h.dropLocked(sub, ErrClosed)
		}
		h.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		h.wg.Wait()
	})
}

// Wake makes the poller read now (a NOTIFY arrived, or a test appended).
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Last is the id of the last event handed to subscribers.
func (h *Hub) Last() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Subscription receives every event the hub reads after it subscribed, in
// id order, until it is closed or dropped.
type Subscription struct {
	h   *Hub
	ch  chan store.Event
	err error // why it ended; set before ch is closed
}

// C delivers the events; it is closed when the subscription ends (after
// the events already queued), and Err then says why.
func (s *Subscription) C() <-chan store.Event { return s.ch }

// Err is why C was closed: ErrSlow or ErrClosed (nil after Close).
func (s *Subscription) Err() error {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.err
}

// Close unsubscribes.
func (s *Subscription) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if _, ok := s.h.subs[s]; ok {
		delete(s.h.subs, s)
		close(s.ch)
	}
}

// Subscribe registers a subscriber. It returns, atomically with the
// registration, the id of the last event handed out: the subscription gets
// every event after it. It waits until the hub knows where the log stands
// (its first read of the database), or ctx ends.
func (h *Hub) Subscribe(ctx context.Context) (*Subscription, int64, error) {
	select {
	case <-h.ready:
	case <-h.done:
		return nil, 0, ErrClosed
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, 0, ErrClosed
	}
	sub := &Subscription{h: h, ch: make(chan store.Event, h.opts.Buffer)}
	h.subs[sub] = struct{}{}
	return sub, h.last, nil
}

// dropLocked ends a subscription; h.mu is held.
func (h *Hub) dropLocked(sub *Subscription, why error) {
	if _, ok := h.subs[sub]; !ok {
		return
	}
	delete(h.subs, sub)
	sub.err = why
	close(sub.ch)
}

// Subscribers is how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// fanOut hands events (in id order, after h.last) to every subscriber
// without ever blocking: a full subscriber is dropped.
func (h *Hub) fanOut(evs []store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		if ev.ID <= h.last {
			continue
		}
		for sub := range h.subs {
			select {
			case sub.ch <- ev:
			default:
				h.dropLocked(sub, ErrSlow)
				h.log.Info("live events subscriber dropped: too slow", "buffer", h.opts.Buffer, "event_id", ev.ID)
			}
		}
		h.last = ev.ID
	}
}

// poll is the poller: it learns where the log stands, then reads new
// events at every tick or wake.
func (h *Hub) poll(ctx context.Context) {
	backoff := h.opts.PollInterval
	for {
		last, err := h.src.LatestEventID(ctx)
		if err == nil {
			h.mu.Lock()
			h.last = last
			h.mu.Unlock()
			close(h.ready)
			break
		}
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("live events: cannot read the event log; retrying", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	t := time.NewTimer(h.opts.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-t.C:
		}
		err := h.readNew(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			h.log.Warn("live events: reading new events failed; retrying at every poll", "err", err)
		case err == nil && failing:
			failing = false
			h.log.Info("live events: reading new events works again")
		}
		t.Reset(h.opts.PollInterval)
	}
}

// readNew reads and fans out everything committed after h.last.
func (h *Hub) readNew(ctx context.Context) error {
	for {
		last := h.Last()
		evs, err := h.src.EventsAfter(ctx, last, h.opts.Batch)
		if err != nil {
			return err
		}
		h.fanOut(evs)
		if len(evs) < h.opts.Batch {
			return nil
		}
	}
}

// listen wakes the poller on PostgreSQL notifications, reconnecting after
// failures; on SQLite it returns at once (polling only).
func (h *Hub) listen(ctx context.Context) {
	backoff := time.Second
	for {
		start := time.Now()
		err := h.src.ListenEvents(ctx, h.Wake)
		if errors.Is(err, store.ErrNoListen) || ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		h.log.Warn("live events: LISTEN connection lost; polling meanwhile", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// prune deletes events older than the retention, at start and every
// PruneInterval. Every API process prunes; that is harmless.
func (h *Hub) prune(ctx context.Context) {
	if h.opts.Retention < 0 {
		return
	}
	for {
		n, err := h.src.PruneEvents(ctx, h.opts.Now().Add(-h.opts.Retention))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.log.Warn("live events: pruning failed", "err", err)
		case n > 0:
			h.log.Info("live events pruned", "deleted", n, "retention", h.opts.Retention)
		}
		if !sleep(ctx, h.opts.PruneInterval) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
