package messenger

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testToken  = "EAAGpageTOKENsecret123"
	testSecret = "appSECRETvalue456"
)

var testAuth = PageAuth{PageID: "123", AccessToken: testToken, AppSecret: testSecret}

// recorded is what the fake Graph API saw.
type recorded struct {
	method, path string
	escapedPath  string
	query        url.Values
	contentType  string
	body         []byte
}

// fakeGraph answers every request with status and body, recording it.
func fakeGraph(t *testing.T, status int, body string) (*Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request: %v", err)
		}
		*rec = recorded{method: r.Method, path: r.URL.Path, escapedPath: r.URL.EscapedPath(), query: r.URL.Query(), contentType: r.Header.Get("Content-Type"), body: b}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if _, err := io.WriteString(w, body); err != nil {
			t.Errorf("write answer: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return NewClient(srv.URL, "v25.0", srv.Client()), rec
}

func assertPageAuth(t *testing.T, q url.Values) {
	t.Helper()
	if got := q.Get("access_token"); got != testToken {
		t.Errorf("access_token = %q", got)
	}
	if got, want := q.Get("appsecret_proof"), AppSecretProof(testToken, testSecret); got != want || want == "" {
		t.Errorf("appsecret_proof = %q, want %q", got, want)
	}
}

func TestSend(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"recipient_id":"7012345678901234","message_id":"m_OUT1"}`)
	resp, err := c.Send(context.Background(), testAuth, SendRequest{
		Recipient:     Recipient{ID: "7012345678901234"},
		MessagingType: MessagingTypeResponse,
		Message: &OutMessage{
			Text:         "Grüße",
			QuickReplies: []QuickReply{{ContentType: "text", Title: "Yes", Payload: "YES"}},
			Metadata:     "parley:42",
		},
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if resp != (SendResponse{RecipientID: "7012345678901234", MessageID: "m_OUT1"}) {
		t.Errorf("resp = %+v", resp)
	}
	if rec.method != http.MethodPost || rec.path != "/v25.0/123/messages" {
		t.Errorf("request = %s %s", rec.method, rec.path)
	}
	assertPageAuth(t, rec.query)
	if rec.contentType != "application/json" {
		t.Errorf("Content-Type = %q", rec.contentType)
	}
	assertJSON(t, rec.body, `{"recipient":{"id":"7012345678901234"},"messaging_type":"RESPONSE",
		"message":{"text":"Grüße","quick_replies":[{"content_type":"text","title":"Yes","payload":"YES"}],"metadata":"parley:42"}}`)
}

func TestSendBodies(t *testing.T) {
	tests := []struct {
		name string
		req  SendRequest
		want string
	}{
		{"human agent tag", SendRequest{
			Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeMessageTag, Tag: TagHumanAgent,
			Message: &OutMessage{Text: "late answer"},
		}, `{"recipient":{"id":"7"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT","message":{"text":"late answer"}}`},
		{"attachment by url", SendRequest{
			Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeResponse,
			Message: &OutMessage{Attachment: &OutAttachment{Type: AttachmentImage, Payload: AttachmentPayload{URL: "https://x/a.png", IsReusable: true}}},
		}, `{"recipient":{"id":"7"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"url":"https://x/a.png","is_reusable":true}}}}`},
		{"attachment by id", SendRequest{
			Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeUpdate,
			Message: &OutMessage{Attachment: &OutAttachment{Type: AttachmentFile, Payload: AttachmentPayload{AttachmentID: "1857777774821032"}}},
		}, `{"recipient":{"id":"7"},"messaging_type":"UPDATE","message":{"attachment":{"type":"file","payload":{"attachment_id":"1857777774821032"}}}}`},
		{"sender action alone", SendRequest{Recipient: Recipient{ID: "7"}, SenderAction: SenderActionTypingOn},
			`{"recipient":{"id":"7"},"sender_action":"typing_on"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeGraph(t, 200, `{"recipient_id":"7"}`)
			if _, err := c.Send(context.Background(), testAuth, tt.req); err != nil {
				t.Fatalf("Send: %v", err)
			}
			assertJSON(t, rec.body, tt.want)
		})
	}
}

func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body = %s\nwant   %s", got, want)
	}
}

func TestSendRefusedLocally(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{}`)
	msg := &OutMessage{Text: "x"}
	tests := map[string]struct {
		auth PageAuth
		req  SendRequest
	}{
		"no token":            {PageAuth{PageID: "123"}, SendRequest{Recipient: Recipient{ID: "7"}, Message: msg}},
		"no page":             {PageAuth{AccessToken: "t"}, SendRequest{Recipient: Recipient{ID: "7"}, Message: msg}},
		"dot-dot page":        {PageAuth{PageID: "..", AccessToken: "t"}, SendRequest{Recipient: Recipient{ID: "7"}, Message: msg}},
		"no recipient":        {testAuth, SendRequest{Message: msg}},
		"nothing to send":     {testAuth, SendRequest{Recipient: Recipient{ID: "7"}}},
		"message and action":  {testAuth, SendRequest{Recipient: Recipient{ID: "7"}, Message: msg, SenderAction: SenderActionMarkSeen}},
		"retired tag":         {testAuth, SendRequest{Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeMessageTag, Tag: "ACCOUNT_UPDATE", Message: msg}},
		"tag without type":    {testAuth, SendRequest{Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeResponse, Tag: TagHumanAgent, Message: msg}},
		"message tag, no tag": {testAuth, SendRequest{Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeMessageTag, Message: msg}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.Send(context.Background(), tt.auth, tt.req)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Send = %v, want ErrInvalidRequest", err)
			}
		})
	}
	if rec.method != "" {
		t.Errorf("a refused request reached Meta: %s %s", rec.method, rec.path)
	}
}

func TestSendGraphErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      GraphError
		class     ErrorClass
		retryable bool
	}{
		{"outside window", 400,
			`{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"AbCdEf"}}`,
			GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018278, Type: "OAuthException", Message: "(#10) This message is sent outside of allowed window.", FBTraceID: "AbCdEf"},
			ClassOutsideWindow, false},
		{"token expired", 400,
			`{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"X1"}}`,
			GraphError{HTTPStatus: 400, Code: 190, Subcode: 463, Type: "OAuthException", Message: "Error validating access token: Session has expired.", FBTraceID: "X1"},
			ClassTokenInvalid, false},
		{"throttled", 400,
			`{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613,"fbtrace_id":"X2"}}`,
			GraphError{HTTPStatus: 400, Code: 613, Type: "OAuthException", Message: "(#613) Calls to this api have exceeded the rate limit.", FBTraceID: "X2"},
			ClassThrottled, true},
		{"temporary with graph body on 500", 500,
			`{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2,"is_transient":true,"fbtrace_id":"X3"}}`,
			GraphError{HTTPStatus: 500, Code: 2, Type: "OAuthException", Message: "An unexpected error has occurred. Please retry your request later.", FBTraceID: "X3"},
			ClassTemporary, true},
		{"5xx without graph body", 502, `<html><body>Bad Gateway</body></html>`,
			GraphError{HTTPStatus: 502, Message: "HTTP 502 Bad Gateway without a Graph API error body"},
			ClassTemporary, true},
		{"5xx with empty body", 503, ``,
			GraphError{HTTPStatus: 503, Message: "HTTP 503 Service Unavailable without a Graph API error body"},
			ClassTemporary, true},
		{"4xx without graph body", 404, `not found`,
			GraphError{HTTPStatus: 404, Message: "HTTP 404 Not Found without a Graph API error body"},
			ClassUnknown, false},
		{"error on a 200", 200, `{"error":{"message":"(#100) bad","type":"OAuthException","code":100,"error_subcode":2018001}}`,
			GraphError{HTTPStatus: 200, Code: 100, Subcode: 2018001, Type: "OAuthException", Message: "(#100) bad"},
			ClassInvalidParameter, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeGraph(t, tt.status, tt.body)
			_, err := c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "7"}, MessagingType: MessagingTypeResponse, Message: &OutMessage{Text: "x"}})
			ge, ok := AsGraphError(err)
			if !ok {
				t.Fatalf("Send error %v is not a GraphError", err)
			}
			if *ge != tt.want {
				t.Errorf("GraphError = %+v\nwant         %+v", *ge, tt.want)
			}
			if ge.Class() != tt.class || ge.Class().Retryable() != tt.retryable {
				t.Errorf("class = %s (retryable %v), want %s (%v)", ge.Class(), ge.Class().Retryable(), tt.class, tt.retryable)
			}
		})
	}
}

