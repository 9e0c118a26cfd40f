package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"parley/routing"
)

// Queue is where conversations wait for an agent. A workstream's routing
// rules choose it; its members are the agents it distributes to.
type Queue struct {
	ID       string
	Name     string // unique among live queues
	Priority int    // lower first: 0 to MaxQueuePriority
	// Method is routing.MethodHighestCapacity (the default) or
	// routing.MethodRoundRobin.
	Method string
	// Hours are the opening hours (no periods: open around the clock,
	// holidays still apply). Stored in the columns time_zone,
	// operating_hours (the periods) and holidays.
	Hours    routing.OperatingHours
	Overflow routing.Overflow
	// ServiceLevel is the service-level threshold of the queue's metrics:
	// a conversation answered within it is in service level
	// (DefaultServiceLevel when zero at creation; whole seconds, 1s to 24h).
	ServiceLevel time.Duration
	// AgentIDs are the live agents that are members, sorted. Set with
	// AddQueueAgent and RemoveQueueAgent; CreateQueue and UpdateQueue
	// ignore it.
	AgentIDs  []string
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time
}

// QueueUpdate changes the non-nil fields of a queue. Hours and Overflow
// replace the whole value.
type QueueUpdate struct {
	Name     *string
	Priority *int
	Method   *string
	Hours    *routing.OperatingHours
	Overflow *routing.Overflow
	// ServiceLevel is the service-level threshold (whole seconds, 1s to 24h).
	ServiceLevel *time.Duration
}

// Limits of a queue's settings.
const (
	MaxQueuePriority   = 1000
	MaxQueueNameLength = 200
	maxQueuePeriods    = routing.MaxPeriods
	maxQueueHolidays   = routing.MaxHolidays
	maxOverflowCount   = 1_000_000
	maxOverflowWait    = 7 * 24 * time.Hour
	// DefaultServiceLevel is a new queue's service-level threshold.
	DefaultServiceLevel = 60 * time.Second
	MinServiceLevel     = time.Second
	MaxServiceLevel     = 24 * time.Hour
)

// FieldError is an ErrInvalid that names the field at fault by its JSON
// path in the API's shapes: "overflow.max_waiting.action",
// "distribution.routing_rules[2].conditions[0].operator". Test for it with
// errors.As; errors.Is(err, ErrInvalid) holds.
type FieldError struct {
	Field   string
	Message string
	// Err is the cause, when another package refused the value (a
	// *routing.RuleError, say).
	Err error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// ConflictError is an ErrConflict whose Message says why, for the caller's
// user: a queue in use, a distribution mode that is fixed. Test for it with
// errors.As; errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Message string
	Err     error // the cause, if any
}

func (e *ConflictError) Error() string { return "conflict: " + e.Message }

func (e *ConflictError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrConflict, e.Err}
	}
	return []error{ErrConflict}
}

func conflictf(format string, args ...any) error {
	return &ConflictError{Message: fmt.Sprintf(format, args...)}
}

// fieldErrorf returns a *FieldError.
func fieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// weekdays are the days of routing.Period.
var weekdays = []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

// normalize checks q's settings that need no database and canonicalizes
// them (method default, lowercase days, sorted holidays, non-nil slices).
func (q *Queue) normalize() error {
	if strings.TrimSpace(q.Name) == "" {
		return fieldErrorf("name", "is required")
	}
	if utf8.RuneCountInString(q.Name) > MaxQueueNameLength {
		return fieldErrorf("name", "must be at most %d characters", MaxQueueNameLength)
	}
	if q.Priority < 0 || q.Priority > MaxQueuePriority {
		return fieldErrorf("priority", "must be from 0 (served first) to %d, got %d", MaxQueuePriority, q.Priority)
	}
	switch q.Method {
	case "":
		q.Method = routing.MethodHighestCapacity
	case routing.MethodHighestCapacity, routing.MethodRoundRobin:
	default:
		return fieldErrorf("assignment_method", "must be %s or %s, got %q", routing.MethodHighestCapacity, routing.MethodRoundRobin, q.Method)
	}
	if q.ServiceLevel < MinServiceLevel || q.ServiceLevel > MaxServiceLevel || q.ServiceLevel%time.Second != 0 {
		return fieldErrorf("service_level_threshold", "must be a whole number of seconds from 1s to 24h, such as \"60s\" or \"2m\", got %q", q.ServiceLevel.String())
	}
	if err := normalizeHours(&q.Hours); err != nil {
		return err
	}
	return checkOverflow(q.Overflow, q.ID)
}

