package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// registerAgents mounts /api/v1/agents (admin only).
func (s *Server) registerAgents(v1 *echo.Group) {
	admin := requireRole(RoleAdmin)
	v1.POST("/agents", s.createAgent, admin)
	v1.GET("/agents", s.listAgents, admin)
	v1.GET("/agents/:id", s.getAgent, admin)
	v1.POST("/agents/:id/api-keys", s.createAgentAPIKey, admin)
}

type agentJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toAgentJSON(a store.Agent) agentJSON {
	return agentJSON{ID: a.ID, Name: a.Name, Email: a.Email, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

type createAgentRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// createAgent creates an agent and its first API key (role agent), whose
// secret is shown once.
func (s *Server) createAgent(c echo.Context) error {
	ctx := c.Request().Context()
	var req createAgentRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("name", req.Name, 200); err != nil {
		return err
	}
	if err := required("email", req.Email, 254); err != nil {
		return err
	}
	email, ok := store.CanonicalEmail(req.Email)
	if !ok {
		return apierror.InvalidField("email", "must be an email address such as alice@example.com, got %q", req.Email)
	}
	a, err := s.opts.Store.CreateAgent(ctx, req.Name, req.Email)
	if errors.Is(err, store.ErrConflict) {
		return &apierror.Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("an agent with email %s already exists", email), Err: err}
	}
	if err != nil {
		return storeError(err, "agent", req.Email)
	}
	s.log.InfoContext(ctx, "agent created", "agent", a.ID)
	k, secret, err := s.issueAgentKey(ctx, a)
	if err != nil {
		// Two statements, not one transaction: the agent stays. Say so, so
		// that the admin issues its key rather than creating it again (409).
		return &apierror.Error{Status: http.StatusInternalServerError, Code: "internal", Err: err,
			Message: fmt.Sprintf("agent %s was created but its API key could not be issued; issue one with POST /api/v1/agents/%s/api-keys", a.ID, a.ID)}
	}
	return c.JSON(http.StatusCreated, map[string]any{"agent": toAgentJSON(a), "api_key": toAPIKeyJSON(k), "secret": secret})
}

// issueAgentKey creates an API key with the agent role bound to a. Its
// errors name the agent: apierror.Handler logs them with the 500.
func (s *Server) issueAgentKey(ctx context.Context, a store.Agent) (store.APIKey, string, error) {
	k, secret, err := s.opts.Store.CreateAPIKey(ctx, "agent "+a.Email, RoleAgent, a.ID)
	if err != nil {
		return store.APIKey{}, "", fmt.Errorf("API key for agent %s: %w", a.ID, err)
	}
	s.log.InfoContext(ctx, "api key created", "key", k.ID, "role", k.Role, "agent", a.ID)
	return k, secret, nil
}

func (s *Server) listAgents(c echo.Context) error {
	list, err := s.opts.Store.ListAgents(c.Request().Context())
	if err != nil {
		return storeError(err, "agents", "")
	}
	out := make([]agentJSON, 0, len(list))
	for _, a := range list {
		out = append(out, toAgentJSON(a))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getAgent(c echo.Context) error {
	a, err := s.opts.Store.GetAgent(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "agent", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toAgentJSON(a))
}

// createAgentAPIKey issues another key for an agent (a new device, a
// rotation, or after createAgent could not); revoke old ones with
// DELETE /api/v1/api-keys/{id}.
func (s *Server) createAgentAPIKey(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := s.opts.Store.GetAgent(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "agent", c.Param("id"))
	}
	k, secret, err := s.issueAgentKey(ctx, a)
	if err != nil {
		return apierror.Internal(err)
	}
	return c.JSON(http.StatusCreated, map[string]any{"api_key": toAPIKeyJSON(k), "secret": secret})
}
