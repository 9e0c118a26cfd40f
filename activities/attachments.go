package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"parley/blobs"
	"parley/messenger"
	"parley/store"
)

// KeepAttachmentsName downloads what customers send into the blob store.
const KeepAttachmentsName = "KeepAttachments"

// MaxInboundFile is Meta's limit for a file (25 MB): nothing larger is
// downloaded.
const MaxInboundFile = 25 << 20

// KeepAttachmentsAttempts is how many times a download is tried before the
// attachment is marked failed (the workflow's retry policy uses it).
const KeepAttachmentsAttempts = 5

// InboundAttachment is one attachment of a customer's message as Parley
// records it. File is whether there is a file to download.
type InboundAttachment struct {
	Position  int    `json:"position"`
	Type      string `json:"type"`
	URL       string `json:"url,omitempty"`
	StickerID int64  `json:"sticker_id,omitempty"`
	Title     string `json:"title,omitempty"`
	File      bool   `json:"file"`
}

// fileTypes are the attachment types that are files Parley keeps.
var fileTypes = map[string]bool{"image": true, "audio": true, "video": true, "file": true, "sticker": true}

// InboundAttachments lists an event's attachments as recorded: a sticker's
// duplicate image (Meta sent one next to each sticker until Aug 2026) once,
// an image that carries a sticker id (the thumbs-up) as a sticker, and
// fallbacks, shares and locations as what they are (no file). Pure: the
// workflow calls it too.
func InboundAttachments(e messenger.Event) []InboundAttachment {
	var out []InboundAttachment
	stickers := map[int64]bool{}
	urls := map[string]bool{}
	for _, a := range e.Attachments {
		if a.Type == "sticker" && a.StickerID != 0 {
			stickers[a.StickerID] = true
		}
	}
	for _, a := range e.Attachments {
		t := a.Type
		if t == "image" && a.StickerID != 0 {
			if stickers[a.StickerID] {
				continue // the sticker's duplicate image
			}
			t = "sticker"
		}
		if a.URL != "" && urls[a.URL] {
			continue
		}
		if a.URL != "" {
			urls[a.URL] = true
		}
		out = append(out, InboundAttachment{
			Position: len(out), Type: t, URL: a.URL, StickerID: a.StickerID, Title: a.Title,
			File: fileTypes[t] && a.URL != "",
		})
	}
	return out
}

// attachmentNamespace makes attachment ids a pure function of (message,
// position), so retries write the same rows.
var attachmentNamespace = uuid.MustParse("3e0c7c52-52a2-4c8e-9d3c-1b7f3c0b9a41")

// AttachmentID is the id of a message's attachment at position.
func AttachmentID(messageID string, position int) string {
	return uuid.NewSHA1(attachmentNamespace, fmt.Appendf(nil, "%s/%d", messageID, position)).String()
}

// inboundRows are the attachment rows of a customer's message.
func inboundRows(in RecordTranscriptInput, messageID string, atts []InboundAttachment, allowed bool) []store.Attachment {
	rows := make([]store.Attachment, 0, len(atts))
	for _, a := range atts {
		r := store.Attachment{
			ID: AttachmentID(messageID, a.Position), MessageID: messageID, ConversationID: in.ConversationID,
			FacebookPageID: in.FacebookPageID, PSID: in.PSID, Position: a.Position, Direction: store.DirectionIn,
			Type: a.Type, Title: a.Title, StickerID: a.StickerID, Status: store.AttachmentShown,
		}
		switch {
		case !allowed:
			r.Status, r.Title = store.AttachmentRefused, ""
			r.Note = "the customer sent " + article(a.Type) + "; this workstream does not accept files from customers, so it was not kept"
		case a.File:
			r.Status = store.AttachmentPending
		case fileTypes[a.Type]:
			r.Status, r.Note = store.AttachmentFailed, "Meta sent no link to the file"
		}
		rows = append(rows, r)
	}
	return rows
}

// articles name what a customer sent, for notes agents read.
var articles = map[string]string{"image": "an image", "audio": "an audio message", "video": "a video",
	"file": "a file", "sticker": "a sticker", "location": "a location"}

func article(t string) string {
	if a, ok := articles[t]; ok {
		return a
	}
	return "an attachment (" + t + ")"
}

