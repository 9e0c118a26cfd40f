package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/routing"
	"parley/store"
)

// registerQueues mounts /api/v1/queues (admin only): the queues and their
// members.
func (s *Server) registerQueues(v1 *echo.Group) {
	admin := requireRole(RoleAdmin)
	v1.POST("/queues", s.createQueue, admin)
	v1.GET("/queues", s.listQueues, admin)
	v1.GET("/queues/:id", s.getQueue, admin)
	v1.PATCH("/queues/:id", s.updateQueue, admin)
	v1.DELETE("/queues/:id", s.deleteQueue, admin)
	v1.PUT("/queues/:id/agents/:agent_id", s.addQueueAgent, admin)
	v1.DELETE("/queues/:id/agents/:agent_id", s.removeQueueAgent, admin)
}

// queueJSON is a queue as the API shows it.
type queueJSON struct {
	ID               string             `json:"id"`
	Name             string             `json:"name"`
	Priority         int                `json:"priority"`
	AssignmentMethod string             `json:"assignment_method"`
	OperatingHours   operatingHoursJSON `json:"operating_hours"`
	Overflow         overflowJSON       `json:"overflow"`
	// ServiceLevelThreshold: answered within it is in service level (metrics).
	ServiceLevelThreshold string    `json:"service_level_threshold"`
	Agents                []string  `json:"agents"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

type operatingHoursJSON struct {
	TimeZone string       `json:"time_zone"`
	Periods  []periodJSON `json:"periods"`
	Holidays []string     `json:"holidays"`
}

type periodJSON struct {
	Day   string `json:"day"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// overflowJSON lists the rules set; absent ones are omitted.
type overflowJSON struct {
	OutOfHours       *overflowRuleJSON `json:"out_of_hours,omitempty"`
	MaxWaiting       *overflowRuleJSON `json:"max_waiting,omitempty"`
	MaxEstimatedWait *overflowRuleJSON `json:"max_estimated_wait,omitempty"`
	WhileQueued      *overflowRuleJSON `json:"while_queued,omitempty"`
}

// overflowRuleJSON: count for max_waiting, after for the waits.
type overflowRuleJSON struct {
	Count  *int   `json:"count,omitempty"`
	After  string `json:"after,omitempty"`
	Action string `json:"action"`
	Queue  string `json:"queue,omitempty"`
}

func toQueueJSON(q store.Queue) queueJSON {
	out := queueJSON{
		ID: q.ID, Name: q.Name, Priority: q.Priority, AssignmentMethod: q.Method,
		OperatingHours:        operatingHoursJSON{TimeZone: q.Hours.TimeZone, Periods: []periodJSON{}, Holidays: []string{}},
		Agents:                []string{},
		ServiceLevelThreshold: q.ServiceLevel.String(),
		CreatedAt:             q.CreatedAt, UpdatedAt: q.UpdatedAt,
	}
	for _, p := range q.Hours.Periods {
		out.OperatingHours.Periods = append(out.OperatingHours.Periods, periodJSON(p))
	}
	out.OperatingHours.Holidays = append(out.OperatingHours.Holidays, q.Hours.Holidays...)
	out.Agents = append(out.Agents, q.AgentIDs...)
	o := q.Overflow
	if o.OutOfHours != nil {
		out.Overflow.OutOfHours = &overflowRuleJSON{Action: o.OutOfHours.Action, Queue: o.OutOfHours.QueueID}
	}
	if o.MaxWaiting != nil {
		n := o.MaxWaiting.Count
		out.Overflow.MaxWaiting = &overflowRuleJSON{Count: &n, Action: o.MaxWaiting.Action, Queue: o.MaxWaiting.QueueID}
	}
	if o.MaxEstimatedWait != nil {
		out.Overflow.MaxEstimatedWait = &overflowRuleJSON{After: o.MaxEstimatedWait.After.D().String(), Action: o.MaxEstimatedWait.Action, Queue: o.MaxEstimatedWait.QueueID}
	}
	if o.WhileQueued != nil {
		out.Overflow.WhileQueued = &overflowRuleJSON{After: o.WhileQueued.After.D().String(), Action: o.WhileQueued.Action, Queue: o.WhileQueued.QueueID}
	}
	return out
}

// queueRequest is the body of POST (name and priority required) and PATCH
// (any subset). operating_hours and overflow replace the whole value; {}
// means open around the clock, and no overflow rule.
type queueRequest struct {
	Name             *string         `json:"name"`
	Priority         *int            `json:"priority"`
	AssignmentMethod *string         `json:"assignment_method"`
	OperatingHours   json.RawMessage `json:"operating_hours"`
	Overflow         json.RawMessage `json:"overflow"`
	// ServiceLevelThreshold is a duration such as "60s" or "2m" (1s to 24h).
	ServiceLevelThreshold *string `json:"service_level_threshold"`
}

type operatingHoursRequest struct {
	TimeZone string          `json:"time_zone"`
	Periods  json.RawMessage `json:"periods"`
	Holidays json.RawMessage `json:"holidays"`
}

type overflowRequest struct {
	OutOfHours       json.RawMessage `json:"out_of_hours"`
	MaxWaiting       json.RawMessage `json:"max_waiting"`
	MaxEstimatedWait json.RawMessage `json:"max_estimated_wait"`
	WhileQueued      json.RawMessage `json:"while_queued"`
}

type overflowRuleRequest struct {
	Count  *int    `json:"count"`
	After  *string `json:"after"`
	Action *string `json:"action"`
	Queue  string  `json:"queue"`
}

// queueUpdate reads the settings of req into an update; the store checks
// their values (a store.FieldError names the field).
func (req queueRequest) queueUpdate() (store.QueueUpdate, error) {
	var u store.QueueUpdate
	if req.Name != nil {
		if err := required("name", *req.Name, store.MaxQueueNameLength); err != nil {
			return u, err
		}
		u.Name = req.Name
	}
	u.Priority = req.Priority
	if req.AssignmentMethod != nil && *req.AssignmentMethod == "" {
		return u, apierror.InvalidField("assignment_method", "must be %s or %s", routing.MethodHighestCapacity, routing.MethodRoundRobin)
	}
	u.Method = req.AssignmentMethod
	if present(req.OperatingHours) {
		h, err := decodeOperatingHours(req.OperatingHours)
		if err != nil {
			return u, err
		}
		u.Hours = &h
	}
	if present(req.Overflow) {
		o, err := decodeOverflow(req.Overflow)
		if err != nil {
			return u, err
		}
		u.Overflow = &o
	}
	if v := req.ServiceLevelThreshold; v != nil {
		d, err := time.ParseDuration(*v)
		if err != nil || d < store.MinServiceLevel || d > store.MaxServiceLevel || d%time.Second != 0 {
			return u, apierror.InvalidField("service_level_threshold", "must be a whole number of seconds from 1s to 24h, such as \"60s\" or \"2m\", got %q", *v)
		}
		u.ServiceLevel = &d
	}
	return u, nil
}

func decodeOperatingHours(raw json.RawMessage) (routing.OperatingHours, error) {
	const path = "operating_hours"
	var req operatingHoursRequest
	if err := decodePart(path, raw, &req); err != nil {
		return routing.OperatingHours{}, err
	}
	h := routing.OperatingHours{TimeZone: req.TimeZone, Periods: []routing.Period{}, Holidays: []string{}}
	periods, err := decodeArray(path+".periods", req.Periods)
	if err != nil {
		return h, err
	}
	for i, raw := range periods {
		var p periodJSON
		if err := decodePart(fmt.Sprintf("%s.periods[%d]", path, i), raw, &p); err != nil {
			return h, err
		}
		h.Periods = append(h.Periods, routing.Period(p))
	}
	holidays, err := decodeArray(path+".holidays", req.Holidays)
	if err != nil {
		return h, err
	}
	for i, raw := range holidays {
		var d string
		if err := decodePart(fmt.Sprintf("%s.holidays[%d]", path, i), raw, &d); err != nil {
			return h, err
		}
		h.Holidays = append(h.Holidays, d)
	}
	return h, nil
}

// decodeArray splits an optional JSON array into its elements (none when
// absent or null).
func decodeArray(path string, raw json.RawMessage) ([]json.RawMessage, error) {
	if !present(raw) {
		return nil, nil
	}
	var elems []json.RawMessage
	if err := decodePart(path, raw, &elems); err != nil {
		return nil, err
	}
	return elems, nil
}

func decodeOverflow(raw json.RawMessage) (routing.Overflow, error) {
	const path = "overflow"
	var req overflowRequest
	var o routing.Overflow
	if err := decodePart(path, raw, &req); err != nil {
		return o, err
	}
	rule := func(name string, raw json.RawMessage, withCount, withAfter bool) (*overflowRuleRequest, error) {
		if !present(raw) {
			return nil, nil
		}
		field := path + "." + name
		var r overflowRuleRequest
		if err := decodePart(field, raw, &r); err != nil {
			return nil, err
		}
		switch {
		case r.Action == nil:
			return nil, apierror.InvalidField(field+".action", "is required: %s", actionsFor(name))
		case withCount && r.Count == nil:
			return nil, apierror.InvalidField(field+".count", "is required: the number of waiting conversations beyond which the rule applies")
		case !withCount && r.Count != nil:
			return nil, apierror.InvalidField(field+".count", "unknown field")
		case withAfter && r.After == nil:
			return nil, apierror.InvalidField(field+".after", "is required: a duration such as \"10m\"")
		case !withAfter && r.After != nil:
			return nil, apierror.InvalidField(field+".after", "unknown field")
		}
		return &r, nil
	}
	action := func(r *overflowRuleRequest) routing.OverflowAction {
		return routing.OverflowAction{Action: *r.Action, QueueID: r.Queue}
	}
	wait := func(name string, r *overflowRuleRequest) (*routing.MaxWait, error) {
		d, err := time.ParseDuration(*r.After)
		if err != nil || d <= 0 {
			return nil, apierror.InvalidField(path+"."+name+".after", "must be a positive duration such as \"10m\" or \"90s\", got %q", *r.After)
		}
		return &routing.MaxWait{After: routing.Duration(d), OverflowAction: action(r)}, nil
	}
	r, err := rule("out_of_hours", req.OutOfHours, false, false)
	if err != nil {
		return o, err
	}
	if r != nil {
		a := action(r)
		o.OutOfHours = &a
	}
	if r, err = rule("max_waiting", req.MaxWaiting, true, false); err != nil {
		return o, err
	}
	if r != nil {
		o.MaxWaiting = &routing.MaxWaiting{Count: *r.Count, OverflowAction: action(r)}
	}
	if r, err = rule("max_estimated_wait", req.MaxEstimatedWait, false, true); err != nil {
		return o, err
	}
	if r != nil {
		if o.MaxEstimatedWait, err = wait("max_estimated_wait", r); err != nil {
			return o, err
		}
	}
	if r, err = rule("while_queued", req.WhileQueued, false, true); err != nil {
		return o, err
	}
	if r != nil {
		if o.WhileQueued, err = wait("while_queued", r); err != nil {
			return o, err
		}
	}
	return o, nil
}

func actionsFor(rule string) string {
	if rule == "while_queued" {
		return "end or transfer"
	}
	return "end, transfer or queue"
}

// configError maps the store's errors of routing configuration: a
// *store.FieldError is a 400 naming the field, a *store.ConflictError a
// 409 saying why; the rest as storeError.
func configError(err error, kind, id string) error {
	var fe *store.FieldError
	if errors.As(err, &fe) {
		e := apierror.InvalidField(fe.Field, "%s", fe.Message)
		e.Err = err
		return e
	}
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		return &apierror.Error{Status: http.StatusConflict, Code: "conflict", Message: ce.Message, Err: err}
	}
	return storeError(err, kind, id)
}

