// Package fakemeta is an in-memory, concurrency-safe fake of Meta's side of
// the Messenger Platform, for tests and local demos. It plays both faces of
// Meta:
//
//   - the Graph API: Send API (/{v}/{page-id}/messages, /{v}/me/messages),
//     user profile (/{v}/{psid}), debug_token, subscribed_apps and the
//     attachment upload API, with Meta's token, appsecret_proof, window and
//     parameter checks and Meta's error bodies;
//   - the Messenger platform that calls an app's webhook: the verification
//     handshake, signed event POSTs (X-Hub-Signature-256 and X-Hub-Signature),
//     echoes of what pages send, delivery and read receipts, all driven by a
//     customer simulator (CustomerSends, CustomerPostback, Deliver...).
//
// It follows /work/shared/spec/messenger-platform.md, not any client's
// wishes, and shares no code with the rest of Parley: it is the independent
// other side of the protocol.
//
// Handler serves the Graph routes under /{version}/ and a JSON control API
// under /_fake/ (no authentication: bind it to loopback only).
//
// Setup methods (AddPage, SetUserProfile, BlockUser, InvalidateToken,
// SetHumanAgentPermission) panic when given an app or page that was never
// added: that is a mistake in the test, not a runtime condition.
package fakemeta

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultVersion is the Graph API version the fake serves unless told
// otherwise.
const DefaultVersion = "v25.0"

// Operation names, as recorded in Call.Op and matched by Failure.Op.
const (
	OpSend             = "send"
	OpProfile          = "profile"
	OpDebugToken       = "debug_token"
	OpSubscribedApps   = "subscribed_apps"
	OpPage             = "page"              // GET /{v}/me or /{v}/{page-id}
	OpAttachmentUpload = "attachment_upload" // POST /{v}/{page-id}/message_attachments
	OpConversations    = "conversations"     // GET /{v}/{page-id}/conversations
	OpUnknown          = "unknown"           // unknown route or version
	OpPassThread       = "pass_thread_control"
	OpTakeThread       = "take_thread_control"
)

// maxRequestBody caps what the fake reads of a Graph request.
const maxRequestBody = 32 << 20

// Options configure a Server. The zero value is usable.
type Options struct {
	// Version is the only Graph API version served (default "v25.0"). Any
	// other path prefix answers 400 with Graph error 2635.
	Version string
	// RequireAppSecretProof makes every page-token call carry
	// appsecret_proof = hex HMAC-SHA256(token, app secret). nil means true,
	// the behaviour Parley must cope with; use Bool(false) to turn it off.
	RequireAppSecretProof *bool
	// ReplyWindow bounds RESPONSE and UPDATE messages (and sender actions)
	// after the person's last message (default 24h).
	ReplyWindow time.Duration
	// HumanAgentWindow bounds MESSAGE_TAG + HUMAN_AGENT messages after the
	// person's last message (default 7*24h).
	HumanAgentWindow time.Duration
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// HTTPClient delivers webhooks (default: a client with a 10 s timeout).
	HTTPClient *http.Client
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
}

// Bool returns a pointer to v, for Options.RequireAppSecretProof.
func Bool(v bool) *bool { return &v }

// Call is one Graph API request the fake received, in arrival order.
// Credentials (access_token, input_token) are redacted to "***" in Query
// and wherever their value appears in Body.
type Call struct {
	Op       string
	AppID    string // the app of the token used, when known
	PageID   string // the page addressed, when known
	Method   string
	Path     string
	Query    url.Values
	Body     []byte
	Status   int // 0 when the connection was dropped (Failure with Code 0)
	Response []byte
	At       time.Time
}

// SentMessage is one message the Send API accepted.
type SentMessage struct {
	MessageID      string       `json:"message_id"`
	AppID          string       `json:"app_id"`
	PageID         string       `json:"page_id"`
	PSID           string       `json:"psid"`
	MessagingType  string       `json:"messaging_type"`
	Tag            string       `json:"tag,omitempty"`
	Text           string       `json:"text,omitempty"`
	AttachmentType string       `json:"attachment_type,omitempty"`
	AttachmentURL  string       `json:"attachment_url,omitempty"`
	AttachmentID   string       `json:"attachment_id,omitempty"`
	QuickReplies   []QuickReply `json:"quick_replies,omitempty"`
	Metadata       string       `json:"metadata,omitempty"`
	At             time.Time    `json:"at"`
}

