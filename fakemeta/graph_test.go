package fakemeta

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTokenChecks(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	e.fake.AddPage(testApp, "444", "Other page", "EAAtoken2")
	path := "/v25.0/" + testPage + "/messages"
	body := textBody(testPSID, "RESPONSE", "", "x")

	st, b, h := e.do(http.MethodPost, path, nil, "application/json", body)
	wantGraphError(t, st, decode(t, b), 400, 104, 0)
	if !strings.Contains(h.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
	}

	st, b, _ = e.do(http.MethodPost, path, auth("garbage", testSecret), "application/json", body)
	er := wantGraphError(t, st, decode(t, b), 400, 190, 0)
	if er["message"] != "Invalid OAuth access token - Cannot parse access token" || er["type"] != "OAuthException" {
		t.Errorf("error = %v", er)
	}

	// Another page's token.
	st, b, _ = e.do(http.MethodPost, path, auth("EAAtoken2", testSecret), "application/json", body)
	wantGraphError(t, st, decode(t, b), 400, 190, 0)

	// /me is the token's page.
	st, b, _ = e.do(http.MethodGet, "/v25.0/me", auth("EAAtoken2", testSecret), "", "")
	if m := decode(t, b); st != 200 || m["id"] != "444" || m["name"] != "Other page" {
		t.Errorf("GET /me = %d %v", st, m)
	}

	// Invalidated tokens fail everywhere with the subcode.
	for _, sub := range []int{458, 459, 460, 463, 464, 467} {
		e.fake.InvalidateToken(testPage, sub)
		st, b, _ = e.do(http.MethodPost, path, auth(testToken, testSecret), "application/json", body)
		er := wantGraphError(t, st, decode(t, b), 400, 190, sub)
		if !strings.HasPrefix(er["message"].(string), "Error validating access token") {
			t.Errorf("message = %q", er["message"])
		}
	}
	st, b, _ = e.do(http.MethodGet, "/v25.0/"+testPage+"/subscribed_apps", auth(testToken, testSecret), "", "")
	wantGraphError(t, st, decode(t, b), 400, 190, 467)
	// The other page is unaffected; a new token for the page works.
	e.fake.AddPage(testApp, testPage, "Acme Support", "EAAtoken3")
	st, b, _ = e.do(http.MethodPost, path, auth("EAAtoken3", testSecret), "application/json", body)
	wantOK(t, st, decode(t, b))
}

func TestAppSecretProof(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	path := "/v25.0/" + testPage + "/messages"
	body := textBody(testPSID, "RESPONSE", "", "x")

	st, b, _ := e.do(http.MethodPost, path, url.Values{"access_token": {testToken}}, "application/json", body)
	er := wantGraphError(t, st, decode(t, b), 400, 100, 0)
	if er["message"] != "API calls from the server require an appsecret_proof argument" || er["type"] != "GraphMethodException" {
		t.Errorf("missing proof: %v", er)
	}
	st, b, _ = e.do(http.MethodPost, path, auth(testToken, "wrong-secret"), "application/json", body)
	er = wantGraphError(t, st, decode(t, b), 400, 100, 0)
	if er["message"] != "Invalid appsecret_proof provided in the API argument" {
		t.Errorf("wrong proof: %v", er)
	}
	st, b, _ = e.do(http.MethodPost, path, auth(testToken, testSecret), "application/json", body)
	wantOK(t, st, decode(t, b))

	// Turned off: no proof needed.
	e2 := newEnv(t, Options{RequireAppSecretProof: Bool(false)})
	e2.customerWrites("hi")
	st, b, _ = e2.do(http.MethodPost, path, url.Values{"access_token": {testToken}}, "application/json", body)
	wantOK(t, st, decode(t, b))
}

func TestVersionAndUnknownRoutes(t *testing.T) {
	e := newEnv(t, Options{})
	st, b, _ := e.do(http.MethodPost, "/v24.0/"+testPage+"/messages", auth(testToken, testSecret), "application/json", "{}")
	er := wantGraphError(t, st, decode(t, b), 400, 2635, 0)
	if !strings.Contains(er["message"].(string), "v25.0") {
		t.Errorf("message = %q", er["message"])
	}
	st, b, _ = e.do(http.MethodGet, "/v25.0/"+testPage+"/feedzz", auth(testToken, testSecret), "", "")
	wantGraphError(t, st, decode(t, b), 400, 2500, 0)
	st, b, _ = e.do(http.MethodGet, "/v25.0/"+testPage+"/messages", auth(testToken, testSecret), "", "")
	wantGraphError(t, st, decode(t, b), 400, 100, 33)

	e26 := newEnv(t, Options{Version: "26.0"})
	if e26.fake.Version() != "v26.0" {
		t.Errorf("Version = %q", e26.fake.Version())
	}
	e26.customerWrites("hi")
	st, b, _ = e26.do(http.MethodPost, "/v26.0/"+testPage+"/messages", auth(testToken, testSecret), "application/json", textBody(testPSID, "RESPONSE", "", "x"))
	wantOK(t, st, decode(t, b))
}

