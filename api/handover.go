package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/activities"
	"parley/workflows"
)

// registerHandover adds thread control (the handover protocol, issue 10):
// the assigned agent, supervisors and admins take the Messenger thread
// back from another app (the Page Inbox, a bot) or pass it to one.
func (s *Server) registerHandover(v1 *echo.Group) {
	closers := requireRole(RoleAdmin, RoleSupervisor, RoleAgent)
	v1.POST("/conversations/:id/take-control", s.takeControl, closers)
	v1.POST("/conversations/:id/pass-control", s.passControl, closers)
}

type passControlRequest struct {
	// TargetAppID is the app to give the thread to; the Page Inbox
	// (263902037430900) when empty.
	TargetAppID string `json:"target_app_id"`
}

type threadControlJSON struct {
	ConversationID string    `json:"conversation_id"`
	ThreadOwner    string    `json:"thread_owner"` // "parley" or the app's id
	Since          time.Time `json:"since,omitzero"`
}

func (s *Server) takeControl(c echo.Context) error {
	return s.threadControl(c, workflows.ThreadControlRequest{Take: true})
}

func (s *Server) passControl(c echo.Context) error {
	var req passControlRequest
	if c.Request().ContentLength != 0 {
		if err := decode(c, &req); err != nil {
			return err
		}
	}
	if req.TargetAppID != "" {
		if err := digits("target_app_id", req.TargetAppID); err != nil {
			return err
		}
	}
	return s.threadControl(c, workflows.ThreadControlRequest{TargetAppID: req.TargetAppID})
}

func (s *Server) threadControl(c echo.Context, r workflows.ThreadControlRequest) error {
	cv, err := s.conversation(c)
	if err != nil {
		return err
	}
	r.ConversationID, r.ActorAgentID = cv.ID, actor(c)
	var res workflows.ThreadControlResult
	if err := s.update(c, cv, workflows.UpdateThreadControl, r, &res); err != nil {
		return err
	}
	owner := activities.ThreadOwnerName(res.ThreadOwner)
	s.log.InfoContext(c.Request().Context(), "thread control", "conversation", cv.ID, "take", r.Take, "thread_owner", owner)
	return c.JSON(http.StatusOK, threadControlJSON{ConversationID: cv.ID, ThreadOwner: owner, Since: res.Since})
}