// normalizeHours checks opening hours, field by field, then with routing's
// own validation.
func normalizeHours(h *routing.OperatingHours) error {
	const path = "operating_hours"
	if h.TimeZone != "" {
		if h.TimeZone == "Local" {
			return fieldErrorf(path+".time_zone", "must be an IANA time zone such as Europe/Paris, not Local")
		}
		if _, err := time.LoadLocation(h.TimeZone); err != nil {
			return fieldErrorf(path+".time_zone", "unknown time zone %q: want an IANA name such as Europe/Paris or UTC", h.TimeZone)
		}
	} else if len(h.Periods) > 0 || len(h.Holidays) > 0 {
		return fieldErrorf(path+".time_zone", "is required with periods or holidays: an IANA name such as Europe/Paris or UTC")
	}
	if len(h.Periods) > maxQueuePeriods {
		return fieldErrorf(path+".periods", "must have at most %d periods", maxQueuePeriods)
	}
	periods := make([]routing.Period, len(h.Periods))
	for i, p := range h.Periods {
		field := fmt.Sprintf("%s.periods[%d]", path, i)
		p.Day = strings.ToLower(p.Day)
		if !slices.Contains(weekdays, p.Day) {
			return fieldErrorf(field+".day", "must be a day of the week, monday to sunday, got %q", h.Periods[i].Day)
		}
		start, ok := clockMinutes(p.Start, false)
		if !ok {
			return fieldErrorf(field+".start", "must be a time of day such as \"09:00\" (00:00 to 23:59), got %q", p.Start)
		}
		end, ok := clockMinutes(p.End, true)
		if !ok {
			return fieldErrorf(field+".end", "must be a time of day such as \"17:30\" (00:00 to 24:00), got %q", p.End)
		}
		if start == end {
			return fieldErrorf(field+".end", "equals the start: the period is empty (all day is 00:00 to 24:00)")
		}
		periods[i] = p
	}
	if len(h.Holidays) > maxQueueHolidays {
		return fieldErrorf(path+".holidays", "must have at most %d dates", maxQueueHolidays)
	}
	holidays := make([]string, len(h.Holidays))
	for i, d := range h.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return fieldErrorf(fmt.Sprintf("%s.holidays[%d]", path, i), "must be a date such as \"2026-12-25\", got %q", d)
		}
		if slices.Contains(holidays[:i], d) {
			return fieldErrorf(fmt.Sprintf("%s.holidays[%d]", path, i), "%s is listed twice", d)
		}
		holidays[i] = d
	}
	slices.Sort(holidays)
	h.Periods, h.Holidays = periods, holidays
	if err := h.Validate(); err != nil {
		return routingFieldError("", path, err)
	}
	return nil
}

// routingFieldError turns an error of the routing package's validations
// into a *FieldError: a *routing.FieldError keeps its field, prefixed with
// prefix (its path is relative to the object validated); a
// *routing.RuleError names the rule under prefix+"routing_rules"; any
// other error names whole.
func routingFieldError(prefix, whole string, err error) error {
	var fe *routing.FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: prefix + fe.Field, Message: fe.Message, Err: err}
	}
	var re *routing.RuleError
	if errors.As(err, &re) {
		field := fmt.Sprintf("%srouting_rules[%d]", prefix, re.Index)
		if re.Field != "" {
			field += "." + re.Field
		}
		return &FieldError{Field: field, Message: re.Message, Err: err}
	}
	return &FieldError{Field: whole, Message: err.Error(), Err: err}
}

// clockMinutes parses "HH:MM" into minutes after midnight; "24:00" only
// when end is true.
func clockMinutes(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[3] == '+' || h < 0 || m < 0 || m > 59 {
		return 0, false
	}
	if h == 24 && m == 0 && end {
		return 24 * 60, true
	}
	if h > 23 {
		return 0, false
	}
	return h*60 + m, true
}