func TestSendUnexpectedSuccessBody(t *testing.T) {
	c, _ := fakeGraph(t, 200, `not json`)
	_, err := c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "7"}, Message: &OutMessage{Text: "x"}})
	if !errors.Is(err, ErrUnexpectedResponse) {
		t.Fatalf("err = %v, want ErrUnexpectedResponse", err)
	}
	if _, ok := AsGraphError(err); ok {
		t.Error("a 200 with a bad body is not a GraphError")
	}
}

func TestNetworkErrorIsWrappedNotGraphError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	c := NewClient("http://"+addr, "v25.0", nil)
	_, err = c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "7"}, Message: &OutMessage{Text: "x"}})
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if _, ok := AsGraphError(err); ok {
		t.Errorf("network error became a GraphError: %v", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("network error not wrapped: %v", err)
	}
	if !strings.Contains(err.Error(), "POST /v25.0/123/messages") {
		t.Errorf("error does not say what failed: %v", err)
	}
}

func TestContextIsPassed(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	c := NewClient(srv.URL, "v25.0", srv.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.UserProfile(ctx, testAuth, "7")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

// No error string may carry the token, the app secret or the proof, even
// when Meta's message echoes them or the transport fails.
func TestErrorsNeverLeakSecrets(t *testing.T) {
	proof := AppSecretProof(testToken, testSecret)
	leaky := `{"error":{"message":"Malformed access token ` + testToken + ` (secret ` + testSecret + `, proof ` + proof + `)","type":"OAuthException","code":190,"fbtrace_id":"X"}}`
	var errs []error

	c, _ := fakeGraph(t, 400, leaky)
	_, err := c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "7"}, Message: &OutMessage{Text: "x"}})
	errs = append(errs, err)
	_, err = c.UserProfile(context.Background(), testAuth, "7")
	errs = append(errs, err)
	_, err = c.DebugToken(context.Background(), "42", testSecret, testToken)
	errs = append(errs, err)

	c, _ = fakeGraph(t, 200, `{"data":{"is_valid":false,"error":{"code":190,"message":"token `+testToken+` is dead"}}}`)
	info, err := c.DebugToken(context.Background(), "42", testSecret, testToken)
	if err != nil {
		t.Fatal(err)
	}
	errs = append(errs, errors.New(info.ErrorMessage))

	c, _ = fakeGraph(t, 200, `garbage`)
	errs = append(errs, c.SubscribeApp(context.Background(), testAuth, nil))

	// Transport failures: url.Error would print the whole URL with the query.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	c = NewClient("http://"+addr, "v25.0", nil)
	_, err = c.Send(context.Background(), testAuth, SendRequest{Recipient: Recipient{ID: "7"}, Message: &OutMessage{Text: "x"}})
	errs = append(errs, err)
	_, err = c.DebugToken(context.Background(), "42", testSecret, testToken)
	errs = append(errs, err)
	_, err = c.SubscribedApps(context.Background(), testAuth)
	errs = append(errs, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.UserProfile(ctx, testAuth, "7")
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		s := err.Error()
		for _, secret := range []string{testToken, testSecret, proof, url.QueryEscape(testToken)} {
			if strings.Contains(s, secret) {
				t.Errorf("case %d: error leaks a secret: %s", i, s)
			}
		}
		if strings.Contains(s, "access_token=") {
			t.Errorf("case %d: error carries a query string: %s", i, s)
		}
	}
}

