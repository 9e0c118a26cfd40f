package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultVersion is the Graph API version used when NewClient gets none.
const DefaultVersion = "v25.0"

// DefaultTimeout bounds each call of a Client built without an http.Client.
const DefaultTimeout = 15 * time.Second

// maxResponseBytes caps how much of an answer is read: Graph answers are small.
const maxResponseBytes = 4 << 20

var (
	// ErrInvalidRequest means a call was refused locally, before reaching Meta
	// (missing ids or token, a request Meta is known to reject).
	ErrInvalidRequest = errors.New("messenger: invalid request")
	// ErrUnexpectedResponse means Meta answered 2xx with a body that is not
	// what the endpoint documents.
	ErrUnexpectedResponse = errors.New("messenger: unexpected graph API response")
)

// Client calls the Graph API. It is safe for concurrent use.
type Client struct {
	baseURL string
	version string
	http    *http.Client
	// upload is http with a timeout long enough for a file (UploadTimeout).
	upload *http.Client

	// Observe, when set, is told of every Graph API call it attempts:
	// its operation (one of the Op constants, never an id), how long it
	// took and its error (nil: Meta answered 2xx). Set it before the
	// client is used; it must be safe for concurrent use. The app counts
	// the calls in its metrics through it.
	Observe func(op string, d time.Duration, err error)
}

// Operations named to Client.Observe: one per Graph API endpoint Parley
// calls, so that a metric labelled by them stays small.
const (
	OpSend             = "send"
	OpUploadAttachment = "upload_attachment"
	OpUserProfile      = "user_profile"
	OpThreadMessages   = "thread_messages"
	OpDebugToken       = "debug_token"
	OpSubscribeApp     = "subscribe_app"
	OpSubscribedApps   = "subscribed_apps"
	OpUnsubscribeApp   = "unsubscribe_app"
)

// NewClient returns a Client for baseURL (e.g. "https://graph.facebook.com",
// or a fake's URL in tests) and version (e.g. "v25.0"; empty means
// DefaultVersion). A nil httpClient gets one with DefaultTimeout.
func NewClient(baseURL, version string, httpClient *http.Client) *Client {
	version = strings.Trim(version, "/")
	if version == "" {
		version = DefaultVersion
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultTimeout}
	}
	// The same client (transport, redirects, jar), with time for 25 MB.
	upload := *httpClient
	if upload.Timeout != 0 && upload.Timeout < UploadTimeout {
		upload.Timeout = UploadTimeout
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), version: version, http: httpClient, upload: &upload}
}

// PageAuth is what a call on behalf of a page needs. Every call sends
// access_token and, when AppSecret is set, appsecret_proof, both as query
// parameters (accepted by Meta for GET and POST alike).
type PageAuth struct {
	PageID      string
	AccessToken string
	AppSecret   string
}

func (a PageAuth) query() url.Values {
	q := url.Values{"access_token": {a.AccessToken}}
	if a.AppSecret != "" {
		q.Set("appsecret_proof", AppSecretProof(a.AccessToken, a.AppSecret))
	}
	return q
}

// secrets are the strings to scrub from anything that ends up in an error.
func (a PageAuth) secrets() []string {
	s := []string{a.AccessToken, a.AppSecret}
	if a.AppSecret != "" {
		s = append(s, AppSecretProof(a.AccessToken, a.AppSecret))
	}
	return s
}

func (a PageAuth) check() error {
	if a.AccessToken == "" {
		return fmt.Errorf("%w: no page access token", ErrInvalidRequest)
	}
	return nil
}

