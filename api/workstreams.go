package api

import "github.com/labstack/echo/v4"

// registerWorkstreams mounts /api/v1/workstreams (being written).
func (s *Server) registerWorkstreams(v1 *echo.Group) {}