func TestUserProfile(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"first_name":"Jürgen","last_name":"Ä","profile_pic":"https://platform-lookaside.fbsbx.com/p?psid=7","id":"7012345678901234"}`)
	p, err := c.UserProfile(context.Background(), testAuth, "7012345678901234")
	if err != nil {
		t.Fatalf("UserProfile: %v", err)
	}
	want := Profile{ID: "7012345678901234", FirstName: "Jürgen", LastName: "Ä", ProfilePic: "https://platform-lookaside.fbsbx.com/p?psid=7"}
	if p != want {
		t.Errorf("profile = %+v", p)
	}
	if rec.method != http.MethodGet || rec.path != "/v25.0/7012345678901234" {
		t.Errorf("request = %s %s", rec.method, rec.path)
	}
	if got := rec.query.Get("fields"); got != "first_name,last_name,profile_pic" {
		t.Errorf("fields = %q", got)
	}
	assertPageAuth(t, rec.query)

	c, _ = fakeGraph(t, 400, `{"error":{"message":"(#230) Requires pages_messaging permission","type":"OAuthException","code":230}}`)
	if _, err := c.UserProfile(context.Background(), testAuth, "7"); !isClass(err, ClassPermission) {
		t.Errorf("err = %v", err)
	}
}

func isClass(err error, c ErrorClass) bool {
	ge, ok := AsGraphError(err)
	return ok && ge.Class() == c
}

func TestDebugToken(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"data":{"app_id":"138483919580948","type":"PAGE","application":"Parley","data_access_expires_at":1726000000,"expires_at":0,"is_valid":true,"issued_at":1718000000,"profile_id":"106123456789012","scopes":["pages_messaging","pages_show_list"],"user_id":"10229"}}`)
	info, err := c.DebugToken(context.Background(), "138483919580948", testSecret, testToken)
	if err != nil {
		t.Fatalf("DebugToken: %v", err)
	}
	want := TokenInfo{
		IsValid: true, AppID: "138483919580948", Type: "PAGE", ProfileID: "106123456789012",
		DataAccessExpiresAt: time.Unix(1726000000, 0).UTC(),
		Scopes:              []string{"pages_messaging", "pages_show_list"},
	}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("info = %+v\nwant   %+v", info, want)
	}
	if !info.ExpiresAt.IsZero() {
		t.Errorf("expires_at 0 should be the zero time, got %v", info.ExpiresAt)
	}
	if info.Class() != "" {
		t.Errorf("valid token has class %q", info.Class())
	}
	if rec.method != http.MethodGet || rec.path != "/v25.0/debug_token" {
		t.Errorf("request = %s %s", rec.method, rec.path)
	}
	if rec.query.Get("input_token") != testToken || rec.query.Get("access_token") != "138483919580948|"+testSecret {
		t.Errorf("query = %v", rec.query)
	}
}

func TestDebugTokenInvalid(t *testing.T) {
	c, _ := fakeGraph(t, 200, `{"data":{"app_id":138483919580948,"type":"PAGE","expires_at":1718000000,"is_valid":false,"scopes":[],"error":{"code":190,"subcode":460,"message":"The session has been invalidated because the user changed their password."}}}`)
	info, err := c.DebugToken(context.Background(), "138483919580948", testSecret, testToken)
	if err != nil {
		t.Fatalf("DebugToken: %v", err)
	}
	if info.IsValid || info.ErrorCode != 190 || info.ErrorSubcode != 460 || !strings.Contains(info.ErrorMessage, "password") {
		t.Errorf("info = %+v", info)
	}
	if info.AppID != "138483919580948" || !info.ExpiresAt.Equal(time.Unix(1718000000, 0)) {
		t.Errorf("info = %+v", info)
	}
	if info.Class() != ClassTokenInvalid {
		t.Errorf("class = %s", info.Class())
	}

	c, _ = fakeGraph(t, 400, `{"error":{"message":"Invalid OAuth access token signature.","type":"OAuthException","code":190,"fbtrace_id":"Z"}}`)
	if _, err := c.DebugToken(context.Background(), "1", "wrong", testToken); !isClass(err, ClassTokenInvalid) {
		t.Errorf("bad app credentials: %v", err)
	}
	c, _ = fakeGraph(t, 200, `{}`)
	if _, err := c.DebugToken(context.Background(), "1", testSecret, testToken); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("no data: %v", err)
	}
	if _, err := c.DebugToken(context.Background(), "", testSecret, testToken); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no app id: %v", err)
	}
}

