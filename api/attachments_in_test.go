package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"parley/fakemeta"
	"parley/testenv"
)

type attJSON struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	StickerID   int64  `json:"sticker_id"`
	Note        string `json:"note"`
}

type msgWithFiles struct {
	ID          string    `json:"id"`
	Direction   string    `json:"direction"`
	Text        string    `json:"text"`
	ErrorReason string    `json:"error_reason"`
	Attachments []attJSON `json:"attachments"`
}

// Issue 8, acceptance 3 (inbound): with customer files allowed, the agent
// fetches each file from Parley after Meta's link has expired, a sticker's
// duplicate image is recorded once, and a file whose bytes are not what
// Meta said is not kept; with them off, the agent sees an entry saying a
// file came, nothing is downloaded, and Meta's URL is nowhere in the
// database.
func TestCustomerFilesAreKeptByParleyOrRefusedLeavingNoURL(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "attachments": map[string]bool{"customer": true, "agent": false},
	}, &ws)
	agent := e.CreateAgent("Ada", "ada@example.com")

	// A conversation assigned to Ada.
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-files", "Here is the photo of the damage"); err != nil {
		t.Fatal(err)
	}
	convID := waitForConversation(t, e, "psid-files")
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+convID+"/assign", map[string]string{"agent_id": agent.ID}, nil)

	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 3000)...)
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 5000)...)
	files := []fakemeta.CDNFile{
		{Type: "image", ContentType: "image/png", Data: png},
		{Type: "file", ContentType: "application/pdf", Data: pdf},
		{Type: "sticker", ContentType: "image/png", Data: png[:100], StickerID: 369239263222822, DuplicateImage: true},
		{Type: "video", ContentType: "text/html", Data: []byte("<html>not a video</html>")},
	}
	if _, err := e.Meta.CustomerSendsFiles(t.Context(), pageID, "psid-files", e.MetaURL, files); err != nil {
		t.Fatal(err)
	}
	msg := waitForFiles(t, e, agent.Key, convID, 4)
	byType := map[string]attJSON{}
	for _, a := range msg.Attachments {
		if _, dup := byType[a.Type]; dup {
			t.Errorf("%s recorded twice: %+v", a.Type, msg.Attachments)
		}
		byType[a.Type] = a
	}
	if got := len(msg.Attachments); got != 4 {
		t.Fatalf("attachments = %+v, want image, file, sticker (its duplicate image once) and video", msg.Attachments)
	}
	if v := byType["video"]; v.Status != "failed" || !strings.Contains(v.Note, "text/html") || v.URL != "" {
		t.Errorf("video served as text/html = %+v, want failed with why", v)
	}
	if s := byType["sticker"]; s.StickerID != 369239263222822 || s.Status != "kept" {
		t.Errorf("sticker = %+v", s)
	}

	// Meta's links expire; Parley's keep working.
	e.Meta.ExpireCDN()
	gets := e.Meta.CDNGets()
	for typ, want := range map[string][]byte{"image": png, "file": pdf, "sticker": png[:100]} {
		a := byType[typ]
		if a.Status != "kept" || !strings.HasPrefix(a.URL, e.URL+"/api/v1/conversations/"+convID+"/attachments/") {
			t.Errorf("%s = %+v, want kept with a Parley URL", typ, a)
			continue
		}
		path := strings.TrimPrefix(a.URL, e.URL)
		status, body := e.DoWithKey(agent.Key, http.MethodGet, path, nil)
		if status != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("agent GET %s: %d, %d bytes, want 200 and the customer's %d bytes", typ, status, len(body), len(want))
		}
		if a.Size != int64(len(want)) {
			t.Errorf("%s size = %d, want %d", typ, a.Size, len(want))
		}
		// Another agent may not read it.
		other := e.CreateAgent("Eve "+typ, typ+"@example.com")
		if status, _ := e.DoWithKey(other.Key, http.MethodGet, path, nil); status != http.StatusNotFound {
			t.Errorf("another agent GET %s: %d, want 404", typ, status)
		}
	}
	if e.Meta.CDNGets() != gets {
		t.Error("Parley went back to Meta's CDN for a kept file")
	}

	// Customer files off: an entry, no file, no URL anywhere.
	e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws.ID, map[string]any{
		"attachments": map[string]bool{"customer": false, "agent": false},
	}, nil)
	if _, err := e.Meta.CustomerSends(t.Context(), pageID, "psid-nofiles", "hello"); err != nil {
		t.Fatal(err)
	}
	offID := waitForConversation(t, e, "psid-nofiles")
	before := e.Meta.CDNGets()
	secret := []byte("%PDF-1.4 secret contract")
	if _, err := e.Meta.CustomerSendsFiles(t.Context(), pageID, "psid-nofiles", e.MetaURL, []fakemeta.CDNFile{
		{Type: "file", ContentType: "application/pdf", Data: secret},
	}); err != nil {
		t.Fatal(err)
	}
	off := waitForFiles(t, e, e.AdminKey, offID, 1)
	if a := off.Attachments[0]; a.Status != "refused" || a.URL != "" || !strings.Contains(a.Note, "does not accept files") {
		t.Errorf("refused file = %+v", a)
	}
	if !strings.Contains(off.ErrorReason, "attachments from customers are off") {
		t.Errorf("entry error_reason = %q", off.ErrorReason)
	}
	time.Sleep(500 * time.Millisecond) // a download, if any, would have started
	if e.Meta.CDNGets() != before {
		t.Error("a refused file was downloaded")
	}
	cells := 0
	if err := e.App.Store.EachCell(t.Context(), func(table, column, value string) {
		cells++
		// Meta escapes "/" in its JSON: look for what survives escaping.
		if strings.Contains(value, "_cdn") || strings.Contains(value, strings.TrimPrefix(e.MetaURL, "http://")) {
			t.Errorf("Meta's file URL is stored in %s.%s: %.200s", table, column, value)
		}
		if strings.Contains(value, string(secret)) {
			t.Errorf("the refused file's bytes are in %s.%s", table, column)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if cells < 100 {
		t.Fatalf("read only %d cells: the audit missed the database", cells)
	}
}

// waitForFiles waits until the conversation's last customer message has n
// attachments, none pending.
func waitForFiles(t *testing.T, e *testenv.Env, key, convID string, n int) msgWithFiles {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Data []msgWithFiles }
		status, raw := e.DoWithKey(key, http.MethodGet, "/api/v1/conversations/"+convID+"/messages", nil)
		if status != http.StatusOK {
			t.Fatalf("messages: %d %s", status, raw)
		}
		decodeJSON(t, raw, &list)
		for i := len(list.Data) - 1; i >= 0; i-- {
			m := list.Data[i]
			if m.Direction != "in" || len(m.Attachments) != n {
				continue
			}
			pending := false
			for _, a := range m.Attachments {
				pending = pending || a.Status == "pending"
			}
			if !pending {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no customer message with %d kept attachments within 30 s: %s", n, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
