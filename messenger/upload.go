package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// UploadTimeout bounds one upload (up to MaxAttachmentSize) when the
// client's own timeout is shorter: 25 MB take 20 s at 10 Mbit/s.
const UploadTimeout = 2 * time.Minute

// UploadFile is a file to upload: its bytes (Size of them; -1 when
// unknown), attachment type, media type and name.
type UploadFile struct {
	Type        string // image | audio | video | file
	ContentType string
	Filename    string
	Size        int64
	Body        io.Reader
}

// UploadAttachment uploads a file with the Attachment Upload API:
// POST /{version}/{page-id}/message_attachments as multipart/form-data,
// message={"attachment":{"type":...,"payload":{"is_reusable":true}}} and the
// bytes as the filedata part. It returns the reusable attachment_id (valid
// 90 days), which the page's sends use as payload.attachment_id. A file
// over MaxAttachmentSize or of an unknown type fails locally with
// ErrInvalidRequest; Meta's refusal is a *GraphError (100/2018109: too large).
func (c *Client) UploadAttachment(ctx context.Context, auth PageAuth, f UploadFile) (string, error) {
	if err := auth.check(); err != nil {
		return "", err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return "", err
	}
	switch {
	case !isAttachmentType(f.Type):
		return "", fmt.Errorf("%w: attachment type %q is not image, audio, video or file", ErrInvalidRequest, f.Type)
	case f.Body == nil:
		return "", fmt.Errorf("%w: no file to upload", ErrInvalidRequest)
	case f.Size > MaxAttachmentSize:
		return "", fmt.Errorf("%w: the file is %s; Messenger accepts files up to %s", ErrInvalidRequest, ByteSize(f.Size), MaxAttachmentSizeText)
	}
	head, tail, contentType, err := uploadEnvelope(f)
	if err != nil {
		return "", err
	}
	// The file streams between the envelope's two halves: 25 MB are never
	// held in memory.
	body := io.MultiReader(bytes.NewReader(head), f.Body, bytes.NewReader(tail))
	length := int64(-1)
	if f.Size >= 0 {
		length = int64(len(head)) + f.Size + int64(len(tail))
	}
	var w struct {
		AttachmentID flexString `json:"attachment_id"`
	}
	p := "/" + seg + "/message_attachments"
	if err := c.doBody(ctx, OpUploadAttachment, c.upload, http.MethodPost, p, auth.query(), body, length, contentType, auth.secrets(), &w); err != nil {
		return "", err
	}
	if w.AttachmentID == "" {
		return "", fmt.Errorf("messenger: POST %s: %w: no attachment_id", c.path(p), ErrUnexpectedResponse)
	}
	return string(w.AttachmentID), nil
}

func isAttachmentType(t string) bool { return slices.Contains(AttachmentTypes, t) }

// uploadEnvelope is the multipart body around the file's bytes: the
// message field and the filedata part's header, then the closing boundary.
func uploadEnvelope(f UploadFile) (head, tail []byte, contentType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	msg, err := json.Marshal(map[string]any{"attachment": map[string]any{"type": f.Type, "payload": map[string]any{"is_reusable": true}}})
	if err != nil {
		return nil, nil, "", fmt.Errorf("messenger: encode upload message: %w", err)
	}
	if err := mw.WriteField("message", string(msg)); err != nil {
		return nil, nil, "", fmt.Errorf("messenger: build upload: %w", err)
	}
	name := f.Filename
	if name == "" {
		name = "file"
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="filedata"; filename="%s"`, quoteEscaper.Replace(name)))
	h.Set("Content-Type", ct)
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", fmt.Errorf("messenger: build upload: %w", err)
	}
	head = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, nil, "", fmt.Errorf("messenger: build upload: %w", err)
	}
	return head, bytes.Clone(buf.Bytes()), mw.FormDataContentType(), nil
}

// quoteEscaper escapes a file name inside a quoted header parameter, as
// mime/multipart does; line breaks are dropped.
var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")
