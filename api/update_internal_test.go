package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"parley/apierror"
	"parley/store"
	"parley/workflows"
)

// updateClient answers UpdateWorkflow as a Temporal server would in the
// cases below: the embedded nil Client panics on anything else.
type updateClient struct {
	client.Client
	acceptErr error // UpdateWorkflow's error (nil: accepted)
	getErr    error // the accepted update's outcome
}

func (u updateClient) UpdateWorkflow(ctx context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	if u.acceptErr != nil {
		return nil, u.acceptErr
	}
	return updateHandle{err: u.getErr}, nil
}

type updateHandle struct{ err error }

func (updateHandle) WorkflowID() string               { return "w" }
func (updateHandle) RunID() string                    { return "r" }
func (updateHandle) UpdateID() string                 { return "u" }
func (h updateHandle) Get(context.Context, any) error { return h.err }

// The server holds the request's deadline too and may reset the stream a
// moment before the client's own timer fires: an accepted reply then still
// answers 202 in_progress (it goes on), never 503 "retry" (a retry would
// send it twice). Not accepted, or refused, it answers as before.
func TestUpdateAnswersByStageNotByWhoseTimerFiredFirst(t *testing.T) {
	reset := client.NewWorkflowUpdateServiceTimeoutOrCanceledError(status.Error(codes.Canceled, "stream terminated by RST_STREAM with error code: CANCEL"))
	refused := temporal.NewApplicationErrorWithOptions("the conversation is closed", workflows.RefusedErrorType, temporal.ApplicationErrorOptions{NonRetryable: true})
	for _, tc := range []struct {
		name       string
		c          updateClient
		cancelReq  bool
		wantStatus int
		wantCode   string
	}{
		{"accepted, then the server resets the stream", updateClient{getErr: reset}, false, http.StatusAccepted, "in_progress"},
		{"accepted, then Temporal unreachable", updateClient{getErr: serviceerror.NewUnavailable("connection refused")}, false, http.StatusAccepted, "in_progress"},
		{"accepted, then refused", updateClient{getErr: refused}, false, http.StatusConflict, "refused"},
		{"never accepted", updateClient{acceptErr: reset}, false, http.StatusServiceUnavailable, "temporal_unavailable"},
		{"accepted, the agent went away", updateClient{getErr: reset}, true, http.StatusServiceUnavailable, "temporal_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{opts: Options{Temporal: tc.c, UpdateWait: time.Minute}}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancelReq {
				cancel()
			}
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/conversations/c/messages", nil)
			c := echo.New().NewContext(req, httptest.NewRecorder())
			err := s.update(c, store.Conversation{WorkflowID: "w"}, workflows.UpdateSendReply, workflows.ReplyRequest{}, nil)
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Status != tc.wantStatus || ae.Code != tc.wantCode {
				t.Fatalf("update: %v, want %d %s", err, tc.wantStatus, tc.wantCode)
			}
		})
	}
}