// checkOverflow checks a queue's overflow rules, field by field; the
// transfer targets' existence is checked in the transaction.
func checkOverflow(o routing.Overflow, selfID string) error {
	const path = "overflow"
	if a := o.OutOfHours; a != nil {
		if err := checkOverflowAction(path+".out_of_hours", *a, true, selfID); err != nil {
			return err
		}
	}
	if m := o.MaxWaiting; m != nil {
		if m.Count < 0 || m.Count > maxOverflowCount {
			return fieldErrorf(path+".max_waiting.count", "must be from 0 to %d, got %d", maxOverflowCount, m.Count)
		}
		if err := checkOverflowAction(path+".max_waiting", m.OverflowAction, true, selfID); err != nil {
			return err
		}
	}
	for _, w := range []struct {
		field       string
		v           *routing.MaxWait
		queueAnyway bool
	}{
		{path + ".max_estimated_wait", o.MaxEstimatedWait, true},
		{path + ".while_queued", o.WhileQueued, false},
	} {
		if w.v == nil {
			continue
		}
		if w.v.After <= 0 || w.v.After.D() > maxOverflowWait {
			return fieldErrorf(w.field+".after", "must be a duration from 1s to %v, such as \"10m\", got %q", maxOverflowWait, w.v.After.D().String())
		}
		if err := checkOverflowAction(w.field, w.v.OverflowAction, w.queueAnyway, selfID); err != nil {
			return err
		}
	}
	return nil
}

func checkOverflowAction(field string, a routing.OverflowAction, queueAnyway bool, selfID string) error {
	switch a.Action {
	case routing.ActionEnd, routing.ActionTransfer:
	case routing.ActionQueue:
		if !queueAnyway {
			return fieldErrorf(field+".action", "must be %s or %s (the conversation is queued already), got %q", routing.ActionEnd, routing.ActionTransfer, a.Action)
		}
	default:
		if queueAnyway {
			return fieldErrorf(field+".action", "must be %s, %s or %s, got %q", routing.ActionEnd, routing.ActionTransfer, routing.ActionQueue, a.Action)
		}
		return fieldErrorf(field+".action", "must be %s or %s, got %q", routing.ActionEnd, routing.ActionTransfer, a.Action)
	}
	switch {
	case a.Action == routing.ActionTransfer && a.QueueID == "":
		return fieldErrorf(field+".queue", "is required to transfer: the id of the queue to transfer to")
	case a.Action != routing.ActionTransfer && a.QueueID != "":
		return fieldErrorf(field+".queue", "is only for the %s action", routing.ActionTransfer)
	case a.QueueID != "" && a.QueueID == selfID:
		return fieldErrorf(field+".queue", "is this queue itself")
	}
	return nil
}

// overflowTargets lists the transfer targets of o with their fields.
func overflowTargets(o routing.Overflow) [][2]string {
	var out [][2]string
	add := func(field string, a routing.OverflowAction) {
		if a.Action == routing.ActionTransfer && a.QueueID != "" {
			out = append(out, [2]string{field, a.QueueID})
		}
	}
	if o.OutOfHours != nil {
		add("out_of_hours", *o.OutOfHours)
	}
	if o.MaxWaiting != nil {
		add("max_waiting", o.MaxWaiting.OverflowAction)
	}
	if o.MaxEstimatedWait != nil {
		add("max_estimated_wait", o.MaxEstimatedWait.OverflowAction)
	}
	if o.WhileQueued != nil {
		add("while_queued", o.WhileQueued.OverflowAction)
	}
	return out
}

// liveQueues answers "is this a live queue?" inside a transaction, for the
// validations of the routing package (which take a func(string) bool). On
// PostgreSQL it takes FOR SHARE locks, so that a concurrent DeleteQueue
// (FOR UPDATE) waits for the referencing write, or the write sees the
// deletion. The first database error is kept in err.
type liveQueues struct {
	ctx   context.Context
	s     *Store
	q     querier
	known map[string]bool
	err   error
}

func (s *Store) liveQueuesIn(ctx context.Context, q querier) *liveQueues {
	return &liveQueues{ctx: ctx, s: s, q: q, known: map[string]bool{}}
}

func (l *liveQueues) exists(id string) bool {
	if id == "" || l.err != nil {
		return false
	}
	if v, ok := l.known[id]; ok {
		return v
	}
	query := `SELECT id FROM queues WHERE id = ? AND deleted_at IS NULL`
	if l.s.dialect == DialectPostgres {
		query += ` FOR SHARE`
	}
	var got string
	err := get(l.ctx, l.q, &got, query, id)
	switch {
	case err == nil:
		l.known[id] = true
	case errors.Is(err, ErrNotFound):
		l.known[id] = false
	default:
		l.err = fmt.Errorf("queue %s: %w", id, err)
	}
	return l.known[id]
}

