package gateway_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"parley/testenv"
	"parley/workflows"
)

const (
	appID     = "100000000000042"
	appSecret = "s3cr3t-app-secret-0123456789abcdef"
	pageID    = "200000000000042"
	token     = "EAAtoken-0123456789abcdefghijklmnop"
)

func sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// post sends body to the callback URL as Meta would, signed with secret ("" = unsigned).
func post(t *testing.T, callback string, body []byte, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, callback, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

type event struct {
	psid, mid, text string
	ts              int64
}

// envelope is Meta's webhook body: one entry per page with several messaging events.
func envelope(page string, events ...event) []byte {
	var ms []string
	for _, e := range events {
		text, _ := json.Marshal(e.text)
		ms = append(ms, fmt.Sprintf(`{"sender":{"id":"%s"},"recipient":{"id":"%s"},"timestamp":%d,"message":{"mid":"%s","text":%s}}`,
			e.psid, page, e.ts, e.mid, text))
	}
	return []byte(fmt.Sprintf(`{"object":"page","entry":[{"id":"%s","time":%d,"messaging":[%s]}]}`,
		page, time.Now().UnixMilli(), strings.Join(ms, ",")))
}

type conversation struct {
	ID           string `json:"id"`
	PSID         string `json:"psid"`
	PageID       string `json:"page_id"`
	State        string `json:"state"`
	WorkflowID   string `json:"workflow_id"`
	MessageCount int    `json:"message_count"`
}

type message struct {
	Seq       int64  `json:"seq"`
	MID       string `json:"mid"`
	Text      string `json:"text"`
	Direction string `json:"direction"`
	Sender    string `json:"sender"`
}

func conversations(e *testenv.Env, query string) []conversation {
	var out struct{ Data []conversation }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?"+query, nil, &out)
	return out.Data
}

func transcript(e *testenv.Env, id string) []string {
	var out struct{ Data []message }
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+id+"/messages", nil, &out)
	var texts []string
	for _, m := range out.Data {
		texts = append(texts, m.MID+":"+m.Text)
	}
	return texts
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 30s; last seen: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func transcriptOf(t *testing.T, e *testenv.Env, psid string, want []string) {
	t.Helper()
	eventually(t, "transcript of "+psid, func() (bool, string) {
		cs := conversations(e, "page_id="+pageID+"&psid="+psid)
		if len(cs) != 1 {
			return false, fmt.Sprintf("%d conversations", len(cs))
		}
		got := transcript(e, cs[0].ID)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
	})
}

// TestWebhookToConversation is the foundation's end-to-end path over real
// HTTP against a real Temporal dev server.
func TestWebhookToConversation(t *testing.T) {
	e := testenv.Start(t, testenv.Options{SignalTimeout: 2 * time.Second})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme Support", token)
	if page.ProvisioningState != "awaiting_verification" || page.CallbackURL == "" || page.VerifyToken == "" {
		t.Fatalf("new page = %+v, want awaiting_verification with a callback URL and verify token", page)
	}

	// Meta's handshake: right token echoes the challenge byte for byte, wrong one is refused.
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"wrong"}, "hub.challenge": {"1158201444"}}
	if status, _ := get(t, page.CallbackURL+"?"+q.Encode()); status != http.StatusForbidden {
		t.Errorf("handshake with a wrong verify token: %d, want 403", status)
	}
	q.Set("hub.verify_token", page.VerifyToken)
	if status, body := get(t, page.CallbackURL+"?"+q.Encode()); status != http.StatusOK || body != "1158201444" {
		t.Errorf("handshake: %d %q, want 200 and the challenge", status, body)
	}
	var got testenv.Page
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/pages/"+page.ID, nil, &got)
	if got.ProvisioningState != "running" {
		t.Errorf("after the handshake the page is %s (%s), want running", got.ProvisioningState, got.ProvisioningReason)
	}

	// One POST batching 3 messages for 2 customers.
	now := time.Now().UnixMilli()
	batch := envelope(pageID,
		event{"psid-a", "m_a1", "Hello, my order is late", now},
		event{"psid-b", "m_b1", "Bonjour, une question \u00e4 propos", now + 1},
		event{"psid-a", "m_a2", "It was due on Monday", now + 2},
	)
	if status, body := post(t, page.CallbackURL, batch, sign(batch, appSecret)); status != http.StatusOK {
		t.Fatalf("signed batch: %d %s, want 200", status, body)
	}
	transcriptOf(t, e, "psid-a", []string{"m_a1:Hello, my order is late", "m_a2:It was due on Monday"})
	transcriptOf(t, e, "psid-b", []string{"m_b1:Bonjour, une question \u00e4 propos"})
	if cs := conversations(e, "page_id="+pageID); len(cs) != 2 {
		t.Fatalf("%d conversations for the page, want 2", len(cs))
	}

	// Meta retries the same POST: acknowledged, nothing recorded twice. A
	// later message proves the retry was processed before we look.
	if status, _ := post(t, page.CallbackURL, batch, sign(batch, appSecret)); status != http.StatusOK {
		t.Fatalf("retried batch: %d, want 200", status)
	}
	later := envelope(pageID, event{"psid-a", "m_a3", "Any news?", now + 3})
	if status, _ := post(t, page.CallbackURL, later, sign(later, appSecret)); status != http.StatusOK {
		t.Fatalf("later message: %d, want 200", status)
	}
	transcriptOf(t, e, "psid-a", []string{"m_a1:Hello, my order is late", "m_a2:It was due on Monday", "m_a3:Any news?"})
	transcriptOf(t, e, "psid-b", []string{"m_b1:Bonjour, une question \u00e4 propos"})

	// A wrong signature: 401, and no conversation is started.
	forged := envelope(pageID, event{"psid-c", "m_c1", "forged", now + 4})
	for name, sig := range map[string]string{"wrong secret": sign(forged, "not-the-secret"), "missing": ""} {
		if status, body := post(t, page.CallbackURL, forged, sig); status != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("%s signature: %d %s, want 401 with a JSON error", name, status, body)
		}
	}
	ctx := context.Background()
	_, err := e.Temporal().DescribeWorkflowExecution(ctx, workflows.ConversationWorkflowID(pageID, "psid-c"), "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("a forged webhook started a workflow (describe: %v)", err)
	}
	if cs := conversations(e, "psid=psid-c"); len(cs) != 0 {
		t.Errorf("a forged webhook created %d conversations", len(cs))
	}

	// Temporal down: 503 so that Meta retries; the same POST once it is back is recorded exactly once.
	e.StopTemporal()
	outage := envelope(pageID, event{"psid-b", "m_b2", "Are you there?", now + 5})
	if status, body := post(t, page.CallbackURL, outage, sign(outage, appSecret)); status != http.StatusServiceUnavailable {
		t.Fatalf("with Temporal stopped: %d %s, want 503", status, body)
	}
	e.StartTemporal()
	eventually(t, "the gateway accepts again once Temporal is back", func() (bool, string) {
		status, body := post(t, page.CallbackURL, outage, sign(outage, appSecret))
		return status == http.StatusOK, fmt.Sprint(status, " ", body)
	})
	transcriptOf(t, e, "psid-b", []string{"m_b1:Bonjour, une question \u00e4 propos", "m_b2:Are you there?"})
}
