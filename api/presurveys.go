package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// registerPreSurveys adds the pre-conversation survey's settings (issue 9).
func (s *Server) registerPreSurveys(v1 *echo.Group) {
	v1.GET("/workstreams/:id/pre-survey", s.getPreSurvey, requireRole(RoleAdmin))
	v1.PUT("/workstreams/:id/pre-survey", s.putPreSurvey, requireRole(RoleAdmin))
}

// preSurveyJSON is a workstream's pre-survey as the API shows it.
type preSurveyJSON struct {
	WorkstreamID    string                    `json:"workstream_id"`
	Enabled         bool                      `json:"enabled"`
	Questions       []store.PreSurveyQuestion `json:"questions"`
	QuestionTimeout string                    `json:"question_timeout"`
	Timeout         string                    `json:"timeout"`
	UpdatedAt       time.Time                 `json:"updated_at,omitzero"`
}

func toPreSurveyJSON(p store.PreSurvey) preSurveyJSON {
	qs := p.Questions
	if qs == nil {
		qs = []store.PreSurveyQuestion{}
	}
	return preSurveyJSON{WorkstreamID: p.WorkstreamID, Enabled: p.Enabled, Questions: qs,
		QuestionTimeout: p.QuestionTimeout.String(), Timeout: p.Timeout.String(), UpdatedAt: p.UpdatedAt}
}

// preSurveyRequest changes the fields it has; the others keep their value.
type preSurveyRequest struct {
	Enabled         *bool                      `json:"enabled"`
	Questions       *[]store.PreSurveyQuestion `json:"questions"`
	QuestionTimeout *string                    `json:"question_timeout"`
	Timeout         *string                    `json:"timeout"`
}

func (s *Server) getPreSurvey(c echo.Context) error {
	p, err := s.opts.Store.PreSurveyOf(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toPreSurveyJSON(p))
}

func (s *Server) putPreSurvey(c echo.Context) error {
	ctx := c.Request().Context()
	var req preSurveyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	p, err := s.opts.Store.PreSurveyOf(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	if req.Enabled != nil {
		p.Enabled = *req.Enabled
	}
	if req.Questions != nil {
		p.Questions = *req.Questions
	}
	for _, f := range []struct {
		name string
		v    *string
		dst  *time.Duration
	}{{"question_timeout", req.QuestionTimeout, &p.QuestionTimeout}, {"timeout", req.Timeout, &p.Timeout}} {
		var d *time.Duration
		if err := setDuration(&d, f.name, f.v); err != nil {
			return err
		}
		if d != nil {
			*f.dst = *d
		}
	}
	if p, err = s.opts.Store.SavePreSurvey(ctx, p); err != nil {
		return configError(err, "workstream", c.Param("id"))
	}
	w, err := s.opts.Store.GetWorkstream(ctx, p.WorkstreamID)
	if err != nil {
		return storeError(err, "workstream", p.WorkstreamID)
	}
	s.log.InfoContext(ctx, "pre-survey updated", "workstream", w.ID, "enabled", p.Enabled, "questions", len(p.Questions))
	s.settingsChanged(ctx, w.PageRef)
	return c.JSON(http.StatusOK, toPreSurveyJSON(p))
}

// preSurveyResultJSON is a conversation's pre-survey, shown to the agent.
type preSurveyResultJSON struct {
	Status   string                `json:"status"`
	Answers  []preSurveyAnswerJSON `json:"answers"`
	TimedOut bool                  `json:"timed_out"`
}

type preSurveyAnswerJSON struct {
	QuestionID string `json:"question_id"`
	Question   string `json:"question"`
	Answer     string `json:"answer"`
}

// preSurveyOf is the conversation's pre-survey; nil when it had none.
func (s *Server) preSurveyOf(ctx context.Context, conversationID string) (*preSurveyResultJSON, error) {
	r, err := s.opts.Store.PreSurveyResultOf(ctx, conversationID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, apierror.Internal(err)
	}
	out := &preSurveyResultJSON{Status: r.Status, TimedOut: r.TimedOut, Answers: []preSurveyAnswerJSON{}}
	for _, a := range r.Answers {
		out.Answers = append(out.Answers, preSurveyAnswerJSON(a))
	}
	return out, nil
}