// stripAttachmentURLs removes Meta's file URLs from a raw event: they
// expire, and a customer's files live in Parley's blob store (or, when the
// workstream refuses them, nowhere).
func stripAttachmentURLs(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || !strings.Contains(string(raw), "attachments") {
		return raw, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("raw event: %w", err)
	}
	msg, _ := ev["message"].(map[string]any)
	atts, _ := msg["attachments"].([]any)
	if len(atts) == 0 {
		return raw, nil
	}
	for _, a := range atts {
		m, _ := a.(map[string]any)
		delete(m, "url")
		if p, ok := m["payload"].(map[string]any); ok {
			delete(p, "url")
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("raw event: %w", err)
	}
	return b, nil
}

// KeepAttachmentsInput names the files of one customer message to keep.
type KeepAttachmentsInput struct {
	ConversationID string        `json:"conversation_id"`
	FacebookPageID string        `json:"facebook_page_id"`
	PSID           string        `json:"psid"`
	Files          []FileToFetch `json:"files"`
}

// FileToFetch is one file on Meta's CDN.
type FileToFetch struct {
	AttachmentID string `json:"attachment_id"`
	Type         string `json:"type"`
	URL          string `json:"url"`
}

// KeepAttachments downloads each pending file from Meta's URL into the
// blob store (25 MB at most, its content type checked against the type
// Meta said). A file that cannot be kept for good (link expired, too
// large, wrong type) is marked failed with why; a temporary failure is
// retried, and marked failed on the last attempt. Attachments refused by
// the workstream, or already kept, are left alone.
func (a *Conversations) KeepAttachments(ctx context.Context, in KeepAttachmentsInput) error {
	if a.Blobs == nil {
		return temporal.NewNonRetryableApplicationError("no blob store configured", "NoBlobStore", nil)
	}
	last := activity.GetInfo(ctx).Attempt >= KeepAttachmentsAttempts
	var retry []string
	for _, f := range in.Files {
		att, err := a.Store.GetAttachment(ctx, f.AttachmentID)
		if errors.Is(err, store.ErrNotFound) {
			continue // a redelivered message: recorded once, under its first id
		}
		if err != nil {
			return err
		}
		if att.Status != store.AttachmentPending {
			continue
		}
		kept, permanent, err := a.fetch(ctx, att, f.URL)
		switch {
		case err == nil:
			ok, err := a.Store.KeepAttachment(ctx, att.ID, kept)
			if err != nil {
				return err
			}
			if !ok { // erased or kept meanwhile
				if err := a.Blobs.Delete(ctx, kept.BlobKey); err != nil {
					return err
				}
			}
		case permanent || last:
			a.log().Warn("customer attachment not kept", "conversation_id", in.ConversationID, "attachment_id", att.ID, "reason", err.Error())
			if err := a.Store.FailAttachment(ctx, att.ID, err.Error()); err != nil {
				return err
			}
		default:
			retry = append(retry, fmt.Sprintf("%s: %v", att.ID, err))
		}
	}
	if len(retry) > 0 {
		return fmt.Errorf("download attachments: %s", strings.Join(retry, "; "))
	}
	return nil
}

// fetch downloads one file into the blob store. permanent says a retry
// cannot help.
func (a *Conversations) fetch(ctx context.Context, att store.Attachment, rawURL string) (store.AttachmentKeptAs, bool, error) {
	var none store.AttachmentKeptAs
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return none, true, fmt.Errorf("Meta's link to the file is not a URL")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return none, false, fmt.Errorf("could not download the file from Meta: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return none, true, fmt.Errorf("Meta's link to the file no longer works (HTTP %d): it expired before Parley could keep it", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return none, false, fmt.Errorf("Meta answered HTTP %d for the file", resp.StatusCode)
	case resp.ContentLength > MaxInboundFile:
		return none, true, fmt.Errorf("the file is %.1f MB; Parley keeps files up to 25 MB", float64(resp.ContentLength)/(1<<20))
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = "application/octet-stream"
	}
	if !typeMatches(att.Type, mt) {
		return none, true, fmt.Errorf("Meta said %s but the file is %s: not kept", article(att.Type), mt)
	}
	key := blobs.CustomerPrefix(att.FacebookPageID, att.PSID) + "in/" + att.ID
	h := sha256.New()
	n, err := a.Blobs.Put(ctx, key, mt, io.TeeReader(resp.Body, h), MaxInboundFile)
	if errors.Is(err, blobs.ErrTooLarge) {
		return none, true, fmt.Errorf("the file is over 25 MB; Parley keeps files up to 25 MB")
	}
	if err != nil {
		return none, false, err
	}
	return store.AttachmentKeptAs{BlobKey: key, ContentType: mt, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Filename: filenameOf(rawURL)}, false, nil
}

// typeMatches checks the file's content type against Meta's attachment
// type: a page that says image must serve an image.
func typeMatches(metaType, contentType string) bool {
	switch metaType {
	case "image", "sticker":
		return strings.HasPrefix(contentType, "image/")
	case "audio":
		return strings.HasPrefix(contentType, "audio/") || contentType == "video/mp4" // voice notes come as mp4
	case "video":
		return strings.HasPrefix(contentType, "video/")
	}
	return contentType != "text/html" // a file: anything but an error page
}

// filenameOf is the last segment of Meta's URL path (Meta names files).
func filenameOf(rawURL string) string {
	p := rawURL
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return p[strings.LastIndex(p, "/")+1:]
}
