package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/events"
	"parley/store"
)

// sseWriteTimeout bounds each write of a stream: a client that stops
// reading is cut off instead of holding the handler forever. It also
// replaces any server-wide WriteTimeout for the stream's lifetime.
const sseWriteTimeout = 30 * time.Second

// sseRetry is the reconnection delay suggested to EventSource clients.
const sseRetry = 2 * time.Second

// eventJSON is an event as streamed (the data: line).
type eventJSON struct {
	ID             int64           `json:"id"`
	Type           string          `json:"type"`
	AgentID        string          `json:"agent_id"`
	QueueID        string          `json:"queue_id"`
	ConversationID string          `json:"conversation_id"`
	Data           json.RawMessage `json:"data"`
	CreatedAt      time.Time       `json:"created_at"`
}

// resetJSON is the data of a reset event.
type resetJSON struct {
	ID      int64  `json:"id"`
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// EventReset is the type of the event telling a client to reload its state.
const EventReset = "reset"

// streamEvents is GET /api/v1/events: the live events the caller's key may
// see, as Server-Sent Events. Last-Event-ID (or ?last_event_id=) resumes
// after that id; without it the stream starts now.
func (s *Server) streamEvents(c echo.Context) error {
	hub := s.opts.Events
	if hub == nil {
		return apierror.New(http.StatusServiceUnavailable, "unavailable", "live events are not enabled on this server")
	}
	after, resume, err := lastEventID(c)
	if err != nil {
		return err
	}
	p := PrincipalFrom(c)
	f := &eventFilter{queue: strings.TrimSpace(c.QueryParam("queue")), agent: strings.TrimSpace(c.QueryParam("agent")),
		store: s.opts.Store, every: hub.Options().MembershipRefresh}
	ctx := c.Request().Context()
	if p.Role == RoleAgent {
		if p.AgentID == "" {
			return apierror.New(http.StatusForbidden, "forbidden", "this agent key is not linked to an agent")
		}
		f.self = p.AgentID
		if err := f.refresh(ctx); err != nil {
			return apierror.Internal(err)
		}
	}

	openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	var st *events.Stream
	if resume {
		st, err = hub.OpenAfter(openCtx, after)
	} else {
		st, err = hub.Open(openCtx)
	}
	cancel()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil // the client left
	case errors.Is(err, events.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		return apierror.New(http.StatusServiceUnavailable, "unavailable", "live events are unavailable right now; retry")
	default:
		return apierror.Internal(fmt.Errorf("open the event stream: %w", err))
	}
	defer st.Close()

	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	res.WriteHeader(http.StatusOK)
	w := &sseWriter{res: res, rc: http.NewResponseController(res), sent: st.Cursor()}
	defer w.rc.SetWriteDeadline(time.Time{}) //nolint:errcheck // best effort: the connection may be reused
	// The first message sets the client's Last-Event-ID to where the stream
	// starts (an id with no data dispatches nothing): a client that leaves
	// before any event for it resumes from here rather than from "now".
	if err := w.write(fmt.Appendf(nil, "retry: %d\nid: %d\n\n", sseRetry.Milliseconds(), st.Cursor()), 0); err != nil {
		return nil
	}

	// Heartbeats come from their own goroutine; a failed write ends the stream.
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Go(func() {
		t := time.NewTicker(hub.Options().Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if err := w.heartbeat(); err != nil {
					stop()
					return
				}
			}
		}
	})

	for {
		it, err := st.Next(sctx)
		if err != nil {
			// Client gone, server stopping, or too slow (it reconnects with
			// Last-Event-ID and reads what it missed from the database).
			if !errors.Is(err, context.Canceled) && !errors.Is(err, events.ErrClosed) {
				s.log.InfoContext(ctx, "event stream ended", "err", err, "last_event_id", st.Cursor())
			}
			return nil
		}
		var msg []byte
		var id int64
		switch {
		case it.Reset != nil:
			id = it.Reset.ID
			msg = sseMessage(id, EventReset, resetJSON{ID: id, Type: EventReset, Reason: it.Reset.Reason, Message: it.Reset.Message})
		case f.visible(ctx, it.Event, s.log):
			ev := it.Event
			id = ev.ID
			data := ev.Data
			if len(data) == 0 {
				data = json.RawMessage("null")
			}
			msg = sseMessage(id, ev.Type, eventJSON{ID: ev.ID, Type: ev.Type, AgentID: ev.AgentID, QueueID: ev.QueueID,
				ConversationID: ev.ConversationID, Data: data, CreatedAt: ev.CreatedAt})
		default:
			w.skip(it.Event.ID)
			continue
		}
		if err := w.write(msg, id); err != nil {
			return nil
		}
	}
}

