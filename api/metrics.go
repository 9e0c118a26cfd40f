package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// registerMetrics adds the supervisors' queue metrics (issue 10).
func (s *Server) registerMetrics(v1 *echo.Group) {
	v1.GET("/metrics/queues", s.queueMetrics, requireRole(RoleAdmin, RoleSupervisor))
}

// queueMetricsJSON is a queue's metrics. Durations are in seconds
// (fractions to the millisecond); averages and the service level are null
// when there is nothing to average.
type queueMetricsJSON struct {
	QueueID               string                      `json:"queue_id"`
	QueueName             string                      `json:"queue_name"`
	TimeZone              string                      `json:"time_zone"`
	ServiceLevelThreshold string                      `json:"service_level_threshold"`
	From                  time.Time                   `json:"from"`
	To                    time.Time                   `json:"to"`
	Live                  queueLiveJSON               `json:"live"`
	Period                periodMetricsJSON           `json:"period"`
	Workstreams           []workstreamQueueMetricJSON `json:"workstreams"`
}

type queueLiveJSON struct {
	Waiting            int            `json:"waiting"`
	LongestWaitSeconds float64        `json:"longest_wait_seconds"`
	Agents             map[string]int `json:"agents"`
	Members            int            `json:"members"`
	FreeCapacity       int            `json:"free_capacity"`
}

type workstreamQueueMetricJSON struct {
	WorkstreamID       string            `json:"workstream_id"`
	Waiting            int               `json:"waiting"`
	LongestWaitSeconds float64           `json:"longest_wait_seconds"`
	Period             periodMetricsJSON `json:"period"`
}

type periodMetricsJSON struct {
	Offered                     int      `json:"offered"`
	Offers                      int      `json:"offers"`
	Answered                    int      `json:"answered"`
	AnsweredWithinThreshold     int      `json:"answered_within_threshold"`
	Abandoned                   int      `json:"abandoned"`
	AbandonedWithinThreshold    int      `json:"abandoned_within_threshold"`
	AverageSpeedOfAnswerSeconds *float64 `json:"average_speed_of_answer_seconds"`
	ServiceLevel                *float64 `json:"service_level"`
	AverageHandleTimeSeconds    *float64 `json:"average_handle_time_seconds"`
	Handled                     int      `json:"handled"`
	Transfers                   int      `json:"transfers"`
	AverageFirstResponseSeconds *float64 `json:"average_first_response_seconds"`
	FirstResponses              int      `json:"first_responses"`
}

func seconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := d.Seconds()
	return &v
}

func toPeriodJSON(m store.PeriodMetrics) periodMetricsJSON {
	return periodMetricsJSON{
		Offered: m.Offered, Offers: m.Offers, Answered: m.Answered, AnsweredWithinThreshold: m.AnsweredWithinThreshold,
		Abandoned: m.Abandoned, AbandonedWithinThreshold: m.AbandonedWithinThreshold,
		AverageSpeedOfAnswerSeconds: seconds(m.AverageSpeedOfAnswer), ServiceLevel: m.ServiceLevel,
		AverageHandleTimeSeconds: seconds(m.AverageHandleTime), Handled: m.Handled, Transfers: m.Transfers,
		AverageFirstResponseSeconds: seconds(m.AverageFirstResponse), FirstResponses: m.FirstResponses,
	}
}

func toQueueMetricsJSON(r store.QueueMetricsRow) queueMetricsJSON {
	out := queueMetricsJSON{
		QueueID: r.QueueID, QueueName: r.QueueName, TimeZone: r.TimeZone, ServiceLevelThreshold: r.ServiceLevelThreshold.String(),
		From: r.From, To: r.To,
		Live: queueLiveJSON{Waiting: r.Live.Waiting, LongestWaitSeconds: r.Live.LongestWait.Round(time.Millisecond).Seconds(),
			Agents: r.Live.Agents, Members: r.Live.Members, FreeCapacity: r.Live.FreeCapacity},
		Period:      toPeriodJSON(r.Period),
		Workstreams: []workstreamQueueMetricJSON{},
	}
	if out.Live.Agents == nil {
		out.Live.Agents = map[string]int{}
	}
	for _, w := range r.Workstreams {
		out.Workstreams = append(out.Workstreams, workstreamQueueMetricJSON{WorkstreamID: w.WorkstreamID, Waiting: w.Waiting,
			LongestWaitSeconds: w.LongestWait.Round(time.Millisecond).Seconds(), Period: toPeriodJSON(w.Period)})
	}
	return out
}

// queueMetrics answers GET /api/v1/metrics/queues: per queue (and
// workstream) the live state and the figures of [from, to), by default
// today in each queue's time zone (UTC without one) until now.
func (s *Server) queueMetrics(c echo.Context) error {
	f := store.QueueMetricsFilter{QueueID: c.QueryParam("queue_id"), WorkstreamID: c.QueryParam("workstream_id"), Now: s.opts.Now().UTC()}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return apierror.InvalidField(p.name, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", v)
		}
		*p.dst = t.UTC()
	}
	to := f.To
	if to.IsZero() {
		to = f.Now
	}
	if !f.From.IsZero() && !f.From.Before(to) {
		return apierror.InvalidField("from", "must be before to (default: now)")
	}
	rows, err := s.opts.Store.QueueMetrics(c.Request().Context(), f)
	if errors.Is(err, store.ErrNotFound) {
		return apierror.NotFound("queue", f.QueueID)
	}
	if err != nil {
		return apierror.Internal(err)
	}
	out := make([]queueMetricsJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, toQueueMetricsJSON(r))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}
