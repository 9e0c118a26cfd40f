package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
	"parley/workflows"
)

// registerRouting mounts the routing acts on conversations and the queue
// listing agents pick from.
func (s *Server) registerRouting(v1 *echo.Group) {
	anyone := requireRole(RoleAdmin, RoleSupervisor, RoleAgent)
	v1.POST("/conversations/:id/accept", s.acceptOffer, agentsOwnAct("accept an offer"))
	v1.POST("/conversations/:id/reject", s.rejectOffer, agentsOwnAct("reject an offer"))
	v1.POST("/conversations/:id/pick", s.pickConversation, agentsOwnAct("pick a conversation"))
	v1.POST("/conversations/:id/transfer", s.transferConversation, anyone)
	v1.GET("/queues/:id/conversations", s.listQueuedConversations, anyone)
}

func (s *Server) acceptOffer(c echo.Context) error {
	return s.offerAct(c, workflows.UpdateAccept)
}

func (s *Server) rejectOffer(c echo.Context) error {
	return s.offerAct(c, workflows.UpdateReject)
}

func (s *Server) offerAct(c echo.Context, name string) error {
	cv, err := s.loadConversation(c)
	if err != nil {
		return err
	}
	req := workflows.OfferRequest{ConversationID: cv.ID, AgentID: PrincipalFrom(c).AgentID}
	var res workflows.TransitionResult
	if err := s.update(c, cv, name, req, &res); err != nil {
		return err
	}
	return s.afterTransition(c, cv.ID)
}

func (s *Server) pickConversation(c echo.Context) error {
	cv, err := s.loadConversation(c)
	if err != nil {
		return err
	}
	req := workflows.PickRequest{ConversationID: cv.ID, AgentID: PrincipalFrom(c).AgentID}
	var res workflows.TransitionResult
	if err := s.update(c, cv, workflows.UpdatePick, req, &res); err != nil {
		return err
	}
	return s.afterTransition(c, cv.ID)
}

type transferRequest struct {
	QueueID string `json:"queue_id"`
	AgentID string `json:"agent_id"`
	Note    string `json:"note"`
	Force   bool   `json:"force"`
}

// MaxNoteLength bounds a transfer note.
const MaxNoteLength = 2000

// transferConversation moves a conversation to a queue or an agent: its
// agent may, and so may supervisors and admins (who alone may force an
// agent's capacity).
func (s *Server) transferConversation(c echo.Context) error {
	ctx := c.Request().Context()
	cv, err := s.conversation(c) // an agent transfers its own conversations
	if err != nil {
		return err
	}
	var req transferRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	p := PrincipalFrom(c)
	switch {
	case (req.QueueID == "") == (req.AgentID == ""):
		return apierror.InvalidField("queue_id", "give queue_id or agent_id (one of them)")
	case len([]rune(req.Note)) > MaxNoteLength:
		return apierror.InvalidField("note", "must be at most %d characters", MaxNoteLength)
	case req.Force && p.Role == RoleAgent:
		return apierror.New(http.StatusForbidden, "forbidden", "only supervisors and admins may exceed an agent's capacity")
	}
	if req.QueueID != "" {
		if _, err := s.opts.Store.GetQueue(ctx, req.QueueID); errors.Is(err, store.ErrNotFound) {
			return apierror.InvalidField("queue_id", "no queue %q", req.QueueID)
		} else if err != nil {
			return apierror.Internal(fmt.Errorf("queue %s: %w", req.QueueID, err))
		}
	}
	if req.AgentID != "" {
		if _, err := s.opts.Store.GetAgent(ctx, req.AgentID); errors.Is(err, store.ErrNotFound) {
			return apierror.InvalidField("agent_id", "no agent %q", req.AgentID)
		} else if err != nil {
			return apierror.Internal(fmt.Errorf("agent %s: %w", req.AgentID, err))
		}
	}
	r := workflows.TransferRequest{ConversationID: cv.ID, ActorAgentID: actor(c), QueueID: req.QueueID,
		AgentID: req.AgentID, Note: req.Note, Force: req.Force}
	var res workflows.TransitionResult
	if err := s.update(c, cv, workflows.UpdateTransfer, r, &res); err != nil {
		return err
	}
	return s.afterTransition(c, cv.ID)
}

// loadConversation reads the conversation of the path, whoever asks:
// conversation and readableConversation check who may; the offer routes
// leave that to the workflow (the offer, the queue or the assignment).
func (s *Server) loadConversation(c echo.Context) (store.Conversation, error) {
	id := c.Param("id")
	cv, err := s.opts.Store.GetConversation(c.Request().Context(), id)
	if err != nil {
		return cv, storeError(err, "conversation", id)
	}
	return cv, nil
}

type queuedConversationJSON struct {
	ConversationID string    `json:"conversation_id"`
	Position       int       `json:"position"`
	Priority       int       `json:"priority"`
	WaitingSince   time.Time `json:"waiting_since"`
	EnqueuedAt     time.Time `json:"enqueued_at"`
	Mode           string    `json:"mode"`
	OfferedTo      string    `json:"offered_to,omitempty"`
	Note           string    `json:"note,omitempty"`
	Page           string    `json:"page"`
	PSID           string    `json:"psid"`
	MessageCount   int       `json:"message_count"`
}

// listQueuedConversations lists a queue's waiting conversations in the
// order they are served. Agents see the queues they belong to.
func (s *Server) listQueuedConversations(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if _, err := s.opts.Store.GetQueue(ctx, id); err != nil {
		return storeError(err, "queue", id)
	}
	if p := PrincipalFrom(c); p.Role == RoleAgent {
		mine, err := s.opts.Store.QueueIDsOfAgent(ctx, p.AgentID)
		if err != nil {
			return apierror.Internal(fmt.Errorf("queues of agent %s: %w", p.AgentID, err))
		}
		if !slices.Contains(mine, id) {
			return apierror.New(http.StatusForbidden, "forbidden", "agents see the queues they belong to; this agent is not in queue %s", id)
		}
	}
	items, err := s.opts.Store.QueuedConversations(ctx, id)
	if err != nil {
		return apierror.Internal(fmt.Errorf("queue %s: %w", id, err))
	}
	out := make([]queuedConversationJSON, 0, len(items))
	for _, it := range items {
		j := queuedConversationJSON{ConversationID: it.ConversationID, Position: it.Position, Priority: it.Priority,
			WaitingSince: it.WaitingSince, EnqueuedAt: it.EnqueuedAt, Mode: it.Mode, OfferedTo: it.OfferedTo, Note: it.Note}
		if cv, err := s.opts.Store.GetConversation(ctx, it.ConversationID); err == nil {
			j.Page, j.PSID, j.MessageCount = cv.PageRef, cv.PSID, cv.MessageCount
		} else if !errors.Is(err, store.ErrNotFound) {
			return apierror.Internal(fmt.Errorf("conversation %s: %w", it.ConversationID, err))
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}