// QuickReply is one quick reply of a sent message.
type QuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title,omitempty"`
	Payload     string `json:"payload,omitempty"`
	ImageURL    string `json:"image_url,omitempty"`
}

// Failure describes an injected Graph error (see FailNext, FailAfterAccept).
type Failure struct {
	// Op is "send", "profile", "debug_token", "subscribed_apps", "page",
	// "attachment_upload", or "" for any operation.
	Op string `json:"op"`
	// PageID restricts the failure to calls for that page ("" = any).
	PageID string `json:"page_id"`
	// HTTPStatus defaults to the catalogue's status for Code (400, or 500
	// for codes 1 and 2).
	HTTPStatus int `json:"http_status"`
	// Code and Subcode of the Graph error. Code 0 drops the connection
	// without an answer instead.
	Code    int `json:"code"`
	Subcode int `json:"subcode"`
	// Message defaults to the catalogue's message.
	Message string `json:"message"`
	// Times is how many matching calls fail (default 1).
	Times int `json:"times"`
}

// Server is the fake. Create it with New.
type Server struct {
	version      string
	requireProof bool
	replyWindow  time.Duration
	humanWindow  time.Duration
	now          func() time.Time
	client       *http.Client
	log          *slog.Logger
	handler      http.Handler

	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bgMu      sync.Mutex
	bgCond    *sync.Cond
	bgPending int

	mu          sync.Mutex
	apps        map[string]*app
	pages       map[string]*page
	tokens      map[string]*token
	users       map[userKey]*user
	attachments map[string]*attachment
	failNext    []*Failure
	failAfter   []*Failure
	calls       []Call
	sent        []SentMessage
	uploads     []Upload // what the Attachment Upload API accepted (graph_upload.go)
	deliveries  []*Delivery
	deliverySeq int

	cdnOnce  sync.Once
	cdnFiles *cdn // what customers send, on the fake CDN (cdn.go)
}

type app struct {
	id, secret, name string
	humanAgent       bool
	webhook          *webhookSub
}

type webhookSub struct {
	url, verifyToken string
	fields           []string
}

type page struct {
	id, name string
	apps     map[string]*pageApp // by app id
	// scopes of the page's tokens (nil: pageScopes).
	scopes []string
	// inbound are the people's messages, for the Conversations API.
	inbound []threadMessage
}

// threadMessage is a person's message as the Conversations API lists it.
type threadMessage struct {
	mid, psid, text string
	at              time.Time
}

// pageApp is one app's link to a page: its subscription (subscribed_apps).
type pageApp struct {
	subscribed bool
	fields     []string
}

type token struct {
	value, appID, pageID string
	invalidSubcode       int // 0 = valid
	issuedAt             time.Time
	userID               string
	// expiresAt: zero never (a page token from a long-lived user token);
	// dataAccessEnds: zero means issuedAt + 90 days.
	expiresAt, dataAccessEnds time.Time
}

type userKey struct{ page, psid string }

type user struct {
	first, last string
	profileSet  bool
	visible     bool
	lastMsg     time.Time // zero: never wrote to the page
	blocked     bool
	undelivered []string // mids sent since the last MarkDelivered
	// owner is the app that controls the thread (handover protocol); ""
	// until a handover: every app then gets the thread's events as
	// messaging[].
	owner string
}

type attachment struct {
	pageID, typ, url string
}

