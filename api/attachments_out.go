package api

// Files agents send (issue 8, outbound): by upload (POST
// /api/v1/conversations/{id}/attachments, or an "attachment" part of a
// multipart reply) or by URL (a reply's attachment.url, which Parley
// downloads). Each file is checked against Meta's limits before anything is
// stored or sent (the workstream allows agent files: 409; size: 413; type:
// 415), kept in the blob store under the customer (erasing the customer
// deletes it), then sent by the workflow's reply update: the send uploads
// it to Meta once per page (attachment_id, cached) and sends it by id.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"parley/activities"
	"parley/apierror"
	"parley/blobs"
	"parley/messenger"
	"parley/store"
	"parley/workflows"
)

const (
	// maxUploadBody bounds an upload's body: the file and the form around
	// it. Past it the file is over Meta's limit anyway.
	maxUploadBody = messenger.MaxAttachmentSize + 1<<20
	// fetchTimeout bounds the download of an attachment URL.
	fetchTimeout = 60 * time.Second
	// maxFilename bounds a file's name, in bytes.
	maxFilename = 255
)

// uploadRoute is the route of file uploads.
const uploadRoute = "/api/v1/conversations/:id/attachments"

// ownBodyLimit: requests whose handler bounds the body itself (files up to
// Meta's limit), once it knows who sends it and that files are allowed.
func ownBodyLimit(c echo.Context) bool {
	switch c.Path() {
	case uploadRoute:
		return true
	case "/api/v1/conversations/:id/messages":
		return c.Request().Method == http.MethodPost && isMultipart(c.Request())
	}
	return false
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return err == nil && mt == "multipart/form-data"
}

// sendAttachment is POST /conversations/{id}/attachments: multipart/form-data
// with the file as "file" and, optionally, the attachment "type".
func (s *Server) sendAttachment(c echo.Context) error {
	return s.replyWithUpload(c, "file")
}

// agentFiles is the conversation's workstream once it is known to allow
// agents' files (else the workflow's own refusal, before any byte is read).
func (s *Server) agentFiles(ctx context.Context, cv store.Conversation) (store.Workstream, error) {
	w, err := s.workstream(ctx, cv.PageRef)
	if err != nil {
		return w, err
	}
	if !w.AgentAttachments {
		return w, apierror.New(http.StatusConflict, "refused", "%s", workflows.AgentAttachmentsOff)
	}
	return w, nil
}

// replyWithUpload sends the file of a multipart request (the part named
// field) as the agent's reply: authorised like a reply (the route lets
// agents only; s.conversation, the agent's own conversations only).
func (s *Server) replyWithUpload(c echo.Context, field string) error {
	cv, err := s.conversation(c)
	if err != nil {
		return err
	}
	w, err := s.agentFiles(c.Request().Context(), cv)
	if err != nil {
		return err
	}
	r := c.Request()
	if !isMultipart(r) {
		return apierror.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send the file as multipart/form-data, in a part named %q (got %q)", field, r.Header.Get(echo.HeaderContentType))
	}
	if r.ContentLength > maxUploadBody {
		return fileTooLarge("the upload is "+messenger.ByteSize(r.ContentLength), field)
	}
	// A 1 GB body is refused once maxUploadBody bytes are read.
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxUploadBody)
	in, err := s.readUpload(r, field)
	defer in.cleanup(s)
	if err != nil {
		return err
	}
	return s.sendFileReply(c, cv, w, in, field)
}

// incoming is a file being received: spooled to a temporary file (25 MB
// are not held in memory) while its size and SHA-256 are taken.
type incoming struct {
	tmp  *os.File
	size int64 // bytes read; at least this many when over
	// over: more than MaxAttachmentSize; known: size is the whole file
	// (false when the body limit cut it).
	over, known bool
	sum         string
	head        []byte // the first 512 bytes, to tell the type
	declared    string // the media type it came with
	filename    string
	want        string // the attachment type asked for ("" to choose)
}

func (in *incoming) cleanup(s *Server) {
	if in == nil || in.tmp == nil {
		return
	}
	name := in.tmp.Name()
	if err := errors.Join(in.tmp.Close(), os.Remove(name)); err != nil {
		s.log.Warn("remove spooled upload", "file", name, "err", err)
	}
}

// headWriter keeps the first 512 bytes written.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if n := 512 - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

