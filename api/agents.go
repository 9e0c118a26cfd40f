package api

import "github.com/labstack/echo/v4"

// registerAgents mounts /api/v1/agents (being written).
func (s *Server) registerAgents(v1 *echo.Group) {}