func TestDebugToken(t *testing.T) {
	e := newEnv(t, Options{})
	q := url.Values{"input_token": {testToken}, "access_token": {testApp + "|" + testSecret}}
	st, b, _ := e.do(http.MethodGet, "/v25.0/debug_token", q, "", "")
	m := decode(t, b)
	d, _ := m["data"].(map[string]any)
	if st != 200 || d == nil {
		t.Fatalf("debug_token = %d %v", st, m)
	}
	if d["is_valid"] != true || d["type"] != "PAGE" || d["app_id"] != testApp || d["profile_id"] != testPage ||
		num(d["expires_at"]) != 0 || num(d["data_access_expires_at"]) <= int(e.clock.Now().Unix()) || d["error"] != nil {
		t.Errorf("valid data = %v", d)
	}
	if !strings.Contains(string(b), `"pages_messaging"`) || d["application"] == "" {
		t.Errorf("scopes/application missing: %s", b)
	}

	e.fake.InvalidateToken(testPage, 0)
	st, b, _ = e.do(http.MethodGet, "/v25.0/debug_token", q, "", "")
	d = decode(t, b)["data"].(map[string]any)
	er, _ := d["error"].(map[string]any)
	if st != 200 || d["is_valid"] != false || er == nil || num(er["code"]) != 190 || num(er["subcode"]) != 460 || er["message"] == "" {
		t.Errorf("invalidated = %d %v", st, d)
	}

	// A token Meta never issued.
	q.Set("input_token", "nope")
	st, b, _ = e.do(http.MethodGet, "/v25.0/debug_token", q, "", "")
	d = decode(t, b)["data"].(map[string]any)
	if st != 200 || d["is_valid"] != false || num(d["error"].(map[string]any)["code"]) != 190 {
		t.Errorf("unknown token = %d %v", st, d)
	}

	// Bad app credentials.
	q.Set("access_token", testApp+"|wrong")
	st, b, _ = e.do(http.MethodGet, "/v25.0/debug_token", q, "", "")
	wantGraphError(t, st, decode(t, b), 400, 190, 0)

	// Injected failure on debug_token.
	q.Set("access_token", testApp+"|"+testSecret)
	e.fake.FailNext(Failure{Op: OpDebugToken, Code: 2})
	st, b, _ = e.do(http.MethodGet, "/v25.0/debug_token", q, "", "")
	wantGraphError(t, st, decode(t, b), 500, 2, 0)

	// The call log redacts credentials.
	for _, c := range e.fake.Calls() {
		if c.Op != OpDebugToken || c.Query.Get("access_token") != "***" || c.Query.Get("input_token") != "***" {
			t.Errorf("call = %+v", c)
		}
	}
}

func TestProfile(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.SetUserProfile(testPage, testPSID, "Zoë", "Martin", true)
	e.fake.SetUserProfile(testPage, "777", "Hidden", "Person", false)
	q := auth(testToken, testSecret)
	q.Set("fields", "first_name,last_name,profile_pic")
	st, b, _ := e.do(http.MethodGet, "/v25.0/"+testPSID, q, "", "")
	m := decode(t, b)
	if st != 200 || m["first_name"] != "Zoë" || m["last_name"] != "Martin" || m["id"] != testPSID ||
		!strings.HasPrefix(m["profile_pic"].(string), "https://platform-lookaside.fbsbx.com/") {
		t.Errorf("profile = %d %v", st, m)
	}
	if !strings.Contains(string(b), `Zo\u00eb`) {
		t.Errorf("profile not escaped like Meta: %s", b)
	}

	for _, psid := range []string{"777", "unknown-psid"} {
		st, b, _ = e.do(http.MethodGet, "/v25.0/"+psid, q, "", "")
		wantGraphError(t, st, decode(t, b), 400, 100, 33)
	}
	q.Set("fields", "locale")
	st, b, _ = e.do(http.MethodGet, "/v25.0/"+testPSID, q, "", "")
	wantGraphError(t, st, decode(t, b), 400, 100, 0)

	e.fake.FailNext(Failure{Op: OpProfile, Code: 613})
	q.Set("fields", "first_name")
	st, b, _ = e.do(http.MethodGet, "/v25.0/"+testPSID, q, "", "")
	wantGraphError(t, st, decode(t, b), 400, 613, 0)
	calls := e.fake.Calls()
	if c := calls[len(calls)-1]; c.Op != OpProfile || c.PageID != testPage || c.Status != 400 {
		t.Errorf("call = %+v", c)
	}
}

