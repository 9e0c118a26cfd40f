package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"parley/routing"
)

// Supervisor metrics (issue 10): per queue, and per workstream within it,
// the live state (from the ledger: queue_items, capacity_holds, agents) and
// the figures of a period (from conversation_events, recorded as things
// happen; conversation_events.go lists the kinds).
//
// The figures are computed in Go from the period's events of the queues
// (one indexed query, conversation_events_queue) and the later events of
// the conversations answered (for handle and first-response times): simple
// and portable; fine for the volumes of a day or a week. Pre-aggregation
// (per queue and hour) is the path for long periods at large volumes.
//
// Definitions, for queue Q over [From, To), a conversation counted at most
// once per figure:
//   - offered: conversations that entered Q (a queued event: routed there,
//     transferred there, or moved there by overflow) in the period;
//   - offers: offers made to Q's agents in the period (push mode);
//   - answered: conversations an agent took from Q's waiting line in the
//     period (an offer accepted, or a pick, assign or transfer to an agent
//     while waiting in Q); its wait is from its entry into Q to the answer;
//     the first answer in the period counts;
//   - abandoned: conversations that closed in the period (the customer left,
//     an auto-close, an overflow end) while their last queue visit, in Q,
//     was never answered; its wait is from that entry into Q to the close;
//   - average speed of answer: the mean wait of the answered;
//   - service level: answered within the queue's threshold (wait <=
//     threshold) / (answered + abandoned after the threshold); abandons
//     within the threshold are left out (the usual contact-center
//     definition); null when the divisor is 0;
//   - average handle time: from the answer to the first later ended (the
//     agent ended it), closed, or transfer away, over the answered whose
//     handling ended (when the query runs);
//   - transfers: moves out of Q in the period: a conversation waiting in,
//     or answered from, Q sent to another queue or given to another agent;
//   - average first-response time: from the answer to the answering agent's
//     first reply (accepted by Meta) after it, over the answered with one.
type QueueMetricsFilter struct {
	// From and To bound the period, To exclusive. Zero From: the start of
	// the day (of To) in the queue's time zone, UTC without one; zero To: now.
	From, To     time.Time
	QueueID      string // "" all live queues
	WorkstreamID string // "" all workstreams
	Now          time.Time
}

// QueueMetricsRow is a queue's metrics.
type QueueMetricsRow struct {
	QueueID               string
	QueueName             string
	TimeZone              string // "" UTC
	ServiceLevelThreshold time.Duration
	From, To              time.Time
	Live                  QueueLive
	Period                PeriodMetrics // all its workstreams (or the filter's)
	Workstreams           []WorkstreamQueueMetrics
}

// QueueLive is a queue now.
type QueueLive struct {
	Waiting     int
	LongestWait time.Duration // the customer's wait (since waiting_since) of the longest waiting
	// Agents counts the queue's live member agents by effective presence
	// (available, busy, do_not_disturb, away, offline, inactive).
	Agents  map[string]int
	Members int
	// FreeCapacity: the capacity units not held by the members whose chosen
	// presence is available (what distribution can still offer).
	FreeCapacity int
}

// WorkstreamQueueMetrics are a queue's figures for the conversations of one
// workstream ("" conversations of a page without one).
type WorkstreamQueueMetrics struct {
	WorkstreamID string
	Waiting      int
	LongestWait  time.Duration
	Period       PeriodMetrics
}

// PeriodMetrics are the figures of a period (see QueueMetricsFilter).
type PeriodMetrics struct {
	Offered                  int
	Offers                   int
	Answered                 int
	AnsweredWithinThreshold  int
	Abandoned                int
	AbandonedWithinThreshold int
	AverageSpeedOfAnswer     *time.Duration
	ServiceLevel             *float64 // 0 to 1
	AverageHandleTime        *time.Duration
	Handled                  int // the answered whose handling ended
	Transfers                int
	AverageFirstResponse     *time.Duration
	FirstResponses           int
}