// Profile is a customer's public profile as seen by the page.
type Profile struct {
	ID         string `json:"id"`
	FirstName  string `json:"first_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
	ProfilePic string `json:"profile_pic,omitempty"`
}

// UserProfile reads a customer's name and picture:
// GET /{version}/{psid}?fields=first_name,last_name,profile_pic. It fails for
// many users (the feature needs App Review): callers fall back to the PSID.
func (c *Client) UserProfile(ctx context.Context, auth PageAuth, psid string) (Profile, error) {
	if err := auth.check(); err != nil {
		return Profile{}, err
	}
	seg, err := segment("psid", psid)
	if err != nil {
		return Profile{}, err
	}
	q := auth.query()
	q.Set("fields", "first_name,last_name,profile_pic")
	var w struct {
		ID         flexString `json:"id"`
		FirstName  string     `json:"first_name"`
		LastName   string     `json:"last_name"`
		ProfilePic string     `json:"profile_pic"`
	}
	if err := c.do(ctx, OpUserProfile, http.MethodGet, "/"+seg, q, nil, auth.secrets(), &w); err != nil {
		return Profile{}, err
	}
	p := Profile{ID: string(w.ID), FirstName: w.FirstName, LastName: w.LastName, ProfilePic: w.ProfilePic}
	if p.ID == "" {
		p.ID = psid
	}
	return p, nil
}

// TokenInfo is what debug_token says about a token. ExpiresAt and
// DataAccessExpiresAt are zero when Meta says 0 (never). ErrorCode,
// ErrorSubcode and ErrorMessage explain an invalid token.
type TokenInfo struct {
	IsValid             bool      `json:"is_valid"`
	AppID               string    `json:"app_id,omitempty"`
	Type                string    `json:"type,omitempty"`
	ProfileID           string    `json:"profile_id,omitempty"`
	ExpiresAt           time.Time `json:"expires_at,omitzero"`
	DataAccessExpiresAt time.Time `json:"data_access_expires_at,omitzero"`
	Scopes              []string  `json:"scopes,omitempty"`
	ErrorCode           int       `json:"error_code,omitempty"`
	ErrorSubcode        int       `json:"error_subcode,omitempty"`
	ErrorMessage        string    `json:"error_message,omitempty"`
}

// Class classifies an invalid token's error like a GraphError; "" when the
// token is valid.
func (t TokenInfo) Class() ErrorClass {
	if t.IsValid {
		return ""
	}
	return Classify(t.ErrorCode, t.ErrorSubcode)
}

// DebugToken inspects inputToken with the app's own token:
// GET /{version}/debug_token?input_token=...&access_token=<appID>|<appSecret>.
// A dead token is not an error: Meta answers 200 with is_valid false and the
// reason in data.error, which TokenInfo carries.
func (c *Client) DebugToken(ctx context.Context, appID, appSecret, inputToken string) (TokenInfo, error) {
	if appID == "" || appSecret == "" || inputToken == "" {
		return TokenInfo{}, fmt.Errorf("%w: debug_token needs the app id, app secret and the token to inspect", ErrInvalidRequest)
	}
	appToken := appID + "|" + appSecret
	q := url.Values{"input_token": {inputToken}, "access_token": {appToken}}
	secrets := []string{inputToken, appSecret, appToken, AppSecretProof(inputToken, appSecret)}
	var w struct {
		Data *struct {
			IsValid             bool       `json:"is_valid"`
			AppID               flexString `json:"app_id"`
			Type                string     `json:"type"`
			ProfileID           flexString `json:"profile_id"`
			ExpiresAt           flexInt64  `json:"expires_at"`
			DataAccessExpiresAt flexInt64  `json:"data_access_expires_at"`
			Scopes              []string   `json:"scopes"`
			Error               *struct {
				Code         flexInt64 `json:"code"`
				Subcode      flexInt64 `json:"subcode"`
				ErrorSubcode flexInt64 `json:"error_subcode"`
				Message      string    `json:"message"`
			} `json:"error"`
		} `json:"data"`
	}
	if err := c.do(ctx, OpDebugToken, http.MethodGet, "/debug_token", q, nil, secrets, &w); err != nil {
		return TokenInfo{}, err
	}
	d := w.Data
	if d == nil {
		return TokenInfo{}, fmt.Errorf("messenger: GET %s: %w: no \"data\"", c.path("/debug_token"), ErrUnexpectedResponse)
	}
	info := TokenInfo{
		IsValid:             d.IsValid,
		AppID:               string(d.AppID),
		Type:                d.Type,
		ProfileID:           string(d.ProfileID),
		ExpiresAt:           unixOrZero(int64(d.ExpiresAt)),
		DataAccessExpiresAt: unixOrZero(int64(d.DataAccessExpiresAt)),
		Scopes:              d.Scopes,
	}
	if e := d.Error; e != nil {
		info.ErrorCode = int(e.Code)
		info.ErrorSubcode = int(e.Subcode)
		if info.ErrorSubcode == 0 {
			info.ErrorSubcode = int(e.ErrorSubcode)
		}
		info.ErrorMessage = redact(e.Message, secrets)
	}
	return info, nil
}

func unixOrZero(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// DefaultSubscribedFields are the webhook fields Parley needs on every page.
var DefaultSubscribedFields = []string{
	"messages",
	"message_deliveries",
	"message_echoes",
	"message_edits",
	"message_reactions",
	"message_reads",
	"messaging_postbacks",
	"messaging_referrals",
	// Thread control: who owns the thread, and the customer's messages to
	// another app (handover protocol).
	"messaging_handovers",
	"standby",
}

// SubscribedApp is one app subscribed to a page's webhooks.
type SubscribedApp struct {
	ID               string   `json:"id"`
	Name             string   `json:"name,omitempty"`
	SubscribedFields []string `json:"subscribed_fields,omitempty"`
}

// SubscribeApp subscribes the app to the page's webhook fields (nil or empty
// means DefaultSubscribedFields):
// POST /{version}/{page-id}/subscribed_apps?subscribed_fields=a,b,c.
func (c *Client) SubscribeApp(ctx context.Context, auth PageAuth, fields []string) error {
	if err := auth.check(); err != nil {
		return err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		fields = DefaultSubscribedFields
	}
	q := auth.query()
	q.Set("subscribed_fields", strings.Join(fields, ","))
	var w struct {
		Success bool `json:"success"`
	}
	p := "/" + seg + "/subscribed_apps"
	if err := c.do(ctx, OpSubscribeApp, http.MethodPost, p, q, nil, auth.secrets(), &w); err != nil {
		return err
	}
	if !w.Success {
		return fmt.Errorf("messenger: POST %s: %w: success is not true", c.path(p), ErrUnexpectedResponse)
	}
	return nil
}

// SubscribedApps lists the apps subscribed to the page's webhooks:
// GET /{version}/{page-id}/subscribed_apps.
func (c *Client) SubscribedApps(ctx context.Context, auth PageAuth) ([]SubscribedApp, error) {
	if err := auth.check(); err != nil {
		return nil, err
	}
	seg, err := segment("page id", auth.PageID)
	if err != nil {
		return nil, err
	}
	var w struct {
		Data []struct {
			ID               flexString `json:"id"`
			Name             string     `json:"name"`
			SubscribedFields []string   `json:"subscribed_fields"`
		} `json:"data"`
	}
	if err := c.do(ctx, OpSubscribedApps, http.MethodGet, "/"+seg+"/subscribed_apps", auth.query(), nil, auth.secrets(), &w); err != nil {
		return nil, err
	}
	apps := make([]SubscribedApp, 0, len(w.Data))
	for _, a := range w.Data {
		apps = append(apps, SubscribedApp{ID: string(a.ID), Name: a.Name, SubscribedFields: a.SubscribedFields})
	}
	return apps, nil
}

// segment escapes one id for use as a path segment, refusing values that
// would change the path's meaning.
func segment(what, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("%w: invalid %s %q", ErrInvalidRequest, what, id)
	}
	return url.PathEscape(id), nil
}

// path is the versioned path of an endpoint, as shown in errors (never with
// the query, which holds the token).
func (c *Client) path(p string) string {
	return "/" + c.version + p
}

// do sends one request and decodes a 2xx answer into out. Errors name the
// method and path only: the query string holds the token, so url.Error
// (which prints the full URL) is unwrapped, and Meta's own message is
// scrubbed of secrets.
func (c *Client) do(ctx context.Context, name, method, p string, q url.Values, body any, secrets []string, out any) error {
	if body == nil {
		return c.doBody(ctx, name, c.http, method, p, q, nil, 0, "", secrets, out)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("messenger: %s %s: encode request: %w", method, c.path(p), err)
	}
	return c.doBody(ctx, name, c.http, method, p, q, bytes.NewReader(b), int64(len(b)), "application/json", secrets, out)
}

// doBody is do with a body already encoded as contentType (nil: none) of
// length bytes (-1: unknown, sent chunked), sent with hc. name is the
// operation told to Observe.
func (c *Client) doBody(ctx context.Context, name string, hc *http.Client, method, p string, q url.Values, body io.Reader, length int64, contentType string, secrets []string, out any) (err error) {
	if c.Observe != nil {
		start := time.Now()
		defer func() { c.Observe(name, time.Since(start), err) }()
	}
	op := method + " " + c.path(p)
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+c.path(p), body)
	if err != nil {
		return fmt.Errorf("messenger: %s: build request: %w", op, withoutURL(err))
	}
	req.URL.RawQuery = q.Encode()
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.ContentLength = length
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return newOpError(op, "", withoutURL(err), secrets)
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	closeErr := resp.Body.Close()
	if readErr != nil {
		return newOpError(op, "read response", errors.Join(withoutURL(readErr), withoutURL(closeErr)), secrets)
	}
	// After a complete read, closeErr is deliberately not an error: Meta's
	// answer is in hand, and failing now would make a sent message look unsent.

	if ge := graphError(resp.StatusCode, data, secrets); ge != nil {
		ge.Usage = parseUsage(resp.Header)
		return ge
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("messenger: %s: %w: %w", op, ErrUnexpectedResponse, err)
	}
	if uc, ok := out.(usageCarrier); ok {
		uc.setUsage(parseUsage(resp.Header))
	}
	return nil
}

// graphError returns the GraphError an answer carries, or nil for a success.
func graphError(status int, data []byte, secrets []string) *GraphError {
	var env struct {
		Error *struct {
			Message      string    `json:"message"`
			Type         string    `json:"type"`
			Code         flexInt64 `json:"code"`
			ErrorSubcode flexInt64 `json:"error_subcode"`
			FBTraceID    string    `json:"fbtrace_id"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil && env.Error != nil {
		e := env.Error
		return &GraphError{
			HTTPStatus: status,
			Code:       int(e.Code),
			Subcode:    int(e.ErrorSubcode),
			Type:       e.Type,
			Message:    redact(e.Message, secrets),
			FBTraceID:  e.FBTraceID,
		}
	}
	// A body that is not JSON or has no "error" is a failure without a Graph
	// error (a proxy or load balancer answered): Code 0, classified by status.
	if status < 200 || status > 299 {
		return &GraphError{
			HTTPStatus: status,
			Message:    fmt.Sprintf("HTTP %d %s without a Graph API error body", status, http.StatusText(status)),
		}
	}
	return nil
}

// withoutURL drops the *url.Error layer, whose message quotes the full URL
// including access_token and appsecret_proof.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// opError is a transport failure. Its message is built once, without the URL
// and scrubbed of secrets, while Unwrap keeps errors.Is(err,
// context.DeadlineExceeded) and friends working.
type opError struct {
	msg string
	err error
}

func newOpError(op, step string, err error, secrets []string) error {
	msg := "messenger: " + op + ": "
	if step != "" {
		msg += step + ": "
	}
	return &opError{msg: redact(msg+err.Error(), secrets), err: err}
}

func (e *opError) Error() string { return e.msg }
func (e *opError) Unwrap() error { return e.err }

// redact replaces every secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
