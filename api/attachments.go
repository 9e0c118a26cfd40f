package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/blobs"
	"parley/store"
)

// attachmentJSON is an attachment as agents see it: a kept file has a
// Parley URL (authorised like its conversation) that outlives Meta's link.
type attachmentJSON struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	URL         string `json:"url,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
	Filename    string `json:"filename,omitempty"`
	Title       string `json:"title,omitempty"`
	StickerID   int64  `json:"sticker_id,omitempty"`
	Note        string `json:"note,omitempty"`
}

// messageFiles renders the attachments of a page of messages (one query).
func (s *Server) messageFiles(ctx context.Context, conversationID string, list []store.Message) (map[string]json.RawMessage, error) {
	ids := make([]string, 0, len(list))
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	byMsg, err := s.opts.Store.MessageAttachments(ctx, conversationID, ids)
	if err != nil {
		return nil, apierror.Internal(err)
	}
	out := make(map[string]json.RawMessage, len(byMsg))
	for id, as := range byMsg {
		js := make([]attachmentJSON, 0, len(as))
		for _, a := range as {
			j := attachmentJSON{ID: a.ID, Type: a.Type, Status: a.Status, ContentType: a.ContentType, Size: a.Size,
				Filename: a.Filename, Title: a.Title, StickerID: a.StickerID, Note: a.Note}
			if a.Status == store.AttachmentKept {
				j.URL = s.opts.PublicURL + "/api/v1/conversations/" + conversationID + "/attachments/" + a.ID
			}
			js = append(js, j)
		}
		b, err := json.Marshal(js)
		if err != nil {
			return nil, apierror.Internal(fmt.Errorf("encode attachments: %w", err))
		}
		out[id] = b
	}
	return out, nil
}

// getAttachment serves a kept file to whoever may read its conversation.
func (s *Server) getAttachment(c echo.Context) error {
	ctx := c.Request().Context()
	cv, err := s.readableConversation(c)
	if err != nil {
		return err
	}
	a, err := s.opts.Store.GetAttachment(ctx, c.Param("attachment_id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.ConversationID != cv.ID) {
		return apierror.NotFound("attachment", c.Param("attachment_id"))
	}
	if err != nil {
		return apierror.Internal(err)
	}
	if a.Status != store.AttachmentKept {
		return apierror.New(http.StatusNotFound, "not_kept", "attachment %s has no file in Parley (%s): %s", a.ID, a.Status, a.Note)
	}
	if s.opts.Blobs == nil {
		return apierror.New(http.StatusServiceUnavailable, "no_blob_store", "this Parley has no blob store configured")
	}
	r, err := s.opts.Blobs.Get(ctx, a.BlobKey)
	if errors.Is(err, blobs.ErrNotFound) {
		return apierror.New(http.StatusNotFound, "not_kept", "attachment %s: its file is gone from the blob store", a.ID)
	}
	if err != nil {
		return apierror.Internal(err)
	}
	defer r.Close()
	h := c.Response().Header()
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set(echo.HeaderContentType, ct)
	h.Set(echo.HeaderContentLength, strconv.FormatInt(r.Size, 10))
	// Files from customers are never rendered as Parley's own pages.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("Cache-Control", "private, max-age=300")
	name := a.Filename
	if name == "" {
		name = a.ID
	}
	h.Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": name}))
	c.Response().WriteHeader(http.StatusOK)
	if _, err := io.Copy(c.Response(), r); err != nil {
		s.log.WarnContext(ctx, "attachment download cut", "attachment_id", a.ID, "err", err)
	}
	return nil
}