// spool reads a file into in: up to MaxAttachmentSize bytes kept, then
// only counted, until the end or the body limit.
func spool(in *incoming, r io.Reader) error {
	tmp, err := os.CreateTemp("", "parley-upload-*")
	if err != nil {
		return apierror.Internal(fmt.Errorf("spool upload: %w", err))
	}
	in.tmp = tmp
	h := sha256.New()
	head := &headWriter{}
	n, err := io.Copy(io.MultiWriter(tmp, h, head), io.LimitReader(r, messenger.MaxAttachmentSize+1))
	in.size, in.head, in.sum, in.known = n, head.b, hex.EncodeToString(h.Sum(nil)), true
	if err == nil && n > messenger.MaxAttachmentSize {
		in.over = true
		var rest int64
		rest, err = io.Copy(io.Discard, r)
		in.size += rest
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		in.over, in.known = true, false
		return nil
	case err != nil:
		return apierror.New(http.StatusBadRequest, "bad_request", "could not read the file: %v", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return apierror.Internal(fmt.Errorf("rewind spooled upload: %w", err))
	}
	return nil
}

// readUpload reads a multipart body: the file in the part named field and
// the optional "type".
func (s *Server) readUpload(r *http.Request, field string) (*incoming, error) {
	in := &incoming{}
	mr, err := r.MultipartReader()
	if err != nil {
		return in, apierror.New(http.StatusBadRequest, "bad_request", "malformed multipart body: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return in, fileTooLarge(fmt.Sprintf("the upload is larger than %s", messenger.ByteSize(maxUploadBody)), field)
		}
		if err != nil {
			return in, apierror.New(http.StatusBadRequest, "bad_request", "malformed multipart body: %v", err)
		}
		switch name := p.FormName(); name {
		case field:
			if in.tmp != nil {
				return in, apierror.InvalidField(field, "one file per message")
			}
			in.declared, in.filename = p.Header.Get(echo.HeaderContentType), cleanFilename(p.FileName())
			if err := spool(in, p); err != nil {
				return in, err
			}
			if in.over && !in.known {
				// The body limit cut the file: the rest is not read.
				return in, nil
			}
		case "type":
			v, err := io.ReadAll(io.LimitReader(p, 32))
			if err != nil {
				return in, apierror.New(http.StatusBadRequest, "bad_request", "could not read the type field: %v", err)
			}
			in.want = strings.TrimSpace(string(v))
			if !validAttachmentType(in.want) {
				return in, apierror.InvalidField("type", "must be image, audio, video or file")
			}
		case "text":
			return in, apierror.InvalidField("text", "send the text and the attachment as two replies")
		default:
			return in, apierror.InvalidField(name, "unknown field")
		}
	}
	if in.tmp == nil {
		return in, apierror.InvalidField(field, "is required: the file, as a multipart part named %q", field)
	}
	return in, nil
}

func validAttachmentType(t string) bool {
	switch t {
	case messenger.AttachmentImage, messenger.AttachmentAudio, messenger.AttachmentVideo, messenger.AttachmentFile:
		return true
	}
	return false
}

// fileTooLarge is the 413 of a file over Meta's limit; what says how large
// it was.
func fileTooLarge(what, field string) error {
	return &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Field: field,
		Message: fmt.Sprintf("%s; Messenger accepts files up to %s (%d bytes)", what, messenger.MaxAttachmentSizeText, messenger.MaxAttachmentSize)}
}

// sendFileReply checks the file against Meta's limits, keeps it in the
// blob store and sends it as the agent's reply.
func (s *Server) sendFileReply(c echo.Context, cv store.Conversation, w store.Workstream, in *incoming, field string) error {
	switch {
	case in.over && in.known:
		return fileTooLarge("the file is "+messenger.ByteSize(in.size), field)
	case in.over && in.size > messenger.MaxAttachmentSize:
		return fileTooLarge("the file is at least "+messenger.ByteSize(in.size), field)
	case in.over:
		// The body limit came within the file, after other large fields.
		return fileTooLarge("the upload is larger than "+messenger.ByteSize(maxUploadBody), field)
	case in.size == 0:
		return apierror.InvalidField(field, "the file is empty")
	}
	kind, err := messenger.DetectFile(in.head, in.declared, in.filename, in.want)
	if err != nil {
		if messenger.IsFileTypeError(err) {
			return &apierror.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Field: field, Message: err.Error()}
		}
		return apierror.Internal(err)
	}
	if s.opts.Blobs == nil {
		return apierror.New(http.StatusServiceUnavailable, "unavailable", "Parley has no blob store: files cannot be sent")
	}
	// Under the customer, so that erasing the customer deletes it; named
	// by its hash, so that the same file is kept once.
	key := blobs.CustomerPrefix(cv.FacebookPageID, cv.PSID) + "out/" + in.sum
	ctx := c.Request().Context()
	if _, err := s.opts.Blobs.Put(ctx, key, kind.ContentType, in.tmp, messenger.MaxAttachmentSize); err != nil {
		return &apierror.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the file could not be stored; retry later", Err: err}
	}
	r := workflows.ReplyRequest{
		ConversationID: cv.ID, AgentID: PrincipalFrom(c).AgentID,
		File: &activities.OutFile{Type: kind.Type, BlobKey: key, SHA256: in.sum, ContentType: kind.ContentType, Filename: in.filename, Size: in.size},
		// The workstream's settings as they are now, as for a text reply.
		HumanAgentTag: w.HumanAgentTag, AgentAttachments: w.AgentAttachments,
	}
	var res workflows.ReplyResult
	if err := s.update(c, cv, workflows.UpdateSendReply, r, &res); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"data": res.Messages})
}

