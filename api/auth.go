package api

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// Roles of API keys (who may do what: README, api/roles_test.go).
const (
	RoleAdmin      = "admin"
	RoleSupervisor = "supervisor"
	RoleAgent      = "agent"
)

// Principal is who made the request.
type Principal struct {
	KeyID   string
	Role    string
	AgentID string
}

const principalKey = "parley.principal"

// PrincipalFrom returns the authenticated caller.
func PrincipalFrom(c echo.Context) Principal {
	p, _ := c.Get(principalKey).(Principal)
	return p
}

// authenticate resolves the Bearer API key.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			return apierror.New(http.StatusUnauthorized, "unauthorized", "send an API key as Authorization: Bearer <key>")
		}
		secret = strings.TrimSpace(secret)
		if s.opts.AdminAPIKey != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.AdminAPIKey)) == 1 {
			c.Set(principalKey, Principal{KeyID: "bootstrap", Role: RoleAdmin})
			return next(c)
		}
		key, err := s.opts.Store.AuthenticateAPIKey(c.Request().Context(), secret)
		if errors.Is(err, store.ErrNotFound) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
			return apierror.New(http.StatusUnauthorized, "unauthorized", "unknown or revoked API key")
		}
		if err != nil {
			return apierror.Internal(fmt.Errorf("authenticate: %w", err))
		}
		c.Set(principalKey, Principal{KeyID: key.ID, Role: key.Role, AgentID: key.AgentID})
		return next(c)
	}
}

// requireRole lets only the given roles through.
func requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := PrincipalFrom(c)
			if !slices.Contains(roles, p.Role) {
				return apierror.New(http.StatusForbidden, "forbidden", "this route needs the %s role; the key has %q", strings.Join(roles, " or "), p.Role)
			}
			return next(c)
		}
	}
}

// agentsOwnAct lets only agents through: the assigned agent's own acts
// (replying, setting aside, ending) are refused to admins and supervisors with
// what they may do instead.
func agentsOwnAct(act string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p := PrincipalFrom(c); p.Role != RoleAgent {
				return apierror.New(http.StatusForbidden, "forbidden", "only the conversation's agent may %s; admins and supervisors may assign or close it", act)
			}
			return next(c)
		}
	}
}