// New builds a Server with opts' defaults filled in.
func New(opts Options) *Server {
	s := &Server{
		version:      opts.Version,
		requireProof: opts.RequireAppSecretProof == nil || *opts.RequireAppSecretProof,
		replyWindow:  opts.ReplyWindow,
		humanWindow:  opts.HumanAgentWindow,
		now:          opts.Now,
		client:       opts.HTTPClient,
		log:          opts.Logger,
		apps:         map[string]*app{},
		pages:        map[string]*page{},
		tokens:       map[string]*token{},
		users:        map[userKey]*user{},
		attachments:  map[string]*attachment{},
	}
	if s.version == "" {
		s.version = DefaultVersion
	}
	if !strings.HasPrefix(s.version, "v") {
		s.version = "v" + s.version
	}
	if s.replyWindow <= 0 {
		s.replyWindow = 24 * time.Hour
	}
	if s.humanWindow <= 0 {
		s.humanWindow = 7 * 24 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "fakemeta")
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.bgCond = sync.NewCond(&s.bgMu)

	mux := http.NewServeMux()
	s.registerControl(mux)
	mux.HandleFunc("/", s.serveGraph)
	s.handler = mux
	return s
}

// Handler serves the Graph routes under /{version}/... and the control API
// under /_fake/....
func (s *Server) Handler() http.Handler { return s.handler }

// Version is the Graph API version served, e.g. "v25.0".
func (s *Server) Version() string { return s.version }

// Wait blocks until every asynchronous webhook delivery (echoes and their
// retries) has finished.
func (s *Server) Wait() {
	s.bgMu.Lock()
	for s.bgPending > 0 {
		s.bgCond.Wait()
	}
	s.bgMu.Unlock()
}

// Close cancels pending asynchronous deliveries and waits for them.
func (s *Server) Close() {
	s.bgCancel()
	s.Wait()
}

func (s *Server) bgAdd() {
	s.bgMu.Lock()
	s.bgPending++
	s.bgMu.Unlock()
}

func (s *Server) bgDone() {
	s.bgMu.Lock()
	s.bgPending--
	if s.bgPending == 0 {
		s.bgCond.Broadcast()
	}
	s.bgMu.Unlock()
}

// ---- State ----

// AddApp registers an app (or changes its secret). Its name, shown by
// debug_token and subscribed_apps, is "App <appID>". The Human Agent
// permission is granted by default.
func (s *Server) AddApp(appID, appSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[appID]; ok {
		a.secret = appSecret
		return
	}
	s.apps[appID] = &app{id: appID, secret: appSecret, name: "App " + appID, humanAgent: true}
}

// AddPage records that the app holds accessToken for the page (scopes
// include pages_messaging) and, like connecting the page in the app
// dashboard, subscribes the app to the page for every messaging field.
// Adding another token for the same page keeps the older ones valid, as at
// Meta; InvalidateToken kills them all. It panics if the app is unknown.
func (s *Server) AddPage(appID, pageID, name, accessToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[appID]; !ok {
		panic(fmt.Sprintf("fakemeta: AddPage: unknown app %q (call AddApp first)", appID))
	}
	p, ok := s.pages[pageID]
	if !ok {
		p = &page{id: pageID, apps: map[string]*pageApp{}}
		s.pages[pageID] = p
	}
	p.name = name
	if _, ok := p.apps[appID]; !ok {
		p.apps[appID] = &pageApp{subscribed: true, fields: MessagingFields()}
	}
	s.tokens[accessToken] = &token{
		value: accessToken, appID: appID, pageID: pageID,
		issuedAt: s.now(), userID: randomDigits(15),
	}
}

// SetUserProfile makes psid a person known to the page, with a profile.
// visible=false models a person whose profile Meta will not show (no
// "Business Asset User Profile Access", privacy settings): the profile call
// then fails with 100/33 "Unsupported get request. Object with ID ... does
// not exist, cannot be loaded due to missing permissions...", which is what
// Graph answers for an object the token may not read. The same error
// answers a PSID the page does not know, and a person who wrote but whose
// profile was never set. Setting a profile does not open the reply window.
func (s *Server) SetUserProfile(pageID, psid, firstName, lastName string, visible bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(s.mustPageLocked("SetUserProfile", pageID).id, psid)
	u.first, u.last, u.profileSet, u.visible = firstName, lastName, true, visible
}

// BlockUser makes the person stop receiving the page's messages: sends to
// them fail with 10/2018108 until they write to the page again.
func (s *Server) BlockUser(pageID, psid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(s.mustPageLocked("BlockUser", pageID).id, psid).blocked = true
}

