package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"parley/apierror"
	"parley/messenger"
	"parley/store"
	"parley/workflows"
)

// DefaultUpdateWait bounds how long a request waits for the workflow to
// finish an update (Options.UpdateWait): a reply throttled by Meta can take
// longer, and then finishes in the background.
const DefaultUpdateWait = 60 * time.Second

// update runs a workflow update on the conversation and decodes its result.
// The Idempotency-Key header, when given, makes a retried request the same
// update: a reply is never sent twice because a client retried.
//
// It waits in two steps, so that a slow update and an unreachable Temporal
// answer differently: first until the workflow accepted the update (not
// within the wait: 503, nothing was taken in), then until it finished (not
// within the wait: 202, it goes on and its outcome shows in the
// conversation).
func (s *Server) update(c echo.Context, cv store.Conversation, name string, arg, out any) error {
	wait := s.opts.UpdateWait
	if wait <= 0 {
		wait = DefaultUpdateWait
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), wait)
	defer cancel()
	h, err := s.opts.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   cv.WorkflowID,
		UpdateID:     c.Request().Header.Get("Idempotency-Key"),
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	accepted := err == nil
	if accepted {
		err = h.Get(ctx, out)
	}
	if err == nil {
		return nil
	}
	if reason, ok := workflows.IsRefused(err); ok {
		return apierror.New(http.StatusConflict, "refused", "%s", reason)
	}
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return apierror.New(http.StatusConflict, "refused", "the conversation is closed")
	case accepted && c.Request().Context().Err() == nil && waitEnded(ctx, err):
		return &apierror.Error{Status: http.StatusAccepted, Code: "in_progress",
			Message: "still in progress (Meta is slow or throttling); read the conversation's messages for the outcome", Err: err}
	}
	return &apierror.Error{Status: http.StatusServiceUnavailable, Code: "temporal_unavailable", Message: "the conversation could not be reached; retry later", Err: err}
}

// waitEnded tells whether the wait for an accepted update ended before its
// outcome: our deadline passed, or the server, which holds the same deadline,
// reset the stream a moment before our timer fired (RST_STREAM CANCEL, with
// ctx.Err() still nil), or the connection dropped. Either way the update is
// durable and goes on.
func waitEnded(ctx context.Context, err error) bool {
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var canceled *serviceerror.Canceled
	return ctx.Err() != nil || errors.As(err, &timeout) || errors.As(err, &unavailable) ||
		errors.As(err, &deadline) || errors.As(err, &canceled)
}

// actor is the agent acting, or "" for an administrator or supervisor.
func actor(c echo.Context) string {
	if p := PrincipalFrom(c); p.Role == RoleAgent {
		return p.AgentID
	}
	return ""
}

type assignRequest struct {
	AgentID string `json:"agent_id"`
	// Force lets a supervisor or an admin exceed the agent's capacity.
	Force bool `json:"force"`
}

func (s *Server) assignConversation(c echo.Context) error {
	cv, err := s.conversation(c)
	if err != nil {
		return err
	}
	var req assignRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("agent_id", req.AgentID, 100); err != nil {
		return err
	}
	if _, err := s.opts.Store.GetAgent(c.Request().Context(), req.AgentID); errors.Is(err, store.ErrNotFound) {
		return apierror.InvalidField("agent_id", "no agent %q", req.AgentID)
	} else if err != nil {
		return apierror.Internal(fmt.Errorf("agent %s: %w", req.AgentID, err))
	}
	var res workflows.TransitionResult
	if err := s.update(c, cv, workflows.UpdateAssign, workflows.AssignRequest{ConversationID: cv.ID, AgentID: req.AgentID, Force: req.Force}, &res); err != nil {
		return err
	}
	return s.afterTransition(c, cv.ID)
}

func (s *Server) setWaiting(c echo.Context) error {
	return s.transition(c, workflows.UpdateSetWaiting)
}

func (s *Server) endConversation(c echo.Context) error {
	return s.transition(c, workflows.UpdateEnd)
}

func (s *Server) closeConversation(c echo.Context) error {
	return s.transition(c, workflows.UpdateClose)
}

func (s *Server) transition(c echo.Context, name string) error {
	cv, err := s.conversation(c)
	if err != nil {
		return err
	}
	req := workflows.ActionRequest{ConversationID: cv.ID, ActorAgentID: actor(c)}
	if name == workflows.UpdateClose && PrincipalFrom(c).Role == RoleSupervisor {
		// Without a reason the workflow would say "an administrator".
		req.Reason = "closed by a supervisor"
	}
	var res workflows.TransitionResult
	if err := s.update(c, cv, name, req, &res); err != nil {
		return err
	}
	return s.afterTransition(c, cv.ID)
}

// afterTransition answers with the conversation as now saved.
func (s *Server) afterTransition(c echo.Context, id string) error {
	cv, err := s.opts.Store.GetConversation(c.Request().Context(), id)
	if err != nil {
		return storeError(err, "conversation", id)
	}
	return s.conversationResponse(c, cv)
}

type replyRequest struct {
	Text       string `json:"text"`
	Attachment *struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"attachment"`
}

// sendReply sends an agent's reply: JSON text, a file by URL (which Parley
// downloads and sends by upload), or multipart/form-data with the file as
// the "attachment" part. The workflow's validator refuses, with a 409 and
// the reason, whatever Meta would refuse.
func (s *Server) sendReply(c echo.Context) error {
	if isMultipart(c.Request()) {
		return s.replyWithUpload(c, "attachment")
	}
	cv, err := s.conversation(c)
	if err != nil {
		return err
	}
	var req replyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	switch {
	case req.Text == "" && req.Attachment == nil:
		return apierror.InvalidField("text", "a reply needs text or an attachment")
	case req.Text != "" && req.Attachment != nil:
		return apierror.InvalidField("attachment", "send text and an attachment as two replies")
	case messenger.TextLength(req.Text) > workflows.MaxReplyLength:
		return apierror.InvalidField("text", "must be at most %d characters (UTF-16 units, as Meta counts: an emoji counts 2)", workflows.MaxReplyLength)
	}
	if a := req.Attachment; a != nil {
		if a.Type != "" && !validAttachmentType(a.Type) {
			return apierror.InvalidField("attachment.type", "must be image, audio, video or file")
		}
		if err := required("attachment.url", a.URL, 2000); err != nil {
			return err
		}
		return s.replyWithURL(c, cv, a.Type, a.URL)
	}
	r := workflows.ReplyRequest{ConversationID: cv.ID, AgentID: PrincipalFrom(c).AgentID, Text: req.Text}
	// The workstream's settings as they are now: a tag switched on
	// mid-conversation applies to this reply.
	w, err := s.workstream(c.Request().Context(), cv.PageRef)
	if err != nil {
		return err
	}
	r.HumanAgentTag, r.AgentAttachments = w.HumanAgentTag, w.AgentAttachments
	var res workflows.ReplyResult
	if err := s.update(c, cv, workflows.UpdateSendReply, r, &res); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"data": res.Messages})
}