func TestSubscribeApp(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"success":true}`)
	if err := c.SubscribeApp(context.Background(), testAuth, nil); err != nil {
		t.Fatalf("SubscribeApp: %v", err)
	}
	if rec.method != http.MethodPost || rec.path != "/v25.0/123/subscribed_apps" {
		t.Errorf("request = %s %s", rec.method, rec.path)
	}
	assertPageAuth(t, rec.query)
	if got, want := rec.query.Get("subscribed_fields"), strings.Join(DefaultSubscribedFields, ","); got != want {
		t.Errorf("subscribed_fields = %q, want %q", got, want)
	}
	if err := c.SubscribeApp(context.Background(), testAuth, []string{"messages", "standby"}); err != nil {
		t.Fatal(err)
	}
	if got := rec.query.Get("subscribed_fields"); got != "messages,standby" {
		t.Errorf("subscribed_fields = %q", got)
	}

	c, _ = fakeGraph(t, 200, `{"success":false}`)
	if err := c.SubscribeApp(context.Background(), testAuth, nil); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("success false: %v", err)
	}
	c, _ = fakeGraph(t, 403, `{"error":{"message":"(#200) Permissions error","type":"OAuthException","code":200,"fbtrace_id":"Q"}}`)
	if err := c.SubscribeApp(context.Background(), testAuth, nil); !isClass(err, ClassPermission) {
		t.Errorf("permission: %v", err)
	}
}

func TestSubscribedApps(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"data":[{"category":"Business","link":"https://parley.example/","name":"Parley","id":"138483919580948","subscribed_fields":["messages","message_echoes"]},{"name":"Page Inbox","id":263902037430900}]}`)
	apps, err := c.SubscribedApps(context.Background(), testAuth)
	if err != nil {
		t.Fatalf("SubscribedApps: %v", err)
	}
	want := []SubscribedApp{
		{ID: "138483919580948", Name: "Parley", SubscribedFields: []string{"messages", "message_echoes"}},
		{ID: "263902037430900", Name: "Page Inbox"},
	}
	if !reflect.DeepEqual(apps, want) {
		t.Errorf("apps = %+v", apps)
	}
	if rec.method != http.MethodGet || rec.path != "/v25.0/123/subscribed_apps" {
		t.Errorf("request = %s %s", rec.method, rec.path)
	}
	assertPageAuth(t, rec.query)
}

func TestNewClientDefaults(t *testing.T) {
	c := NewClient("https://graph.facebook.com/", "", nil)
	if c.baseURL != "https://graph.facebook.com" || c.version != DefaultVersion || c.http.Timeout != DefaultTimeout {
		t.Errorf("client = %+v", c)
	}
}

// Without an app secret there is no proof to send (apps that do not require it).
func TestNoAppSecretNoProof(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"data":[]}`)
	if _, err := c.SubscribedApps(context.Background(), PageAuth{PageID: "123", AccessToken: "t"}); err != nil {
		t.Fatal(err)
	}
	if rec.query.Has("appsecret_proof") || rec.query.Get("access_token") != "t" {
		t.Errorf("query = %v", rec.query)
	}
}

func TestPathSegmentsEscaped(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"id":"x"}`)
	if _, err := c.UserProfile(context.Background(), testAuth, "a/b?c"); err != nil {
		t.Fatal(err)
	}
	// The id stays one segment and cannot start the query.
	if rec.escapedPath != "/v25.0/a%2Fb%3Fc" || rec.query.Get("access_token") != testToken || rec.query.Has("c") {
		t.Errorf("path = %q query = %v", rec.escapedPath, rec.query)
	}
}
