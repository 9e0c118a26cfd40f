package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

type apiKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	AgentID    string     `json:"agent_id,omitempty"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

func toAPIKeyJSON(k store.APIKey) apiKeyJSON {
	return apiKeyJSON{ID: k.ID, Name: k.Name, Role: k.Role, AgentID: k.AgentID, Prefix: k.Prefix, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt}
}

type createAPIKeyRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// createAPIKey issues admin and supervisor keys; agent keys are issued with
// their agent (a later issue).
func (s *Server) createAPIKey(c echo.Context) error {
	var req createAPIKeyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("name", req.Name, 200); err != nil {
		return err
	}
	if req.Role != RoleAdmin && req.Role != RoleSupervisor {
		return apierror.InvalidField("role", "must be %q or %q (agent keys are created with their agent)", RoleAdmin, RoleSupervisor)
	}
	k, secret, err := s.opts.Store.CreateAPIKey(c.Request().Context(), req.Name, req.Role, "")
	if err != nil {
		return storeError(err, "api key", req.Name)
	}
	s.log.InfoContext(c.Request().Context(), "api key created", "key", k.ID, "role", k.Role)
	return c.JSON(http.StatusCreated, map[string]any{"api_key": toAPIKeyJSON(k), "secret": secret})
}

func (s *Server) listAPIKeys(c echo.Context) error {
	list, err := s.opts.Store.ListAPIKeys(c.Request().Context())
	if err != nil {
		return storeError(err, "api keys", "")
	}
	out := make([]apiKeyJSON, 0, len(list))
	for _, k := range list {
		out = append(out, toAPIKeyJSON(k))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	if err := s.opts.Store.RevokeAPIKey(c.Request().Context(), c.Param("id")); err != nil {
		return storeError(err, "api key", c.Param("id"))
	}
	return c.NoContent(http.StatusNoContent)
}