// QueueMetrics computes the metrics of the live queues (or f.QueueID's:
// ErrNotFound when it is not a live queue), in priority order.
func (s *Store) QueueMetrics(ctx context.Context, f QueueMetricsFilter) (_ []QueueMetricsRow, err error) {
	defer wrap(&err, "store.QueueMetrics")
	now := utc(f.Now)
	if f.Now.IsZero() {
		now = s.clock()
	}
	var queues []Queue
	if f.QueueID != "" {
		q, err := s.GetQueue(ctx, f.QueueID)
		if err != nil {
			return nil, err
		}
		queues = []Queue{q}
	} else if queues, err = s.ListQueues(ctx); err != nil {
		return nil, err
	}
	if len(queues) == 0 {
		return []QueueMetricsRow{}, nil
	}
	rows := make([]QueueMetricsRow, len(queues))
	ids := make([]any, len(queues))
	var minFrom, maxTo time.Time
	for i, q := range queues {
		from, to, err := metricsPeriod(f, q.Hours.TimeZone, now)
		if err != nil {
			return nil, err
		}
		rows[i] = QueueMetricsRow{QueueID: q.ID, QueueName: q.Name, TimeZone: q.Hours.TimeZone, ServiceLevelThreshold: q.ServiceLevel,
			From: from, To: to, Live: QueueLive{Agents: map[string]int{}}}
		ids[i] = q.ID
		if i == 0 || from.Before(minFrom) {
			minFrom = from
		}
		if i == 0 || to.After(maxTo) {
			maxTo = to
		}
	}
	if err := s.liveMetrics(ctx, rows, queues, ids, f.WorkstreamID, now); err != nil {
		return nil, err
	}
	if err := s.periodMetrics(ctx, rows, ids, f.WorkstreamID, minFrom, maxTo); err != nil {
		return nil, err
	}
	return rows, nil
}

// metricsPeriod is the period of a queue in time zone tz.
func metricsPeriod(f QueueMetricsFilter, tz string, now time.Time) (time.Time, time.Time, error) {
	to := utc(f.To)
	if f.To.IsZero() {
		to = now
	}
	if !f.From.IsZero() {
		return utc(f.From), to, nil
	}
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("time zone %q: %w", tz, err)
		}
		loc = l
	}
	local := to.In(loc)
	from := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	if !from.Before(to) {
		from = from.AddDate(0, 0, -1)
	}
	return from.UTC(), to, nil
}

// liveMetrics fills the live figures.
func (s *Store) liveMetrics(ctx context.Context, rows []QueueMetricsRow, queues []Queue, ids []any, workstreamID string, now time.Time) error {
	var items []struct {
		QueueID      string    `db:"queue_id"`
		WorkstreamID string    `db:"workstream_id"`
		WaitingSince time.Time `db:"waiting_since"`
	}
	if err := list(ctx, s.db, &items, `SELECT i.queue_id, COALESCE(w.id, '') AS workstream_id, i.waiting_since
		FROM queue_items i LEFT JOIN workstreams w ON w.page_ref = i.page_ref AND w.deleted_at IS NULL
		WHERE i.queue_id IN (`+placeholders(len(ids))+`)`, ids...); err != nil {
		return fmt.Errorf("waiting conversations: %w", err)
	}
	var agents []struct {
		AgentID  string `db:"id"`
		Presence string `db:"presence"`
		Capacity int    `db:"capacity_units"`
		Used     int    `db:"used"`
	}
	if err := list(ctx, s.db, &agents, `SELECT a.id, a.presence, a.capacity_units,
			COALESCE((SELECT SUM(h.units) FROM capacity_holds h WHERE h.agent_id = a.id), 0) AS used
		FROM agents a WHERE a.deleted_at IS NULL`); err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	byAgent := map[string]int{}
	for i, a := range agents {
		byAgent[a.AgentID] = i
	}
	index := map[string]int{}
	for i := range rows {
		index[rows[i].QueueID] = i
		live := &rows[i].Live
		for _, id := range queues[i].AgentIDs {
			j, ok := byAgent[id]
			if !ok {
				continue
			}
			a := agents[j]
			live.Members++
			live.Agents[routing.EffectivePresence(a.Presence, a.Used, a.Capacity)]++
			if a.Presence == routing.PresenceAvailable {
				live.FreeCapacity += max(a.Capacity-a.Used, 0)
			}
		}
	}
	for _, it := range items {
		if workstreamID != "" && it.WorkstreamID != workstreamID {
			continue
		}
		r := &rows[index[it.QueueID]]
		wait := max(now.Sub(it.WaitingSince.UTC()), 0)
		r.Live.Waiting++
		r.Live.LongestWait = max(r.Live.LongestWait, wait)
		w := r.workstream(it.WorkstreamID)
		w.Waiting++
		w.LongestWait = max(w.LongestWait, wait)
	}
	return nil
}