// replyWithURL downloads a file by URL (at most Meta's limit, within
// fetchTimeout) and sends it by upload, like an uploaded file: Meta never
// fetches the agent's URL.
func (s *Server) replyWithURL(c echo.Context, cv store.Conversation, typ, rawURL string) error {
	w, err := s.agentFiles(c.Request().Context(), cv)
	if err != nil {
		return err
	}
	in, err := s.fetchFile(c.Request().Context(), rawURL)
	defer in.cleanup(s)
	if err != nil {
		return err
	}
	in.want = typ
	return s.sendFileReply(c, cv, w, in, "attachment.url")
}

// errPrivateAddress: an attachment URL leads to Parley's own network.
var errPrivateAddress = errors.New("not a public address")

// cgnat is the carrier-grade NAT range, private in practice.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// newFetchClient downloads attachment URLs: no proxy, no cookies, and,
// unless private is set, only from public addresses. The dialer checks the
// address it connects to (redirects included, after DNS), so that an agent
// cannot make Parley read its own network or the cloud's metadata service.
func newFetchClient(private bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if !private {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", errPrivateAddress, address)
			}
			a := ap.Addr().Unmap()
			if !a.IsGlobalUnicast() || a.IsPrivate() || cgnat.Contains(a) {
				return fmt.Errorf("%w: %s", errPrivateAddress, a)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: fetchTimeout,
		Transport: &http.Transport{
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
			}
			return nil
		},
	}
}

// fetchFile downloads an attachment URL into an incoming file.
func (s *Server) fetchFile(ctx context.Context, rawURL string) (*incoming, error) {
	const field = "attachment.url"
	in := &incoming{}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return in, apierror.InvalidField(field, "must be an absolute http(s) URL")
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return in, apierror.InvalidField(field, "must be an absolute http(s) URL")
	}
	resp, err := s.fetch.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, errPrivateAddress):
			return in, apierror.InvalidField(field, "leads to a private or local address; Parley downloads files from public addresses only")
		case errors.Is(err, context.DeadlineExceeded):
			return in, apierror.InvalidField(field, "could not be downloaded within %s", fetchTimeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the agent's own: no need to repeat it
		}
		return in, apierror.InvalidField(field, "could not be downloaded: %v", err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			s.log.Debug("close attachment download", "err", err)
		}
	}()
	if resp.StatusCode != http.StatusOK {
		return in, apierror.InvalidField(field, "could not be downloaded: the server answered HTTP %d", resp.StatusCode)
	}
	if resp.ContentLength > messenger.MaxAttachmentSize {
		in.over, in.known, in.size = true, true, resp.ContentLength
		return in, nil
	}
	in.declared = resp.Header.Get(echo.HeaderContentType)
	in.filename = cleanFilename(path.Base(u.Path))
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
		in.filename = cleanFilename(params["filename"])
	}
	// Past the limit the download stops: the rest is not Parley's business.
	body := io.LimitReader(resp.Body, messenger.MaxAttachmentSize+1)
	if err := spool(in, body); err != nil {
		return in, err
	}
	// Over the limit, the download stopped: the size is a lower bound.
	in.known = !in.over
	return in, nil
}

// cleanFilename keeps a file name shown to the customer harmless: no path,
// no control or direction-override characters (which make "exe.pdf" of
// "\u202efdp.exe"), at most maxFilename bytes.
func cleanFilename(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, name)
	for len(name) > maxFilename {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
