package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// registerSurveys adds the post-conversation survey's settings and the
// CSAT report (issue 9).
func (s *Server) registerSurveys(v1 *echo.Group) {
	v1.GET("/workstreams/:id/post-survey", s.getPostSurvey, requireRole(RoleAdmin))
	v1.PUT("/workstreams/:id/post-survey", s.putPostSurvey, requireRole(RoleAdmin))
	v1.GET("/reports/csat", s.csatReport, requireRole(RoleAdmin, RoleSupervisor))
}

// postSurveyJSON is a workstream's post-survey as the API shows it.
type postSurveyJSON struct {
	WorkstreamID    string    `json:"workstream_id"`
	Enabled         bool      `json:"enabled"`
	Mode            string    `json:"mode"`
	ResponseTimeout string    `json:"response_timeout"`
	Question        string    `json:"question"`
	CommentPrompt   string    `json:"comment_prompt"`
	Thanks          string    `json:"thanks"`
	OnAutoClose     bool      `json:"on_auto_close"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

func toPostSurveyJSON(p store.PostSurvey) postSurveyJSON {
	return postSurveyJSON{WorkstreamID: p.WorkstreamID, Enabled: p.Enabled, Mode: p.Mode, ResponseTimeout: p.Timeout.String(),
		Question: p.Question, CommentPrompt: p.CommentPrompt, Thanks: p.Thanks, OnAutoClose: p.OnAutoClose, UpdatedAt: p.UpdatedAt}
}

// postSurveyRequest changes the fields it has; the others keep their value.
type postSurveyRequest struct {
	Enabled         *bool   `json:"enabled"`
	Mode            *string `json:"mode"`
	ResponseTimeout *string `json:"response_timeout"`
	Question        *string `json:"question"`
	CommentPrompt   *string `json:"comment_prompt"`
	Thanks          *string `json:"thanks"`
	OnAutoClose     *bool   `json:"on_auto_close"`
}

func (s *Server) getPostSurvey(c echo.Context) error {
	p, err := s.opts.Store.PostSurveyOf(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toPostSurveyJSON(p))
}

func (s *Server) putPostSurvey(c echo.Context) error {
	ctx := c.Request().Context()
	var req postSurveyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	p, err := s.opts.Store.PostSurveyOf(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	setIfSet(&p.Enabled, req.Enabled)
	setIfSet(&p.Mode, req.Mode)
	setIfSet(&p.Question, req.Question)
	setIfSet(&p.CommentPrompt, req.CommentPrompt)
	setIfSet(&p.Thanks, req.Thanks)
	setIfSet(&p.OnAutoClose, req.OnAutoClose)
	var d *time.Duration
	if err := setDuration(&d, "response_timeout", req.ResponseTimeout); err != nil {
		return err
	}
	if d != nil {
		p.Timeout = *d
	}
	if p, err = s.opts.Store.SavePostSurvey(ctx, p); err != nil {
		return configError(err, "workstream", c.Param("id"))
	}
	w, err := s.opts.Store.GetWorkstream(ctx, p.WorkstreamID)
	if err != nil {
		return storeError(err, "workstream", p.WorkstreamID)
	}
	s.log.InfoContext(ctx, "post-survey updated", "workstream", w.ID, "enabled", p.Enabled, "mode", p.Mode)
	s.settingsChanged(ctx, w.PageRef)
	return c.JSON(http.StatusOK, toPostSurveyJSON(p))
}

func setIfSet[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// csatJSON is the CSAT report.
type csatJSON struct {
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	WorkstreamID string    `json:"workstream_id,omitempty"`
	QueueID      string    `json:"queue_id,omitempty"`
	AgentID      string    `json:"agent_id,omitempty"`
	store.CSATReport
}

// defaultReportSpan: without from, the report covers the last 30 days.
const defaultReportSpan = 30 * 24 * time.Hour

func (s *Server) csatReport(c echo.Context) error {
	to := s.opts.Now().UTC()
	if v := c.QueryParam("to"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return apierror.InvalidField("to", "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", v)
		}
		to = t.UTC()
	}
	from := to.Add(-defaultReportSpan)
	if v := c.QueryParam("from"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return apierror.InvalidField("from", "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", v)
		}
		from = t.UTC()
	}
	if !from.Before(to) {
		return apierror.InvalidField("from", "must be before to")
	}
	f := store.CSATFilter{From: from, To: to, WorkstreamID: c.QueryParam("workstream_id"), QueueID: c.QueryParam("queue_id"),
		AgentID: c.QueryParam("agent_id")}
	r, err := s.opts.Store.CSAT(c.Request().Context(), f)
	if err != nil {
		return apierror.Internal(err)
	}
	return c.JSON(http.StatusOK, csatJSON{From: from, To: to, WorkstreamID: f.WorkstreamID, QueueID: f.QueueID, AgentID: f.AgentID, CSATReport: r})
}