// checkQueueRefs checks, in the transaction, that the overflow transfer
// targets are live queues, then runs routing's validation of the overflow.
func (s *Store) checkQueueRefs(ctx context.Context, tx querier, q Queue) error {
	live := s.liveQueuesIn(ctx, tx)
	for _, t := range overflowTargets(q.Overflow) {
		ok := live.exists(t[1])
		if live.err != nil {
			return live.err
		}
		if !ok {
			return fieldErrorf("overflow."+t[0]+".queue", "no queue %q (GET /api/v1/queues lists them)", t[1])
		}
	}
	err := q.Overflow.Validate(func(id string) bool { return id == q.ID || live.exists(id) })
	if live.err != nil {
		return live.err
	}
	if err != nil {
		return routingFieldError("", "overflow", err)
	}
	return nil
}

type queueRow struct {
	ID             string       `db:"id"`
	Name           string       `db:"name"`
	Priority       int          `db:"priority"`
	Method         string       `db:"assignment_method"`
	TimeZone       string       `db:"time_zone"`
	OperatingHours string       `db:"operating_hours"`
	Holidays       string       `db:"holidays"`
	Overflow       string       `db:"overflow"`
	ServiceLevelS  int64        `db:"service_level_seconds"`
	CreatedAt      time.Time    `db:"created_at"`
	UpdatedAt      time.Time    `db:"updated_at"`
	DeletedAt      sql.NullTime `db:"deleted_at"`
}

const queueColumns = `id, name, priority, assignment_method, time_zone, operating_hours, holidays, overflow,
	service_level_seconds, created_at, updated_at, deleted_at`

func (r queueRow) queue() (Queue, error) {
	q := Queue{
		ID: r.ID, Name: r.Name, Priority: r.Priority, Method: r.Method,
		Hours:        routing.OperatingHours{TimeZone: r.TimeZone, Periods: []routing.Period{}, Holidays: []string{}},
		AgentIDs:     []string{},
		ServiceLevel: time.Duration(r.ServiceLevelS) * time.Second,
		CreatedAt:    r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), DeletedAt: timePtr(r.DeletedAt),
	}
	for _, c := range []struct {
		name string
		raw  string
		dst  any
	}{
		{"operating hours", r.OperatingHours, &q.Hours.Periods},
		{"holidays", r.Holidays, &q.Hours.Holidays},
		{"overflow", r.Overflow, &q.Overflow},
	} {
		if strings.TrimSpace(c.raw) == "" {
			continue
		}
		if err := json.Unmarshal([]byte(c.raw), c.dst); err != nil {
			return Queue{}, fmt.Errorf("queue %s: %s: %w", r.ID, c.name, err)
		}
	}
	if q.Hours.Periods == nil {
		q.Hours.Periods = []routing.Period{}
	}
	if q.Hours.Holidays == nil {
		q.Hours.Holidays = []string{}
	}
	return q, nil
}

func queueRowOf(q Queue) (queueRow, error) {
	periods, err := json.Marshal(q.Hours.Periods)
	if err != nil {
		return queueRow{}, err
	}
	holidays, err := json.Marshal(q.Hours.Holidays)
	if err != nil {
		return queueRow{}, err
	}
	overflow, err := json.Marshal(q.Overflow)
	if err != nil {
		return queueRow{}, err
	}
	return queueRow{
		ID: q.ID, Name: q.Name, Priority: q.Priority, Method: q.Method, TimeZone: q.Hours.TimeZone,
		OperatingHours: string(periods), Holidays: string(holidays), Overflow: string(overflow),
		ServiceLevelS: int64(q.ServiceLevel / time.Second), CreatedAt: q.CreatedAt, UpdatedAt: q.UpdatedAt,
	}, nil
}

// queueNameTaken is the ErrConflict of a duplicate name.
func queueNameTaken(name string, err error) error {
	return &ConflictError{Message: fmt.Sprintf("a queue named %q exists; choose another name", name), Err: err}
}