// workstream returns the row's figures of a workstream, added if new.
func (r *QueueMetricsRow) workstream(id string) *WorkstreamQueueMetrics {
	for i := range r.Workstreams {
		if r.Workstreams[i].WorkstreamID == id {
			return &r.Workstreams[i]
		}
	}
	r.Workstreams = append(r.Workstreams, WorkstreamQueueMetrics{WorkstreamID: id})
	return &r.Workstreams[len(r.Workstreams)-1]
}

// answer is the first answer of a conversation from a queue in the period.
type answer struct {
	ev     ConversationEvent
	row    int
	wsKey  string
	waited time.Duration
}

// periodMetrics fills the period's figures from the events.
func (s *Store) periodMetrics(ctx context.Context, rows []QueueMetricsRow, ids []any, workstreamID string, from, to time.Time) error {
	var evs []ConversationEvent
	args := append(append([]any{}, ids...), s.timestamp(from), s.timestamp(to))
	if err := list(ctx, s.db, &evs, `SELECT `+convEventColumns+` FROM conversation_events
		WHERE queue_id IN (`+placeholders(len(ids))+`) AND at >= ? AND at < ?
			AND kind IN ('queued', 'offered', 'accepted', 'assigned', 'transfer', 'abandoned')
		ORDER BY at, id`, args...); err != nil {
		return fmt.Errorf("conversation events: %w", err)
	}
	index := map[string]int{}
	for i := range rows {
		index[rows[i].QueueID] = i
	}
	type key struct {
		row            int
		ws, conv, kind string
	}
	seen := map[key]bool{}
	// once reports whether the conversation is counted for the first time
	// for this figure, in the queue and in its workstream.
	once := func(row int, ws, conv, kind string) bool {
		k := key{row, ws, conv, kind}
		if seen[k] {
			return false
		}
		seen[k] = true
		return true
	}
	var answers []answer
	for _, e := range evs {
		e.At = e.At.UTC()
		i, ok := index[e.QueueID]
		if !ok || (workstreamID != "" && e.WorkstreamID != workstreamID) {
			continue
		}
		r := &rows[i]
		if e.At.Before(r.From) || !e.At.Before(r.To) {
			continue
		}
		threshold := r.ServiceLevelThreshold
		w := r.workstream(e.WorkstreamID)
		for _, p := range []struct {
			m  *PeriodMetrics
			ws string
		}{{&r.Period, "\x00all"}, {&w.Period, e.WorkstreamID}} {
			m := p.m
			switch e.Kind {
			case ConvEventQueued:
				if once(i, p.ws, e.ConversationID, e.Kind) {
					m.Offered++
				}
			case ConvEventOffered:
				m.Offers++
			case ConvEventTransfer:
				m.Transfers++
			case ConvEventAccepted, ConvEventAssigned:
				if !e.WaitedMS.Valid || !once(i, p.ws, e.ConversationID, "answered") {
					continue
				}
				waited := time.Duration(e.WaitedMS.Int64) * time.Millisecond
				m.Answered++
				if waited <= threshold {
					m.AnsweredWithinThreshold++
				}
				answers = append(answers, answer{ev: e, row: i, wsKey: p.ws, waited: waited})
			case ConvEventAbandoned:
				if !once(i, p.ws, e.ConversationID, e.Kind) {
					continue
				}
				m.Abandoned++
				if e.WaitedMS.Valid && time.Duration(e.WaitedMS.Int64)*time.Millisecond <= threshold {
					m.AbandonedWithinThreshold++
				}
			}
		}
	}
	later, err := s.laterEvents(ctx, answers, from)
	if err != nil {
		return err
	}
	type sums struct {
		wait, handle, first time.Duration
	}
	totals := map[*PeriodMetrics]*sums{}
	for _, a := range answers {
		r := &rows[a.row]
		m := &r.Period
		if a.wsKey != "\x00all" {
			m = &r.workstream(a.wsKey).Period
		}
		t := totals[m]
		if t == nil {
			t = &sums{}
			totals[m] = t
		}
		t.wait += a.waited
		if end, ok := handleEnd(a.ev, later[a.ev.ConversationID]); ok {
			m.Handled++
			t.handle += end.Sub(a.ev.At)
		}
		if reply, ok := firstReply(a.ev, later[a.ev.ConversationID]); ok {
			m.FirstResponses++
			t.first += reply.Sub(a.ev.At)
		}
	}
	finish := func(m *PeriodMetrics) {
		t := totals[m]
		if t == nil {
			t = &sums{}
		}
		m.AverageSpeedOfAnswer = mean(t.wait, m.Answered)
		m.AverageHandleTime = mean(t.handle, m.Handled)
		m.AverageFirstResponse = mean(t.first, m.FirstResponses)
		if d := m.Answered + m.Abandoned - m.AbandonedWithinThreshold; d > 0 {
			sl := float64(m.AnsweredWithinThreshold) / float64(d)
			m.ServiceLevel = &sl
		}
	}
	for i := range rows {
		finish(&rows[i].Period)
		for j := range rows[i].Workstreams {
			finish(&rows[i].Workstreams[j].Period)
		}
		sort.Slice(rows[i].Workstreams, func(a, b int) bool {
			return rows[i].Workstreams[a].WorkstreamID < rows[i].Workstreams[b].WorkstreamID
		})
	}
	return nil
}

