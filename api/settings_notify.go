package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.temporal.io/api/serviceerror"

	"parley/store"
	"parley/workflows"
)

// settingsChanged tells every live conversation of a page that its
// workstream's settings changed, so that a shortened auto-close applies now
// rather than at the conversation's next event. A conversation that cannot
// be told (Temporal unavailable) still reads the settings at its next event
// or deadline; the count of those is logged.
func (s *Server) settingsChanged(ctx context.Context, pageRef string) {
	var told, failed atomic.Int64
	var wg sync.WaitGroup
	slots := make(chan struct{}, 16)
	for _, state := range []string{workflows.StateOpen, workflows.StateActive, workflows.StateWaiting, workflows.StateWrapUp} {
		cursor := ""
		for {
			list, next, err := s.opts.Store.ListConversations(ctx, store.ConversationFilter{PageRef: pageRef, State: state, Limit: 200, Cursor: cursor})
			if err != nil {
				s.log.ErrorContext(ctx, "settings changed: list the page's conversations", "page", pageRef, "state", state, "err", err)
				break
			}
			for _, cv := range list {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() { <-slots }()
					err := s.opts.Temporal.SignalWorkflow(ctx, cv.WorkflowID, "", workflows.SignalSettingsChanged, nil)
					var nf *serviceerror.NotFound
					switch {
					case err == nil:
						told.Add(1)
					case errors.As(err, &nf):
						// Ended meanwhile: nothing to tell.
					default:
						failed.Add(1)
						s.log.WarnContext(ctx, "settings changed: conversation not told; it reads them at its next event",
							"conversation", cv.ID, "err", fmt.Errorf("signal %s: %w", cv.WorkflowID, err))
					}
				})
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	wg.Wait()
	s.log.InfoContext(ctx, "settings changed: conversations told", "page", pageRef, "told", told.Load(), "failed", failed.Load())
}