// CreateQueue stores a new queue without members. A live queue with the
// same name is ErrConflict; invalid settings are a *FieldError (ErrInvalid),
// an overflow transfer to a missing queue included.
func (s *Store) CreateQueue(ctx context.Context, q Queue) (_ Queue, err error) {
	defer wrap(&err, "store.CreateQueue(%q)", q.Name)
	if q.ID, err = newID(); err != nil {
		return Queue{}, err
	}
	if q.ServiceLevel == 0 {
		q.ServiceLevel = DefaultServiceLevel
	}
	if err := q.normalize(); err != nil {
		return Queue{}, err
	}
	now := s.clock()
	q.CreatedAt, q.UpdatedAt, q.DeletedAt, q.AgentIDs = now, now, nil, []string{}
	r, err := queueRowOf(q)
	if err != nil {
		return Queue{}, err
	}
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.checkQueueRefs(ctx, tx, q); err != nil {
			return err
		}
		_, err := exec(ctx, tx, `INSERT INTO queues (id, name, priority, assignment_method, time_zone, operating_hours,
				holidays, overflow, service_level_seconds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Name, r.Priority, r.Method, r.TimeZone, r.OperatingHours, r.Holidays, r.Overflow, r.ServiceLevelS,
			s.timestamp(r.CreatedAt), s.timestamp(r.UpdatedAt))
		if isUniqueViolation(err) {
			return queueNameTaken(q.Name, err)
		}
		return err
	})
	if err != nil {
		return Queue{}, err
	}
	return r.queue()
}

// GetQueue returns a live queue with its members.
func (s *Store) GetQueue(ctx context.Context, id string) (_ Queue, err error) {
	defer wrap(&err, "store.GetQueue(%q)", id)
	return getQueue(ctx, s.db, id, "")
}

// getQueue returns a live queue with its members; lock is appended to the
// query of the queue row (" FOR UPDATE" on PostgreSQL, or "").
func getQueue(ctx context.Context, q querier, id, lock string) (Queue, error) {
	out, err := readQueue(ctx, q, `SELECT `+queueColumns+` FROM queues WHERE id = ? AND deleted_at IS NULL`+lock, id)
	if err != nil {
		return Queue{}, err
	}
	if err := list(ctx, q, &out.AgentIDs, `SELECT qa.agent_id FROM queue_agents qa
		JOIN agents a ON a.id = qa.agent_id AND a.deleted_at IS NULL
		WHERE qa.queue_id = ? ORDER BY qa.agent_id`, id); err != nil {
		return Queue{}, fmt.Errorf("members: %w", err)
	}
	if out.AgentIDs == nil {
		out.AgentIDs = []string{}
	}
	return out, nil
}

// queueOnly reads a queue without its members (the routing ledger's hot
// path); a deleted one too unless live.
func queueOnly(ctx context.Context, q querier, id string, live bool) (Queue, error) {
	where := ""
	if live {
		where = " AND deleted_at IS NULL"
	}
	return readQueue(ctx, q, `SELECT `+queueColumns+` FROM queues WHERE id = ?`+where, id)
}

func readQueue(ctx context.Context, q querier, query string, args ...any) (Queue, error) {
	var r queueRow
	if err := get(ctx, q, &r, query, args...); err != nil {
		return Queue{}, err
	}
	return r.queue()
}

// ListQueues returns the live queues with their members, in priority
// order (lower first), then by name.
func (s *Store) ListQueues(ctx context.Context) (_ []Queue, err error) {
	defer wrap(&err, "store.ListQueues")
	var rows []queueRow
	if err := list(ctx, s.db, &rows, `SELECT `+queueColumns+` FROM queues WHERE deleted_at IS NULL ORDER BY priority, name, id`); err != nil {
		return nil, err
	}
	var members []struct {
		QueueID string `db:"queue_id"`
		AgentID string `db:"agent_id"`
	}
	if err := list(ctx, s.db, &members, `SELECT qa.queue_id, qa.agent_id FROM queue_agents qa
		JOIN queues q ON q.id = qa.queue_id AND q.deleted_at IS NULL
		JOIN agents a ON a.id = qa.agent_id AND a.deleted_at IS NULL
		ORDER BY qa.queue_id, qa.agent_id`); err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	byQueue := map[string][]string{}
	for _, m := range members {
		byQueue[m.QueueID] = append(byQueue[m.QueueID], m.AgentID)
	}
	out := make([]Queue, len(rows))
	for i, r := range rows {
		if out[i], err = r.queue(); err != nil {
			return nil, err
		}
		if ids := byQueue[r.ID]; ids != nil {
			out[i].AgentIDs = ids
		}
	}
	return out, nil
}

// UpdateQueue changes the fields of u that are not nil. It returns a
// *FieldError (ErrInvalid), and changes nothing, when the result would be
// invalid; ErrConflict when the new name is taken.
func (s *Store) UpdateQueue(ctx context.Context, id string, u QueueUpdate) (_ Queue, err error) {
	defer wrap(&err, "store.UpdateQueue(%q)", id)
	lock := ""
	if s.dialect == DialectPostgres {
		lock = ` FOR UPDATE`
	}
	var out Queue
	err = s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		q, err := getQueue(ctx, tx, id, lock)
		if err != nil {
			return err
		}
		setIf(&q.Name, u.Name)
		setIf(&q.Priority, u.Priority)
		setIf(&q.Method, u.Method)
		setIf(&q.Hours, u.Hours)
		setIf(&q.Overflow, u.Overflow)
		setIf(&q.ServiceLevel, u.ServiceLevel)
		if err := q.normalize(); err != nil {
			return err
		}
		if err := s.checkQueueRefs(ctx, tx, q); err != nil {
			return err
		}
		q.UpdatedAt = s.clock()
		r, err := queueRowOf(q)
		if err != nil {
			return err
		}
		err = execOne(ctx, tx, `UPDATE queues SET name = ?, priority = ?, assignment_method = ?, time_zone = ?,
				operating_hours = ?, holidays = ?, overflow = ?, service_level_seconds = ?, updated_at = ?
			WHERE id = ? AND deleted_at IS NULL`,
			r.Name, r.Priority, r.Method, r.TimeZone, r.OperatingHours, r.Holidays, r.Overflow, r.ServiceLevelS, s.timestamp(r.UpdatedAt), id)
		if isUniqueViolation(err) {
			return queueNameTaken(q.Name, err)
		}
		if err != nil {
			return err
		}
		agents := q.AgentIDs
		if out, err = r.queue(); err != nil {
			return err
		}
		out.AgentIDs = agents
		return nil
	})
	return out, err
}

// DeleteQueue soft-deletes a queue. It refuses with ErrConflict, saying
// why, while the queue is in use: the fallback queue of a workstream, the
// queue of a workstream's routing rule, the target of another queue's
// overflow transfer, or conversations waiting in it. The checks and the
// deletion are one ledger transaction, so that no conversation is queued
// in it meanwhile.
func (s *Store) DeleteQueue(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.DeleteQueue(%q)", id)
	lock := ""
	if s.dialect == DialectPostgres {
		lock = ` FOR UPDATE`
	}
	return s.ledgerTx(ctx, func(tx *sqlx.Tx) error {
		var name string
		if err := get(ctx, tx, &name, `SELECT name FROM queues WHERE id = ? AND deleted_at IS NULL`+lock, id); err != nil {
			return err
		}
		if why, err := s.queueInUse(ctx, tx, id); err != nil {
			return err
		} else if why != "" {
			return conflictf("queue %q cannot be deleted: %s", name, why)
		}
		now := s.timestamp(s.clock())
		return execOne(ctx, tx, `UPDATE queues SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, now, now, id)
	})
}