// InvalidateToken kills every token issued so far for the page: each call
// with one fails with 190/subcode (460 when subcode is 0), and debug_token
// reports is_valid=false with that error. A token added later is valid.
func (s *Server) InvalidateToken(pageID string, subcode int) {
	if subcode == 0 {
		subcode = 460
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPageLocked("InvalidateToken", pageID)
	for _, t := range s.tokens {
		if t.pageID == pageID {
			t.invalidSubcode = subcode
		}
	}
}

// SetHumanAgentPermission grants or withdraws the app's Human Agent feature
// (granted by default). Without it, any message tagged HUMAN_AGENT fails
// with code 200 "(#200) Permissions error"-style: the spec does not give the
// code, 200 is Graph's generic permission error.
func (s *Server) SetHumanAgentPermission(appID string, allowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok {
		panic(fmt.Sprintf("fakemeta: SetHumanAgentPermission: unknown app %q", appID))
	}
	a.humanAgent = allowed
}

func (s *Server) mustPageLocked(fn, pageID string) *page {
	p, ok := s.pages[pageID]
	if !ok {
		panic(fmt.Sprintf("fakemeta: %s: unknown page %q (call AddPage first)", fn, pageID))
	}
	return p
}

func (s *Server) userLocked(pageID, psid string) *user {
	k := userKey{pageID, psid}
	u, ok := s.users[k]
	if !ok {
		u = &user{}
		s.users[k] = u
	}
	return u
}

// FailNext makes the next f.Times calls matching f.Op and f.PageID answer
// the given Graph error instead of doing anything (nothing is sent or
// recorded as sent). Injected failures apply after the token and
// appsecret_proof checks (a call Meta cannot authenticate gets the auth
// error and does not consume the failure) and before parameter validation.
func (s *Server) FailNext(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, normalizeFailure(f))
}

// FailAfterAccept makes the next f.Times successful calls matching f do
// their work (a send is recorded and its echo delivered) but answer the
// given error, or drop the connection when f.Code is 0: "Meta accepted it,
// the client saw a failure".
func (s *Server) FailAfterAccept(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAfter = append(s.failAfter, normalizeFailure(f))
}

func normalizeFailure(f Failure) *Failure {
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.Code != 0 {
		e := lookupError(f.Code, f.Subcode)
		if f.HTTPStatus == 0 {
			f.HTTPStatus = e.HTTPStatus
		}
		if f.Message == "" {
			f.Message = e.Message
			if strings.Contains(f.Message, "%s") {
				f.Message = strings.ReplaceAll(f.Message, "%s", "")
			}
		}
	}
	return &f
}

// takeFailureLocked consumes one use of the first failure matching.
func takeFailureLocked(list *[]*Failure, op, pageID string) *Failure {
	for i, f := range *list {
		if (f.Op == "" || f.Op == op) && (f.PageID == "" || f.PageID == pageID) {
			f.Times--
			if f.Times <= 0 {
				*list = slices.Delete(*list, i, i+1)
			}
			c := *f
			return &c
		}
	}
	return nil
}

// Calls returns every Graph call received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Query = cloneValues(c.Query)
		c.Body = bytes.Clone(c.Body)
		c.Response = bytes.Clone(c.Response)
		out[i] = c
	}
	return out
}

// Sent returns the messages the Send API accepted for the page and person,
// in order; "" matches any page or any person.
func (s *Server) Sent(pageID, psid string) []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SentMessage
	for _, m := range s.sent {
		if (pageID == "" || m.PageID == pageID) && (psid == "" || m.PSID == psid) {
			m.QuickReplies = slices.Clone(m.QuickReplies)
			out = append(out, m)
		}
	}
	return out
}

// Reset clears the logs (calls, sent messages, uploads, deliveries) and the
// pending injected failures. Apps, pages, tokens, webhooks, people
// (profiles, windows, blocks) and uploaded attachments are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.sent, s.uploads, s.deliveries = nil, nil, nil, nil
	s.failNext, s.failAfter = nil, nil
}

// AppSecretProof is hex HMAC-SHA256(token) keyed with the app secret: the
// appsecret_proof Meta expects next to a token.
func AppSecretProof(accessToken, appSecret string) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write([]byte(accessToken))
	return hex.EncodeToString(m.Sum(nil))
}