// sseMessage formats one event. JSON has no raw newlines, so one data: line.
func sseMessage(id int64, typ string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"error":"unencodable event"}`)
	}
	return fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", id, typ, data)
}

// lastEventID reads where to resume: the Last-Event-ID header (sent by
// EventSource on reconnection), else ?last_event_id=.
func lastEventID(c echo.Context) (after int64, resume bool, err error) {
	field, raw := "Last-Event-ID", strings.TrimSpace(c.Request().Header.Get("Last-Event-ID"))
	if raw == "" {
		field, raw = "last_event_id", strings.TrimSpace(c.QueryParam("last_event_id"))
	}
	if raw == "" {
		return 0, false, nil
	}
	after, err = strconv.ParseInt(raw, 10, 64)
	if err != nil || after < 0 {
		return 0, false, apierror.InvalidField(field, "want the id of an event (a whole number from 0), got %q", raw)
	}
	return after, true, nil
}

// sseWriter writes and flushes each message; the heartbeat goroutine and
// the stream share it.
type sseWriter struct {
	mu   sync.Mutex
	res  *echo.Response
	rc   *http.ResponseController
	sent int64 // the last id the client has (its Last-Event-ID)
	seen int64 // the last id the stream went past (invisible ones included)
	err  error
}

func (w *sseWriter) write(msg []byte, id int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writeLocked(msg); err != nil {
		return err
	}
	if id > 0 {
		w.sent, w.seen = id, max(w.seen, id)
	}
	return nil
}

func (w *sseWriter) writeLocked(msg []byte) error {
	if w.err != nil {
		return w.err
	}
	// Not supported by every ResponseWriter (tests' recorders): then none.
	_ = w.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := w.res.Write(msg); err != nil {
		w.err = err
		return err
	}
	w.res.Flush()
	return nil
}

// skip notes an event the client may not see.
func (w *sseWriter) skip(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = max(w.seen, id)
}

// heartbeat sends a comment; when the stream went past events the client
// may not see, it also moves the client's Last-Event-ID past them (an id
// with no data dispatches nothing), so that a reconnection does not replay
// them.
func (w *sseWriter) heartbeat() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := []byte(": heartbeat\n\n")
	if w.seen > w.sent {
		msg = fmt.Appendf(msg, "id: %d\n\n", w.seen)
	}
	if err := w.writeLocked(msg); err != nil {
		return err
	}
	w.sent = max(w.sent, w.seen)
	return nil
}

// eventFilter decides what a stream's caller sees: an agent, the events
// addressed to it, plus new work (conversation.queued with no agent) in
// its queues; supervisors and admins, everything. ?queue= and ?agent=
// narrow further.
type eventFilter struct {
	queue, agent string
	self         string // the agent's id, for agent keys

	store     *store.Store
	every     time.Duration
	queues    []string
	refreshed time.Time
}

func (f *eventFilter) refresh(ctx context.Context) error {
	ids, err := f.store.QueueIDsOfAgent(ctx, f.self)
	if err != nil {
		return fmt.Errorf("the agent's queues: %w", err)
	}
	f.queues, f.refreshed = ids, time.Now()
	return nil
}

func (f *eventFilter) visible(ctx context.Context, ev store.Event, log interface {
	WarnContext(context.Context, string, ...any)
}) bool {
	if f.queue != "" && ev.QueueID != f.queue {
		return false
	}
	if f.agent != "" && ev.AgentID != f.agent {
		return false
	}
	if f.self == "" {
		return true
	}
	if ev.AgentID != "" {
		return ev.AgentID == f.self
	}
	if ev.Type != store.EventConversationQueued || ev.QueueID == "" {
		return false
	}
	if time.Since(f.refreshed) >= f.every {
		if err := f.refresh(ctx); err != nil {
			// Keep the last known queues; try again later.
			f.refreshed = time.Now()
			log.WarnContext(ctx, "event stream: refresh the agent's queues", "err", err, "agent_id", f.self)
		}
	}
	return slices.Contains(f.queues, ev.QueueID)
}