// queueInUse says why a queue cannot go ("" when it can).
func (s *Store) queueInUse(ctx context.Context, tx querier, id string) (string, error) {
	var workstreams []struct {
		ID           string         `db:"id"`
		Name         string         `db:"name"`
		Fallback     sql.NullString `db:"fallback_queue_id"`
		Distribution sql.NullString `db:"distribution"`
	}
	if err := list(ctx, tx, &workstreams, `SELECT id, name, fallback_queue_id, distribution FROM workstreams
		WHERE deleted_at IS NULL AND (distribution IS NOT NULL OR fallback_queue_id IS NOT NULL) ORDER BY created_at, id`); err != nil {
		return "", fmt.Errorf("workstreams: %w", err)
	}
	for _, w := range workstreams {
		if w.Fallback.String == id {
			return fmt.Sprintf("it is the fallback queue of workstream %q (%s); choose another fallback queue first", w.Name, w.ID), nil
		}
	}
	for _, w := range workstreams {
		if !w.Distribution.Valid {
			continue
		}
		var d routing.Distribution
		if err := json.Unmarshal([]byte(w.Distribution.String), &d); err != nil {
			return "", fmt.Errorf("workstream %s: distribution: %w", w.ID, err)
		}
		if d.FallbackQueueID == id {
			return fmt.Sprintf("it is the fallback queue of workstream %q (%s); choose another fallback queue first", w.Name, w.ID), nil
		}
		for i, r := range d.Rules {
			if r.QueueID == id {
				return fmt.Sprintf("routing rule %d (%q) of workstream %q (%s) sends conversations to it; change that rule first", i, r.Name, w.Name, w.ID), nil
			}
		}
	}
	var queues []queueRow
	if err := list(ctx, tx, &queues, `SELECT `+queueColumns+` FROM queues WHERE deleted_at IS NULL AND id <> ? ORDER BY name, id`, id); err != nil {
		return "", fmt.Errorf("queues: %w", err)
	}
	for _, r := range queues {
		q, err := r.queue()
		if err != nil {
			return "", err
		}
		for _, t := range overflowTargets(q.Overflow) {
			if t[1] == id {
				return fmt.Sprintf("the %s overflow rule of queue %q (%s) transfers to it; change that rule first", t[0], q.Name, q.ID), nil
			}
		}
	}
	var waiting int
	if err := get(ctx, tx, &waiting, `SELECT COUNT(*) FROM queue_items WHERE queue_id = ?`, id); err != nil {
		return "", fmt.Errorf("queued conversations: %w", err)
	}
	if waiting > 0 {
		return fmt.Sprintf("%d conversation(s) are waiting in it; let them be assigned or transfer them first", waiting), nil
	}
	return "", nil
}