// ---- Graph plumbing ----

// request is one Graph request being served.
type request struct {
	r     *http.Request
	body  []byte
	query url.Values
	form  url.Values // urlencoded or multipart form fields, if any

	op, appID, pageID string
}

// param reads a parameter from the query string, then the form body.
func (q *request) param(name string) string {
	if v := q.query.Get(name); v != "" {
		return v
	}
	return q.form.Get(name)
}

func (q *request) isJSON() bool {
	mt, _, _ := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	if mt == "application/json" {
		return true
	}
	return mt == "" && len(bytes.TrimSpace(q.body)) > 0 && bytes.TrimSpace(q.body)[0] == '{'
}

type response struct {
	status int
	body   []byte
	header http.Header
	drop   bool
	code   int // Graph error code, for logs and usage headers
}

func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	q := &request{r: r, body: body, query: r.URL.Query(), form: parseForm(r, body)}

	resp := s.route(q)

	if resp.header == nil {
		resp.header = http.Header{}
	}
	if q.pageID != "" && !resp.drop {
		resp.header.Set("X-Business-Use-Case-Usage", s.usageHeader(q, resp))
	}

	call := Call{
		Op: q.op, AppID: q.appID, PageID: q.pageID,
		Method: r.Method, Path: r.URL.Path,
		Query: redactValues(q.query), Body: redactBody(body, q),
		Status: resp.status, Response: resp.body, At: s.now(),
	}
	if resp.drop {
		call.Status, call.Response = 0, nil
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	s.log.Info("graph call", "op", q.op, "method", r.Method, "path", r.URL.Path,
		"page_id", q.pageID, "status", call.Status, "error_code", resp.code, "dropped", resp.drop)

	if resp.drop {
		// Close the connection without an answer.
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func parseForm(r *http.Request, body []byte) url.Values {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err == nil {
			return v
		}
	case "multipart/form-data":
		if params["boundary"] == "" {
			break
		}
		cp := r.Clone(r.Context())
		cp.Body = io.NopCloser(bytes.NewReader(body))
		if err := cp.ParseMultipartForm(maxRequestBody); err == nil && cp.MultipartForm != nil {
			v := url.Values(cp.MultipartForm.Value)
			for name, files := range cp.MultipartForm.File {
				if len(files) > 0 {
					v.Set("__file:"+name, files[0].Filename)
				}
			}
			_ = cp.MultipartForm.RemoveAll()
			return v
		}
	}
	return url.Values{}
}

func (s *Server) route(q *request) *response {
	path := strings.Trim(q.r.URL.Path, "/")
	segs := strings.Split(path, "/")
	if segs[0] != s.version {
		q.op = OpUnknown
		return s.errorResponse(newGraphError(2635, 0, s.version))
	}
	segs = segs[1:]
	method := q.r.Method
	switch {
	case len(segs) == 1 && segs[0] == "debug_token":
		q.op = OpDebugToken
		if method != http.MethodGet {
			return s.errorResponse(errUnsupported(method, "debug_token"))
		}
		return s.handleDebugToken(q)
	case len(segs) == 1 && segs[0] != "":
		return s.handleNode(q, segs[0])
	case len(segs) == 2 && segs[0] != "":
		switch segs[1] {
		case "messages":
			q.op = OpSend
			if method != http.MethodPost {
				return s.errorResponse(errUnsupported(method, segs[0]))
			}
			return s.handleSend(q, segs[0])
		case "subscribed_apps":
			q.op = OpSubscribedApps
			switch method {
			case http.MethodGet, http.MethodPost, http.MethodDelete:
				return s.handleSubscribedApps(q, segs[0])
			}
			return s.errorResponse(errUnsupported(method, segs[0]))
		case "conversations":
			q.op = OpConversations
			if method != http.MethodGet {
				return s.errorResponse(errUnsupported(method, segs[0]))
			}
			return s.handleConversations(q, segs[0])
		case "pass_thread_control", "take_thread_control":
			q.op = segs[1]
			if method != http.MethodPost {
				return s.errorResponse(errUnsupported(method, segs[0]))
			}
			return s.handleHandover(q, segs[0], segs[1])
		case "message_attachments":
			q.op = OpAttachmentUpload
			if method != http.MethodPost {
				return s.errorResponse(errUnsupported(method, segs[0]))
			}
			return s.handleAttachmentUpload(q, segs[0])
		}
	}
	q.op = OpUnknown
	return s.errorResponse(newGraphError(2500, 0, "/"+strings.Join(segs, "/")))
}

// pageOp runs fn for a call made with a page token: token and
// appsecret_proof checks, then injected failures, then fn, then
// after-accept failures. pathPage is the page id in the path ("me" or ""
// for the token's page).
func (s *Server) pageOp(q *request, pathPage string, fn func(t token) *response) *response {
	t, gerr := s.authPage(q, pathPage)
	if gerr != nil {
		return s.errorResponse(gerr)
	}
	return s.withFailures(q, func() *response { return fn(t) })
}

func (s *Server) withFailures(q *request, fn func() *response) *response {
	s.mu.Lock()
	f := takeFailureLocked(&s.failNext, q.op, q.pageID)
	s.mu.Unlock()
	if f != nil {
		s.log.Info("injected failure", "op", q.op, "page_id", q.pageID, "code", f.Code, "subcode", f.Subcode)
		return s.failureResponse(f)
	}
	resp := fn()
	if resp.status != http.StatusOK || resp.drop {
		return resp
	}
	s.mu.Lock()
	f = takeFailureLocked(&s.failAfter, q.op, q.pageID)
	s.mu.Unlock()
	if f != nil {
		s.log.Info("injected failure after accept", "op", q.op, "page_id", q.pageID, "code", f.Code, "subcode", f.Subcode)
		return s.failureResponse(f)
	}
	return resp
}

func (s *Server) failureResponse(f *Failure) *response {
	if f.Code == 0 {
		return &response{drop: true}
	}
	e := newGraphError(f.Code, f.Subcode)
	e.status, e.message = f.HTTPStatus, f.Message
	return s.errorResponse(e)
}

// authPage checks the page token of a call. The token may come as the
// access_token query parameter or form field (not in a JSON body, not in an
// Authorization header: the spec documents the parameter).
func (s *Server) authPage(q *request, pathPage string) (token, *graphError) {
	if pathPage != "" && pathPage != "me" {
		q.pageID = pathPage
	}
	tv := q.param("access_token")
	if tv == "" {
		return token{}, newGraphError(104, 0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tv]
	if !ok {
		return token{}, newGraphError(190, 0)
	}
	q.appID = t.appID
	if q.pageID == "" {
		q.pageID = t.pageID
	}
	if t.invalidSubcode != 0 {
		return token{}, newGraphError(190, t.invalidSubcode)
	}
	if q.pageID != t.pageID {
		return token{}, newGraphError(190, 0)
	}
	if s.requireProof {
		proof := q.param("appsecret_proof")
		if proof == "" {
			return token{}, &graphError{status: defaultErrStatus, code: 100, typ: typeGraphMethod,
				message: "API calls from the server require an appsecret_proof argument"}
		}
		got, err := hex.DecodeString(proof)
		want := hmacSHA256(s.apps[t.appID].secret, tv)
		if err != nil || !hmac.Equal(got, want) {
			return token{}, &graphError{status: defaultErrStatus, code: 100, typ: typeGraphMethod,
				message: "Invalid appsecret_proof provided in the API argument"}
		}
	}
	return *t, nil
}

func hmacSHA256(key, msg string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (s *Server) errorResponse(e *graphError) *response {
	trace := fbtraceID()
	body, _ := metaMarshal(errorBody{Error: errorFields{
		Message: e.message, Type: e.typ, Code: e.code, Subcode: e.subcode, FBTraceID: trace,
	}})
	h := http.Header{}
	h.Set("X-Fb-Trace-Id", trace)
	if e.code == 190 || e.code == 104 {
		h.Set("WWW-Authenticate", fmt.Sprintf(`OAuth "Facebook Platform" "invalid_token" %q`, e.message))
	}
	return &response{status: e.status, body: body, header: h, code: e.code}
}

func (s *Server) jsonResponse(v any) *response {
	body, err := metaMarshal(v)
	if err != nil {
		return s.errorResponse(newGraphError(1, 0))
	}
	h := http.Header{}
	h.Set("X-Fb-Trace-Id", fbtraceID())
	return &response{status: http.StatusOK, body: body, header: h}
}

// usageHeader is X-Business-Use-Case-Usage: call_count is a percentage of
// the budget; the fake reports 100 (and a minute to regain access) on
// throttling errors and 1 otherwise. The usage type names are unconfirmed.
func (s *Server) usageHeader(q *request, resp *response) string {
	typ := "pages"
	if q.op == OpSend {
		typ = "messenger"
	}
	count, regain := 1, 0
	if isThrottle(resp.code) {
		count, regain = 100, 1
	}
	type usage struct {
		Type     string `json:"type"`
		Count    int    `json:"call_count"`
		CPU      int    `json:"total_cputime"`
		Time     int    `json:"total_time"`
		Estimate int    `json:"estimated_time_to_regain_access"`
	}
	b, _ := json.Marshal(map[string][]usage{q.pageID: {{typ, count, count, count, regain}}})
	return string(b)
}

// ---- JSON as Meta writes it ----

// metaMarshal encodes v the way Meta's servers do: compact, '<', '>' and
// '&' left alone, '/' escaped as "\/" and every non-ASCII character escaped
// as \uXXXX (lowercase hex, surrogate pairs above U+FFFF).
func metaMarshal(v any) ([]byte, error) {
	b, err := marshalNoHTML(v)
	if err != nil {
		return nil, err
	}
	return metaEscape(b), nil
}

func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// metaEscape rewrites valid compact JSON: outside strings there is neither
// '/' nor non-ASCII, so a byte-level pass is safe.
func metaEscape(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == '/' {
				out = append(out, '\\', '/')
			} else {
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r > 0xFFFF {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		} else {
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}

// orderedObject marshals as a JSON object with keys in the given order.
type orderedObject []kv

type kv struct {
	k string
	v any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := marshalNoHTML(p.k)
		vb, err := marshalNoHTML(p.v)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// ---- helpers ----

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

var secretParams = []string{"access_token", "input_token"}

func redactValues(v url.Values) url.Values {
	out := cloneValues(v)
	for _, k := range secretParams {
		if _, ok := out[k]; ok {
			out[k] = []string{"***"}
		}
	}
	return out
}

func redactBody(body []byte, q *request) []byte {
	out := bytes.Clone(body)
	for _, k := range secretParams {
		for _, v := range append(q.query[k], q.form[k]...) {
			if v != "" {
				out = bytes.ReplaceAll(out, []byte(url.QueryEscape(v)), []byte("***"))
				out = bytes.ReplaceAll(out, []byte(v), []byte("***"))
			}
		}
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newMID is a message id: "m_" + random base64url.
func newMID() string { return "m_" + base64.RawURLEncoding.EncodeToString(randomBytes(24)) }

func fbtraceID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(8)) }

// randomDigits is n random decimal digits, the first non-zero.
func randomDigits(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		lo := int64(0)
		if i == 0 {
			lo = 1
		}
		d, _ := rand.Int(rand.Reader, big.NewInt(10-lo))
		sb.WriteByte(byte('0' + lo + d.Int64()))
	}
	return sb.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Subscribed tells whether the app is subscribed to the page's webhooks
// (POST /{page-id}/subscribed_apps, undone by DELETE).
func (s *Server) Subscribed(pageID, appID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pages[pageID]
	if !ok {
		return false
	}
	pa, ok := p.apps[appID]
	return ok && pa.subscribed
}

// SetPageScopes sets the permissions of the page's tokens (debug_token's
// scopes; the Conversations API needs pages_read_engagement and
// pages_manage_metadata). nil restores the default, which has them.
func (s *Server) SetPageScopes(pageID string, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPageLocked("SetPageScopes", pageID).scopes = slices.Clone(scopes)
}

// scopesLocked are the permissions of the page's tokens.
func (s *Server) scopesLocked(pageID string) []string {
	if p, ok := s.pages[pageID]; ok && p.scopes != nil {
		return p.scopes
	}
	return pageScopes
}
