package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/routing"
	"parley/store"
)

// registerAgents mounts /api/v1/agents: admins manage agents; an agent
// may read itself and set its own presence.
func (s *Server) registerAgents(v1 *echo.Group) {
	admin := requireRole(RoleAdmin)
	v1.POST("/agents", s.createAgent, admin)
	v1.GET("/agents", s.listAgents, admin)
	v1.GET("/agents/:id", s.getAgent, adminOrSelf("read another agent"))
	v1.PATCH("/agents/:id", s.updateAgent, admin)
	v1.PUT("/agents/:id/presence", s.setPresence, adminOrSelf("set another agent's presence"))
	v1.POST("/agents/:id/api-keys", s.createAgentAPIKey, admin)
}

// adminOrSelf lets through admins, and agents acting on themselves (the
// route's :id is their own).
func adminOrSelf(act string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := PrincipalFrom(c)
			if p.Role == RoleAdmin || (p.Role == RoleAgent && p.AgentID != "" && p.AgentID == c.Param("id")) {
				return next(c)
			}
			if p.Role == RoleAgent {
				return apierror.New(http.StatusForbidden, "forbidden", "an agent may not %s; only its own, or an admin", act)
			}
			return apierror.New(http.StatusForbidden, "forbidden", "this route needs the admin role, or the agent's own key; the key has %q", p.Role)
		}
	}
}

type agentJSON struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Email         string   `json:"email"`
	CapacityUnits int      `json:"capacity_units"`
	Skills        []string `json:"skills"`
	// Presence is the effective presence (it follows the load of an
	// agent that chose available); ChosenPresence what the agent chose.
	Presence          string     `json:"presence"`
	ChosenPresence    string     `json:"chosen_presence"`
	PresenceChangedAt *time.Time `json:"presence_changed_at,omitempty"`
	Queues            []string   `json:"queues"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

func toAgentJSON(a store.Agent, queues []string) agentJSON {
	skills := append([]string{}, a.Skills...)
	if queues == nil {
		queues = []string{}
	}
	return agentJSON{ID: a.ID, Name: a.Name, Email: a.Email, CapacityUnits: a.CapacityUnits, Skills: skills,
		Presence: a.ShownPresence, ChosenPresence: a.Presence, PresenceChangedAt: a.PresenceChangedAt, Queues: queues,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

// agentWithQueues is the agent's JSON with its queues.
func (s *Server) agentWithQueues(ctx context.Context, a store.Agent) (agentJSON, error) {
	queues, err := s.opts.Store.QueueIDsOfAgent(ctx, a.ID)
	if err != nil {
		return agentJSON{}, apierror.Internal(fmt.Errorf("queues of agent %s: %w", a.ID, err))
	}
	return toAgentJSON(a, queues), nil
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
	return c.JSON(http.StatusCreated, map[string]any{"agent": toAgentJSON(a, nil), "api_key": toAPIKeyJSON(k), "secret": secret})
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
	ctx := c.Request().Context()
	list, err := s.opts.Store.ListAgents(ctx)
	if err != nil {
		return storeError(err, "agents", "")
	}
	// Memberships from the queues (in their order): one read, not one per agent.
	queues, err := s.opts.Store.ListQueues(ctx)
	if err != nil {
		return storeError(err, "queues", "")
	}
	byAgent := map[string][]string{}
	for _, q := range queues {
		for _, id := range q.AgentIDs {
			byAgent[id] = append(byAgent[id], q.ID)
		}
	}
	out := make([]agentJSON, 0, len(list))
	for _, a := range list {
		out = append(out, toAgentJSON(a, byAgent[a.ID]))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getAgent(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := s.opts.Store.GetAgent(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "agent", c.Param("id"))
	}
	out, err := s.agentWithQueues(ctx, a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

type updateAgentRequest struct {
	Name          *string   `json:"name"`
	CapacityUnits *int      `json:"capacity_units"`
	Skills        *[]string `json:"skills"`
}

// updateAgent changes an agent's name, capacity or skills. A capacity
// change triggers distribution (Options.OnAgentChanged).
func (s *Server) updateAgent(c echo.Context) error {
	ctx := c.Request().Context()
	var req updateAgentRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Name != nil {
		if err := required("name", *req.Name, store.MaxAgentNameLength); err != nil {
			return err
		}
	}
	a, err := s.opts.Store.UpdateAgent(ctx, c.Param("id"), store.AgentUpdate{Name: req.Name, CapacityUnits: req.CapacityUnits, Skills: req.Skills})
	if err != nil {
		return configError(err, "agent", c.Param("id"))
	}
	s.log.InfoContext(ctx, "agent updated", "agent", a.ID)
	if req.CapacityUnits != nil {
		if err := s.agentChanged(ctx, a.ID, "capacity"); err != nil {
			return err
		}
	}
	out, err := s.agentWithQueues(ctx, a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

type presenceRequest struct {
	Presence *string `json:"presence"`
}

// setPresence sets the presence the agent chose (the agent itself, or an
// admin) and triggers distribution (Options.OnAgentChanged).
func (s *Server) setPresence(c echo.Context) error {
	ctx := c.Request().Context()
	var req presenceRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Presence == nil {
		return apierror.InvalidField("presence", "is required: one of %s", strings.Join(routing.ChoosablePresences(), ", "))
	}
	a, err := s.opts.Store.SetPresence(ctx, c.Param("id"), *req.Presence)
	if err != nil {
		return configError(err, "agent", c.Param("id"))
	}
	s.log.InfoContext(ctx, "agent presence set", "agent", a.ID, "chosen", a.Presence, "shown", a.ShownPresence, "by", PrincipalFrom(c).Role)
	if err := s.agentChanged(ctx, a.ID, "presence"); err != nil {
		return err
	}
	out, err := s.agentWithQueues(ctx, a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
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