// AddQueueAgent makes an agent a member of a queue; it is idempotent.
// ErrNotFound names the missing queue or agent.
func (s *Store) AddQueueAgent(ctx context.Context, queueID, agentID string) (err error) {
	defer wrap(&err, "store.AddQueueAgent(%q, %q)", queueID, agentID)
	share := ""
	if s.dialect == DialectPostgres {
		share = ` FOR SHARE`
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var got string
		if err := get(ctx, tx, &got, `SELECT id FROM queues WHERE id = ? AND deleted_at IS NULL`+share, queueID); err != nil {
			return fmt.Errorf("queue %s: %w", queueID, err)
		}
		if err := get(ctx, tx, &got, `SELECT id FROM agents WHERE id = ? AND deleted_at IS NULL`+share, agentID); err != nil {
			return fmt.Errorf("agent %s: %w", agentID, err)
		}
		now := s.timestamp(s.clock())
		n, err := exec(ctx, tx, `INSERT INTO queue_agents (queue_id, agent_id, created_at) VALUES (?, ?, ?)
			ON CONFLICT (queue_id, agent_id) DO NOTHING`, queueID, agentID, now)
		if err != nil || n == 0 {
			return err
		}
		_, err = exec(ctx, tx, `UPDATE queues SET updated_at = ? WHERE id = ?`, now, queueID)
		return err
	})
}

// RemoveQueueAgent ends an agent's membership of a queue; it is
// idempotent. ErrNotFound when the queue is not live, or when the agent is
// neither live nor a member.
func (s *Store) RemoveQueueAgent(ctx context.Context, queueID, agentID string) (err error) {
	defer wrap(&err, "store.RemoveQueueAgent(%q, %q)", queueID, agentID)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var got string
		if err := get(ctx, tx, &got, `SELECT id FROM queues WHERE id = ? AND deleted_at IS NULL`, queueID); err != nil {
			return fmt.Errorf("queue %s: %w", queueID, err)
		}
		n, err := exec(ctx, tx, `DELETE FROM queue_agents WHERE queue_id = ? AND agent_id = ?`, queueID, agentID)
		if err != nil {
			return err
		}
		if n == 0 {
			if err := get(ctx, tx, &got, `SELECT id FROM agents WHERE id = ? AND deleted_at IS NULL`, agentID); err != nil {
				return fmt.Errorf("agent %s: %w", agentID, err)
			}
			return nil
		}
		now := s.timestamp(s.clock())
		_, err = exec(ctx, tx, `UPDATE queues SET updated_at = ? WHERE id = ?`, now, queueID)
		return err
	})
}

// QueueIDsOfAgent returns the live queues an agent is a member of, in
// priority order (lower first), then by name; none for an unknown agent.
func (s *Store) QueueIDsOfAgent(ctx context.Context, agentID string) (_ []string, err error) {
	defer wrap(&err, "store.QueueIDsOfAgent(%q)", agentID)
	ids := []string{}
	if err := list(ctx, s.db, &ids, `SELECT q.id FROM queue_agents qa
		JOIN queues q ON q.id = qa.queue_id AND q.deleted_at IS NULL
		WHERE qa.agent_id = ? ORDER BY q.priority, q.name, q.id`, agentID); err != nil {
		return nil, err
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}
