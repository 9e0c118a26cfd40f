package fakemeta

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"time"
)

// maxUploadBytes is the Attachment Upload API's limit for one file (spec:
// "25 MB per file"), read as 25 MiB. Over it Meta answers 100/2018109.
const maxUploadBytes = 25 << 20

// Upload is one asset the Attachment Upload API accepted: a file (its
// size and SHA-256) or a URL (not fetched).
type Upload struct {
	AttachmentID string    `json:"attachment_id"`
	AppID        string    `json:"app_id"`
	PageID       string    `json:"page_id"`
	Type         string    `json:"type"`
	Reusable     bool      `json:"is_reusable"`
	URL          string    `json:"url,omitempty"`
	Filename     string    `json:"filename,omitempty"`
	ContentType  string    `json:"content_type,omitempty"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256,omitempty"` // hex, of the file's bytes
	At           time.Time `json:"at"`
}

// Uploads returns the assets the Attachment Upload API accepted for the
// page ("" for any), in order.
func (s *Server) Uploads(pageID string) []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Upload
	for _, u := range s.uploads {
		if pageID == "" || u.PageID == pageID {
			out = append(out, u)
		}
	}
	return out
}

// handleAttachmentUpload serves POST /{v}/{page-id}/message_attachments:
// message={"attachment":{"type","payload":{"url","is_reusable"}}} in a JSON
// body, or as a form field next to a "filedata" file part. The URL is not
// fetched. A file over 25 MB is refused with 100/2018109. It answers
// {"attachment_id":"<digits>"}, usable by the same page's sends, and
// records the upload (Uploads).
func (s *Server) handleAttachmentUpload(q *request, pathPage string) *response {
	return s.pageOp(q, pathPage, func(t token) *response {
		if len(q.body) >= maxRequestBody {
			// The fake read no further: the file is over any limit.
			return s.errorResponse(newGraphError(100, 2018109))
		}
		var raw json.RawMessage
		if q.isJSON() {
			var body struct {
				Message json.RawMessage `json:"message"`
			}
			if err := json.Unmarshal(q.body, &body); err != nil {
				return s.errorResponse(errParam("Invalid JSON in request body"))
			}
			raw = body.Message
		}
		if len(raw) == 0 {
			raw = json.RawMessage(q.param("message"))
		}
		if len(raw) == 0 {
			return s.errorResponse(errParam("The parameter message is required"))
		}
		var m sendMessage
		if err := json.Unmarshal(raw, &m); err != nil || m.Attachment == nil {
			return s.errorResponse(errParam("Param message[attachment] must be non-empty"))
		}
		if !attachmentTypes[m.Attachment.Type] {
			return s.errorResponse(errParam("Param message[attachment][type] must be one of {image, audio, video, file} - got %q", m.Attachment.Type))
		}
		file, err := fileData(q)
		if err != nil {
			return s.errorResponse(errParam("Param filedata could not be read: %v", err))
		}
		up := Upload{AppID: t.appID, PageID: t.pageID, Type: m.Attachment.Type}
		if p := m.Attachment.Payload; p != nil {
			up.URL, up.Reusable = p.URL, p.IsReusable
		}
		if up.URL != "" {
			file = nil // a URL wins over a file part, as before
		}
		switch {
		case up.URL != "" && !validHTTPURL(up.URL):
			return s.errorResponse(errParam("Param message[attachment][payload][url] must be a valid URL"))
		case up.URL == "" && file == nil:
			return s.errorResponse(errParam("Param message[attachment][payload][url] or a filedata file is required"))
		case file != nil && len(file.data) > maxUploadBytes:
			return s.errorResponse(newGraphError(100, 2018109))
		}
		u := up.URL
		if file != nil {
			sum := sha256.Sum256(file.data)
			up.Filename, up.ContentType, up.Size, up.SHA256 = file.name, file.contentType, int64(len(file.data)), hex.EncodeToString(sum[:])
			u = "upload:" + file.name
		}
		up.AttachmentID, up.At = randomDigits(16), s.now()
		s.mu.Lock()
		s.attachments[up.AttachmentID] = &attachment{pageID: t.pageID, typ: up.Type, url: u}
		s.uploads = append(s.uploads, up)
		s.mu.Unlock()
		s.log.Info("attachment uploaded", "page_id", t.pageID, "attachment_id", up.AttachmentID, "type", up.Type, "size", up.Size)
		return s.jsonResponse(orderedObject{{"attachment_id", up.AttachmentID}})
	})
}

// uploadedFile is the filedata part of a multipart upload.
type uploadedFile struct {
	name, contentType string
	data              []byte
}

// fileData reads the filedata file part of a multipart body (nil when
// there is none).
func fileData(q *request) (*uploadedFile, error) {
	mt, params, err := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, nil
	}
	mr := multipart.NewReader(bytes.NewReader(q.body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if p.FormName() != "filedata" || p.FileName() == "" {
			continue
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		return &uploadedFile{name: p.FileName(), contentType: p.Header.Get("Content-Type"), data: data}, nil
	}
}
