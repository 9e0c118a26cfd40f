package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"
)

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Problems []string          `json:"problems,omitempty"`
}

// readyz reports whether the database and Temporal answer.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	r := readiness{Status: "ready", Checks: map[string]string{"database": "ok", "temporal": "ok"}}
	if err := s.opts.Store.Ping(ctx); err != nil {
		r.Checks["database"] = "unreachable"
		r.Problems = append(r.Problems, "database: "+err.Error())
	}
	if _, err := s.opts.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		r.Checks["temporal"] = "unreachable"
		r.Problems = append(r.Problems, "temporal: "+err.Error())
	}
	if len(r.Problems) > 0 {
		r.Status = "not_ready"
		return c.JSON(http.StatusServiceUnavailable, map[string]any{
			"error":  map[string]string{"code": "not_ready", "message": "a dependency is unreachable"},
			"checks": r.Checks, "problems": r.Problems,
		})
	}
	return c.JSON(http.StatusOK, r)
}