// agentChanged triggers distribution after a change of an agent's
// presence, capacity or queues (Options.OnAgentChanged). The change is
// saved already: a failure is a 503 that says so.
func (s *Server) agentChanged(ctx context.Context, agentID, what string) error {
	if s.opts.OnAgentChanged == nil {
		return nil
	}
	if err := s.opts.OnAgentChanged(ctx, agentID); err != nil {
		return &apierror.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Err: fmt.Errorf("trigger distribution for agent %s: %w", agentID, err),
			Message: fmt.Sprintf("the %s was saved, but distribution could not be triggered for agent %s; send the same request again to retry", what, agentID)}
	}
	return nil
}

func (s *Server) createQueue(c echo.Context) error {
	ctx := c.Request().Context()
	var req queueRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return apierror.InvalidField("name", "is required")
	}
	if req.Priority == nil {
		return apierror.InvalidField("priority", "is required: 0 to %d, lower served first", store.MaxQueuePriority)
	}
	u, err := req.queueUpdate()
	if err != nil {
		return err
	}
	q := store.Queue{Name: *u.Name, Priority: *u.Priority}
	setIf(&q.Method, u.Method)
	setIf(&q.Hours, u.Hours)
	setIf(&q.Overflow, u.Overflow)
	setIf(&q.ServiceLevel, u.ServiceLevel)
	q, err = s.opts.Store.CreateQueue(ctx, q)
	if err != nil {
		return configError(err, "queue", *req.Name)
	}
	s.log.InfoContext(ctx, "queue created", "queue", q.ID, "name", q.Name)
	return c.JSON(http.StatusCreated, toQueueJSON(q))
}