// mean is total/n, rounded to the millisecond; nil when n is 0.
func mean(total time.Duration, n int) *time.Duration {
	if n == 0 {
		return nil
	}
	d := (total / time.Duration(n)).Round(time.Millisecond)
	return &d
}

// laterEvents loads the ended, closed, transfer and first_reply events at
// or after from of the answered conversations, by conversation, in order.
func (s *Store) laterEvents(ctx context.Context, answers []answer, from time.Time) (map[string][]ConversationEvent, error) {
	var convs []any
	known := map[string]bool{}
	for _, a := range answers {
		if !known[a.ev.ConversationID] {
			known[a.ev.ConversationID] = true
			convs = append(convs, a.ev.ConversationID)
		}
	}
	out := map[string][]ConversationEvent{}
	const chunk = 500
	for i := 0; i < len(convs); i += chunk {
		part := convs[i:min(i+chunk, len(convs))]
		var evs []ConversationEvent
		if err := list(ctx, s.db, &evs, `SELECT `+convEventColumns+` FROM conversation_events
			WHERE conversation_id IN (`+placeholders(len(part))+`) AND at >= ?
				AND kind IN ('ended', 'closed', 'transfer', 'first_reply')
			ORDER BY at, id`, append(slices.Clone(part), s.timestamp(from))...); err != nil {
			return nil, fmt.Errorf("later conversation events: %w", err)
		}
		for _, e := range evs {
			e.At = e.At.UTC()
			out[e.ConversationID] = append(out[e.ConversationID], e)
		}
	}
	return out, nil
}

// handleEnd is when the handling that began with the answer a ended: the
// first ended, closed or transfer (but the answer's own) at or after it.
func handleEnd(a ConversationEvent, later []ConversationEvent) (time.Time, bool) {
	for _, e := range later {
		if e.At.Before(a.At) || (e.Kind == ConvEventTransfer && e.Ref == a.Ref) {
			continue
		}
		switch e.Kind {
		case ConvEventEnded, ConvEventClosed, ConvEventTransfer:
			return e.At, true
		}
	}
	return time.Time{}, false
}

// firstReply is the answering agent's first reply at or after the answer.
func firstReply(a ConversationEvent, later []ConversationEvent) (time.Time, bool) {
	for _, e := range later {
		if e.Kind == ConvEventFirstReply && e.AgentID == a.AgentID && !e.At.Before(a.At) {
			return e.At, true
		}
	}
	return time.Time{}, false
}