func TestSubscribedApps(t *testing.T) {
	e := newEnv(t, Options{})
	path := "/v25.0/" + testPage + "/subscribed_apps"
	st, b, _ := e.do(http.MethodGet, path, auth(testToken, testSecret), "", "")
	m := decode(t, b)
	data := m["data"].([]any)
	if st != 200 || len(data) != 1 || data[0].(map[string]any)["id"] != testApp || len(data[0].(map[string]any)["subscribed_fields"].([]any)) != 12 {
		t.Fatalf("GET = %d %v", st, m)
	}

	// Missing or bad fields.
	st, b, _ = e.do(http.MethodPost, path, auth(testToken, testSecret), "", "")
	wantGraphError(t, st, decode(t, b), 400, 100, 0)
	q := auth(testToken, testSecret)
	q.Set("subscribed_fields", "messages,bogus")
	st, b, _ = e.do(http.MethodPost, path, q, "", "")
	wantGraphError(t, st, decode(t, b), 400, 100, 0)

	// As form fields, with the token in the form too.
	form := auth(testToken, testSecret)
	form.Set("subscribed_fields", "messages,message_echoes")
	st, b, _ = e.do(http.MethodPost, path, nil, "application/x-www-form-urlencoded", form.Encode())
	if m := decode(t, b); st != 200 || m["success"] != true {
		t.Fatalf("POST = %d %v", st, m)
	}
	st, b, _ = e.do(http.MethodGet, "/v25.0/me/subscribed_apps", auth(testToken, testSecret), "", "")
	if !strings.Contains(string(b), `"subscribed_fields":["messages","message_echoes"]`) {
		t.Errorf("GET after POST = %d %s", st, b)
	}

	st, _, _ = e.do(http.MethodDelete, path, auth(testToken, testSecret), "", "")
	if st != 200 {
		t.Fatalf("DELETE = %d", st)
	}
	_, b, _ = e.do(http.MethodGet, path, auth(testToken, testSecret), "", "")
	if len(decode(t, b)["data"].([]any)) != 0 {
		t.Errorf("still subscribed: %s", b)
	}
	if _, err := e.fake.CustomerSends(t.Context(), testPage, testPSID, "anyone?"); err == nil {
		t.Error("delivered to an unsubscribed app")
	}
}

func TestCatalogue(t *testing.T) {
	want := [][2]int{{10, 2018278}, {10, 2018065}, {10, 2018108}, {200, 1545041}, {551, 0}, {230, 0}, {200, 2018028},
		{100, 2018001}, {100, 2018109}, {190, 458}, {190, 459}, {190, 460}, {190, 463}, {190, 464}, {190, 467},
		{10, 1893063}, {1, 0}, {2, 0}, {1200, 0}, {4, 0}, {17, 0}, {32, 0}, {613, 0}, {341, 0}, {4, 2018022}, {368, 0}}
	have := map[[2]int]CatalogueEntry{}
	for _, c := range Catalogue() {
		have[[2]int{c.Code, c.Subcode}] = c
	}
	for _, w := range want {
		c, ok := have[w]
		if !ok {
			t.Errorf("catalogue lacks %d/%d", w[0], w[1])
			continue
		}
		if c.Message == "" || c.Type == "" || c.HTTPStatus == 0 {
			t.Errorf("incomplete entry %+v", c)
		}
	}
	// Every catalogue error can be injected and comes back intact.
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	for _, w := range want {
		e.fake.FailNext(Failure{Op: OpSend, Code: w[0], Subcode: w[1]})
		st, b := e.send(textBody(testPSID, "RESPONSE", "", "x"))
		er := wantGraphError(t, st, b, have[w].HTTPStatus, w[0], w[1])
		if er["message"] != have[w].Message {
			t.Errorf("%v: message %q", w, er["message"])
		}
	}
}