// setIf sets *dst to *v unless v is nil.
func setIf[T any](dst, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (s *Server) listQueues(c echo.Context) error {
	list, err := s.opts.Store.ListQueues(c.Request().Context())
	if err != nil {
		return storeError(err, "queues", "")
	}
	out := make([]queueJSON, 0, len(list))
	for _, q := range list {
		out = append(out, toQueueJSON(q))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getQueue(c echo.Context) error {
	q, err := s.opts.Store.GetQueue(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "queue", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toQueueJSON(q))
}

func (s *Server) updateQueue(c echo.Context) error {
	ctx := c.Request().Context()
	var req queueRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	u, err := req.queueUpdate()
	if err != nil {
		return err
	}
	q, err := s.opts.Store.UpdateQueue(ctx, c.Param("id"), u)
	if err != nil {
		return configError(err, "queue", c.Param("id"))
	}
	s.log.InfoContext(ctx, "queue updated", "queue", q.ID)
	return c.JSON(http.StatusOK, toQueueJSON(q))
}

func (s *Server) deleteQueue(c echo.Context) error {
	ctx := c.Request().Context()
	if err := s.opts.Store.DeleteQueue(ctx, c.Param("id")); err != nil {
		return configError(err, "queue", c.Param("id"))
	}
	s.log.InfoContext(ctx, "queue deleted", "queue", c.Param("id"))
	return c.NoContent(http.StatusNoContent)
}

// addQueueAgent makes an agent a member of the queue (idempotent) and
// answers with the queue.
func (s *Server) addQueueAgent(c echo.Context) error {
	return s.changeMembership(c, true)
}

// removeQueueAgent ends a membership (idempotent) and answers with the queue.
func (s *Server) removeQueueAgent(c echo.Context) error {
	return s.changeMembership(c, false)
}

func (s *Server) changeMembership(c echo.Context, add bool) error {
	ctx := c.Request().Context()
	queueID, agentID := c.Param("id"), c.Param("agent_id")
	if _, err := s.opts.Store.GetQueue(ctx, queueID); err != nil {
		return storeError(err, "queue", queueID)
	}
	var err error
	if add {
		err = s.opts.Store.AddQueueAgent(ctx, queueID, agentID)
	} else {
		err = s.opts.Store.RemoveQueueAgent(ctx, queueID, agentID)
	}
	if errors.Is(err, store.ErrNotFound) {
		// The queue was there a moment ago: the agent is missing (or the
		// queue went meanwhile, which the next read tells).
		if _, qerr := s.opts.Store.GetQueue(ctx, queueID); qerr != nil {
			return storeError(qerr, "queue", queueID)
		}
		return apierror.NotFound("agent", agentID)
	}
	if err != nil {
		return storeError(err, "queue", queueID)
	}
	q, err := s.opts.Store.GetQueue(ctx, queueID)
	if err != nil {
		return storeError(err, "queue", queueID)
	}
	s.log.InfoContext(ctx, "queue membership changed", "queue", queueID, "agent", agentID, "member", add)
	if err := s.agentChanged(ctx, agentID, "queue membership"); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toQueueJSON(q))
}
