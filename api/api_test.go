package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"parley/fakemeta"
	"parley/testenv"
)

const (
	appID     = "100000000000051"
	appSecret = "app-secret-for-api-tests-0123456789"
	pageID    = "200000000000051"
	token     = "EAApage-token-for-api-tests-abcdefgh"
)

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// wantError checks the status and the one error shape.
func wantError(t *testing.T, what string, status int, raw []byte, wantStatus int, wantField string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d (%s)", what, status, wantStatus, raw)
		return
	}
	var e apiError
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Errorf("%s: body %s is not {\"error\":{\"code\",\"message\"}} (%v)", what, raw, err)
		return
	}
	if e.Error.Field != wantField {
		t.Errorf("%s: error field %q, want %q (%s)", what, e.Error.Field, wantField, e.Error.Message)
	}
}

func TestErrorsHaveOneShapeAndTheRightStatus(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	e.CreatePage(acct, pageID, "Acme", token)

	s, raw := e.DoWithKey("", http.MethodGet, "/api/v1/accounts", nil)
	wantError(t, "no API key", s, raw, http.StatusUnauthorized, "")
	s, raw = e.DoWithKey("pk_wrong", http.MethodGet, "/api/v1/accounts", nil)
	wantError(t, "unknown API key", s, raw, http.StatusUnauthorized, "")

	var created struct {
		Secret string `json:"secret"`
	}
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/api-keys", map[string]string{"name": "sup", "role": "supervisor"}, &created)
	s, raw = e.DoWithKey(created.Secret, http.MethodPost, "/api/v1/accounts", map[string]string{"name": "x", "app_id": "1", "app_secret": appSecret})
	wantError(t, "supervisor creating an account", s, raw, http.StatusForbidden, "")
	if s, raw = e.DoWithKey(created.Secret, http.MethodGet, "/api/v1/conversations", nil); s != http.StatusOK {
		t.Errorf("supervisor listing conversations: %d %s", s, raw)
	}

	s, raw = e.Do(http.MethodPost, "/api/v1/accounts", map[string]string{"name": "", "app_id": "1", "app_secret": appSecret})
	wantError(t, "empty name", s, raw, http.StatusBadRequest, "name")
	s, raw = e.Do(http.MethodPost, "/api/v1/accounts", map[string]string{"name": "x", "app_id": "12ab", "app_secret": appSecret})
	wantError(t, "non-numeric app id", s, raw, http.StatusBadRequest, "app_id")
	s, raw = e.Do(http.MethodPost, "/api/v1/accounts", map[string]any{"name": "x", "app_id": 12, "app_secret": appSecret})
	wantError(t, "app id as a number", s, raw, http.StatusBadRequest, "app_id")
	s, raw = e.Do(http.MethodPost, "/api/v1/accounts", map[string]string{"name": "x", "app_id": "1", "app_secret": appSecret, "colour": "red"})
	wantError(t, "unknown field", s, raw, http.StatusBadRequest, "colour")
	s, raw = e.Do(http.MethodPost, "/api/v1/accounts", []byte(`{"name":`))
	wantError(t, "truncated JSON", s, raw, http.StatusBadRequest, "")
	s, raw = e.Do(http.MethodPost, "/api/v1/accounts/"+acct.ID+"/pages", map[string]string{"name": "Acme", "page_id": pageID, "access_token": token})
	wantError(t, "same page twice in one account", s, raw, http.StatusConflict, "")
	s, raw = e.Do(http.MethodGet, "/api/v1/accounts/does-not-exist", nil)
	wantError(t, "unknown account", s, raw, http.StatusNotFound, "")
	s, raw = e.Do(http.MethodGet, "/api/v1/nothing-here", nil)
	wantError(t, "unknown route", s, raw, http.StatusNotFound, "")
	s, raw = e.Do(http.MethodGet, "/api/v1/conversations?state=sleeping", nil)
	wantError(t, "bad state filter", s, raw, http.StatusBadRequest, "state")
	s, raw = e.Do(http.MethodGet, "/api/v1/conversations?limit=0", nil)
	wantError(t, "bad limit", s, raw, http.StatusBadRequest, "limit")
	s, raw = e.Do(http.MethodGet, "/api/v1/conversations?cursor=garbage", nil)
	wantError(t, "bad cursor", s, raw, http.StatusBadRequest, "cursor")

	big := map[string]string{"name": strings.Repeat("x", 2<<20), "app_id": "1", "app_secret": appSecret}
	s, raw = e.Do(http.MethodPost, "/api/v1/accounts", big)
	wantError(t, "2 MiB body", s, raw, http.StatusRequestEntityTooLarge, "")

	req, _ := http.NewRequest(http.MethodPost, e.URL+"/api/v1/accounts", strings.NewReader("name=x"))
	req.Header.Set("Authorization", "Bearer "+e.AdminKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	validateExchange(t, req, []byte("name=x"), resp.StatusCode, resp.Header, buf.Bytes())
	wantError(t, "form body", resp.StatusCode, buf.Bytes(), http.StatusUnsupportedMediaType, "")
}

func TestSecretsAreEncryptedAndNeverReturned(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	newToken := "EAArotated-token-abcdefghijklmnopqrst"
	e.Meta.AddPage(appID, pageID, "Acme", newToken)
	newSecret := "rotated-app-secret-0123456789abcdef"

	var bodies []string
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/v1/accounts", nil},
		{http.MethodGet, "/api/v1/accounts/" + acct.ID, nil},
		{http.MethodGet, "/api/v1/accounts/" + acct.ID + "/pages", nil},
		{http.MethodGet, "/api/v1/pages", nil},
		{http.MethodGet, "/api/v1/pages/" + page.ID, nil},
		{http.MethodPost, "/api/v1/pages/" + page.ID + "/check", nil},
		{http.MethodPut, "/api/v1/pages/" + page.ID + "/access-token", map[string]string{"access_token": newToken}},
		{http.MethodPatch, "/api/v1/accounts/" + acct.ID, map[string]string{"app_secret": newSecret}},
	} {
		s, raw := e.Do(r.method, r.path, r.body)
		if s != http.StatusOK {
			t.Errorf("%s %s: %d %s", r.method, r.path, s, raw)
		}
		bodies = append(bodies, string(raw))
	}
	for _, secret := range []string{appSecret, token, newToken, newSecret} {
		for i, b := range bodies {
			if strings.Contains(b, secret) {
				t.Errorf("response %d contains a secret: %s", i, b)
			}
		}
	}
	if !strings.Contains(bodies[1], `"app_secret_hint"`) || !strings.Contains(bodies[4], `"access_token_hint"`) {
		t.Errorf("hints missing: %s / %s", bodies[1], bodies[4])
	}

	// Every column of every row of every table, as text: no plaintext secret.
	cells := 0
	if err := e.App.Store.EachCell(t.Context(), func(table, column, value string) {
		cells++
		for _, secret := range []string{appSecret, token, newToken, newSecret} {
			if strings.Contains(value, secret) {
				t.Errorf("table %s column %s holds a plaintext secret", table, column)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if cells < 20 {
		t.Fatalf("read only %d cells: the scan is broken", cells)
	}
}

func TestPageProvisioning(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	if page.ProvisioningState != "awaiting_verification" {
		t.Fatalf("new page: %s (%s), want awaiting_verification", page.ProvisioningState, page.ProvisioningReason)
	}
	e.ConnectWebhook(appID, page)
	var p testenv.Page
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages/"+page.ID, nil, &p)
	if p.ProvisioningState != "running" {
		t.Fatalf("after the handshake: %s (%s), want running", p.ProvisioningState, p.ProvisioningReason)
	}

	// Meta kills the token: the next check says so, with Meta's code.
	e.Meta.InvalidateToken(pageID, 460)
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/pages/"+page.ID+"/check", nil, &p)
	if p.ProvisioningState != "token_invalid" || !strings.Contains(p.ProvisioningReason, "190") {
		t.Errorf("dead token: %s (%s), want token_invalid naming code 190", p.ProvisioningState, p.ProvisioningReason)
	}
	// The admin rotates it: running again, nothing else lost.
	fresh := "EAAfresh-token-0123456789abcdefghijk"
	e.Meta.AddPage(appID, pageID, "Acme", fresh)
	e.MustDo(http.StatusOK, http.MethodPut, "/api/v1/pages/"+page.ID+"/access-token", map[string]string{"access_token": fresh}, &p)
	if p.ProvisioningState != "running" || p.CallbackURL != page.CallbackURL {
		t.Errorf("after rotation: %s (%s), callback %s, want running with the same callback", p.ProvisioningState, p.ProvisioningReason, p.CallbackURL)
	}

	// The same Facebook page in another account: saved without callback URL or verify token.
	other := e.CreateAccount("100000000000052", "another-app-secret-0123456789abc")
	e.Meta.AddPage("100000000000052", pageID, "Acme", "EAAother-token-0123456789abcdefghij")
	var dup testenv.Page
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/accounts/"+other.ID+"/pages",
		map[string]string{"name": "Acme again", "page_id": pageID, "access_token": "EAAother-token-0123456789abcdefghij"}, &dup)
	if dup.ProvisioningState != "duplicate" || dup.CallbackURL != "" || dup.VerifyToken != "" || !strings.Contains(dup.ProvisioningReason, acct.ID) {
		t.Errorf("duplicate page = %+v, want state duplicate naming account %s and no callback", dup, acct.ID)
	}

	// A token Meta never issued for this page.
	third := e.CreateAccount("100000000000053", "third-app-secret-0123456789abcdef")
	var bad testenv.Page
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/accounts/"+third.ID+"/pages",
		map[string]string{"name": "Other", "page_id": "200000000000053", "access_token": "EAAnever-issued-0123456789abcdefgh"}, &bad)
	if bad.ProvisioningState != "token_invalid" {
		t.Errorf("unknown token: %s (%s), want token_invalid", bad.ProvisioningState, bad.ProvisioningReason)
	}

	// Deleting the page: its callback URL is the app's (Meta has one per
	// app) and keeps serving the account's other pages; the page is gone.
	e.MustDo(http.StatusOK, http.MethodDelete, "/api/v1/pages/"+page.ID, nil, nil)
	resp, err := http.Get(page.CallbackURL + "?hub.mode=subscribe&hub.verify_token=" + page.VerifyToken + "&hub.challenge=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("handshake on a deleted page's callback, its account alive: %d, want 200", resp.StatusCode)
	}
	if s, raw := e.Do(http.MethodGet, "/api/v1/pages/"+page.ID, nil); s != http.StatusNotFound {
		t.Errorf("deleted page still served: %d %s", s, raw)
	}
}

func TestReadiness(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	if s, raw := e.DoWithKey("", http.MethodGet, "/healthz", nil); s != http.StatusOK {
		t.Errorf("healthz: %d %s", s, raw)
	}
	if s, raw := e.DoWithKey("", http.MethodGet, "/readyz", nil); s != http.StatusOK {
		t.Errorf("readyz with everything up: %d %s", s, raw)
	}
	e.StopTemporal()
	s, raw := e.DoWithKey("", http.MethodGet, "/readyz", nil)
	if s != http.StatusServiceUnavailable || !strings.Contains(string(raw), `"temporal":"unreachable"`) {
		t.Errorf("readyz with Temporal down: %d %s, want 503 naming temporal", s, raw)
	}
	if s, _ := e.DoWithKey("", http.MethodGet, "/api/openapi.yaml", nil); s != http.StatusOK {
		t.Errorf("openapi document: %d", s)
	}
}

func TestDeletingAnAccountStopsWebhooksAndKeepsHistory(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-1", "hello"); err != nil {
		t.Fatalf("customer message: %v", err)
	}
	var list struct {
		Data []struct {
			ID           string `json:"id"`
			MessageCount int    `json:"message_count"`
		} `json:"data"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(list.Data) == 0 || list.Data[0].MessageCount == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the message never reached a conversation: %+v", list)
		}
		time.Sleep(100 * time.Millisecond)
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?page_id="+pageID, nil, &list)
	}

	e.MustDo(http.StatusNoContent, http.MethodDelete, "/api/v1/accounts/"+acct.ID, nil, nil)
	if s, _ := e.Do(http.MethodGet, "/api/v1/pages/"+page.ID, nil); s != http.StatusNotFound {
		t.Errorf("the deleted account's page is still served: %d", s)
	}
	_, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-1", "anyone?")
	var de *fakemeta.DeliveryError
	if !errors.As(err, &de) || de.Status != http.StatusNotFound {
		t.Errorf("webhook after the account was deleted: %v, want 404", err)
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?page_id="+pageID, nil, &list)
	if len(list.Data) != 1 {
		t.Fatalf("history lost: %+v", list)
	}
	var msgs struct{ Data []struct{ Text string } }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+list.Data[0].ID+"/messages", nil, &msgs)
	if len(msgs.Data) != 1 || msgs.Data[0].Text != "hello" {
		t.Errorf("transcript after deletion = %+v, want the one message", msgs.Data)
	}
}

func jsonUnmarshal(raw []byte, out any) error { return json.Unmarshal(raw, out) }
