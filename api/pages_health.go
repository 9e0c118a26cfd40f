package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// pageUpdateRequest changes a page's own settings (issue 10): its silence
// threshold for the health check ("0s": the default).
type pageUpdateRequest struct {
	SilenceThreshold *string `json:"silence_threshold"`
}

func (s *Server) updatePage(c echo.Context) error {
	ctx := c.Request().Context()
	var req pageUpdateRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	p, err := s.opts.Store.GetPage(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	var d *time.Duration
	if err := setDuration(&d, "silence_threshold", req.SilenceThreshold); err != nil {
		return err
	}
	if d != nil {
		if p, err = s.opts.Store.SetPageSilenceAfter(ctx, p.ID, *d); err != nil {
			return configError(err, "page", p.ID)
		}
		s.log.InfoContext(ctx, "page silence threshold set", "page", p.ID, "silence_threshold", d.String())
	}
	return c.JSON(http.StatusOK, s.toPageJSON(p))
}
