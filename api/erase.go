package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"

	"parley/apierror"
	"parley/blobs"
	"parley/store"
	"parley/workflows"
)

// erasedJSON says what erasing a customer removed. Counts and timestamps
// stay for reports; names, texts, payloads and files are gone.
type erasedJSON struct {
	Page               string   `json:"page"`
	PSID               string   `json:"psid"`
	Conversations      []string `json:"conversations"`
	EndedRunning       bool     `json:"ended_running_conversation"`
	MessagesEmptied    int64    `json:"messages_emptied"`
	AttachmentsRemoved int64    `json:"attachments_removed"`
	FilesDeleted       int      `json:"files_deleted"`
	LiveEventsRemoved  int64    `json:"live_events_removed"`
	ProfileRemoved     bool     `json:"profile_removed"`
	TemporalKeysErased int      `json:"temporal_keys_erased"`
}

// eraseCustomer serves POST /pages/{id}/customers/{psid}/erase, for a
// customer linked to no contact (one with a contact is erased with it).
func (s *Server) eraseCustomer(c echo.Context) error {
	ctx := c.Request().Context()
	page, err := s.opts.Store.GetPage(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	psid := c.Param("psid")
	if ct, linked, err := s.opts.Store.ContactOfCustomer(ctx, page.ID, psid); err != nil {
		return apierror.Internal(err)
	} else if linked {
		return apierror.New(http.StatusConflict, "conflict",
			"customer %s of page %s is linked to contact %s: erase the contact (DELETE /api/v1/contacts/%s?erase=true), which erases its customers", psid, page.ID, ct.ID, ct.ID)
	}
	out, err := s.erase(ctx, page.ID, page.PageID, psid)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// eraseContact erases a contact and every customer linked to it.
func (s *Server) eraseContact(c echo.Context, id string) error {
	ctx := c.Request().Context()
	if _, err := s.opts.Store.GetContact(ctx, id); err != nil {
		return storeError(err, "contact", id)
	}
	customers, err := s.opts.Store.LinkedCustomers(ctx, id)
	if err != nil {
		return apierror.Internal(err)
	}
	erased := []erasedJSON{}
	for _, cu := range customers {
		page, err := s.opts.Store.GetPage(ctx, cu.PageRef)
		if err != nil {
			return storeError(err, "page", cu.PageRef)
		}
		out, err := s.erase(ctx, page.ID, page.PageID, cu.PSID)
		if err != nil {
			return err
		}
		erased = append(erased, out)
	}
	if err := s.opts.Store.EraseContact(ctx, id); err != nil {
		return storeError(err, "contact", id)
	}
	s.log.InfoContext(ctx, "contact erased", "contact", id, "customers", len(erased))
	return c.JSON(http.StatusOK, map[string]any{"contact": id, "customers": erased})
}

// erase removes a customer from Parley: the running conversation ends
// (terminated: its history cannot be read once the key is gone), the
// database forgets names, texts, payloads and files, and the customer's
// Temporal data key is erased, leaving every history of the customer
// unreadable. Each step is idempotent: a failed erase is retried whole.
func (s *Server) erase(ctx context.Context, pageRef, facebookPageID, psid string) (erasedJSON, error) {
	out := erasedJSON{Page: pageRef, PSID: psid}
	if s.opts.Codec == nil || s.opts.Blobs == nil {
		return out, apierror.New(http.StatusServiceUnavailable, "unavailable", "erasing needs the Temporal codec and the blob store, which this Parley process lacks")
	}
	wid := workflows.ConversationWorkflowID(facebookPageID, psid)
	// The reason is in clear in Temporal: no personal data in it.
	err := s.opts.Temporal.TerminateWorkflow(ctx, wid, "", "customer erased on request")
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		out.EndedRunning = true
	case errors.As(err, &notFound):
	default:
		return out, apierror.New(http.StatusServiceUnavailable, "unavailable", "could not end the customer's conversation in Temporal (nothing erased; retry): %v", err)
	}
	now := s.opts.Now()
	data, err := s.opts.Store.EraseCustomerData(ctx, pageRef, facebookPageID, psid, now)
	if err != nil {
		return out, apierror.Internal(err)
	}
	out.Conversations, out.MessagesEmptied, out.AttachmentsRemoved = data.Conversations, data.Messages, data.Attachments
	out.LiveEventsRemoved, out.ProfileRemoved = data.Events, data.Profile
	freed := false
	for _, id := range data.Conversations {
		r, err := s.opts.Store.ReleaseConversation(ctx, id, now)
		if err != nil {
			return out, apierror.Internal(fmt.Errorf("release conversation %s: %w", id, err))
		}
		freed = freed || r.AgentID != ""
	}
	for _, e := range data.Ended {
		// The agent's and supervisors' screens learn it is over.
		ev := store.NewEvent{Type: store.EventConversationState, AgentID: e.AgentID, ConversationID: e.ConversationID,
			Data:      map[string]any{"conversation_id": e.ConversationID, "state": "closed", "agent_id": e.AgentID, "closed_reason": store.ClosedErased},
			DedupeKey: "erased/" + e.ConversationID}
		if err := s.opts.Store.AppendEvents(ctx, ev); err != nil {
			return out, apierror.Internal(err)
		}
	}
	if out.FilesDeleted, err = s.opts.Blobs.DeletePrefix(ctx, blobs.CustomerPrefix(facebookPageID, psid)); err != nil {
		return out, apierror.Internal(err)
	}
	keys, err := s.opts.Codec.EraseCustomer(ctx, facebookPageID, psid)
	if err != nil {
		return out, apierror.Internal(err)
	}
	out.TemporalKeysErased = len(keys)
	if freed && s.opts.OnAgentChanged != nil {
		if err := s.opts.OnAgentChanged(ctx, ""); err != nil {
			s.log.WarnContext(ctx, "distribution not woken after an erase", "err", err)
		}
	}
	// Logged without the PSID: the log outlives the erase.
	s.log.InfoContext(ctx, "customer erased", "page", pageRef, "conversations", len(out.Conversations),
		"messages", out.MessagesEmptied, "files", out.FilesDeleted, "keys", out.TemporalKeysErased)
	return out, nil
}
