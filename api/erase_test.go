package api_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"parley/fakemeta"
	"parley/payloadcodec"
	"parley/testenv"
	"parley/workflows"
)

// Issue 8, acceptance 4: erasing a customer (through its contact) leaves
// nothing of them readable. Every cell of every table, every file of the
// blob store and every event of the customer's workflow histories (read
// through the Temporal API without the codec) is searched for the
// customer's name, what they wrote, what the agent answered and the bytes
// of the file they sent: none is found in clear, and Parley's codec can no
// longer decrypt the histories' payloads. Counts and timestamps remain.
func TestEraseLeavesNothingOfTheCustomerReadable(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	page := e.CreatePage(acct, pageID, "Acme", token)
	e.ConnectWebhook(appID, page)
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{
		"name": "Acme", "page": page.ID, "attachments": map[string]bool{"customer": true, "agent": false},
	}, nil)
	agent := e.CreateAgent("Grace", "grace@example.com")
	const psid = "psid-erase-me"
	const (
		first, last   = "Zenobia", "Quillfeather"
		customerText  = "erase-proof: I live at 12 Rue Zenobia"
		customerText2 = "erase-proof: my card ends 4242"
		agentText     = "erase-proof reply: noted your address"
		fileMarker    = "ERASE-PROOF-FILE-BYTES-91d2"
	)
	e.Meta.SetUserProfile(pageID, psid, first, last, true)
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, customerText); err != nil {
		t.Fatal(err)
	}
	convID := waitForConversation(t, e, psid)
	var contact struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/contacts", map[string]any{
		"name": first + " " + last, "emails": []string{"zenobia@example.com"}, "notes": "prefers mornings",
	}, &contact)
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+convID+"/contact", map[string]string{"contact_id": contact.ID}, nil)
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+convID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/messages", map[string]string{"text": agentText}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, customerText2); err != nil {
		t.Fatal(err)
	}
	fileBytes := []byte("%PDF-1.4 " + fileMarker)
	if _, err := e.Meta.CustomerSendsFiles(ctx, pageID, psid, e.MetaURL, []fakemeta.CDNFile{{Type: "file", ContentType: "application/pdf", Data: fileBytes}}); err != nil {
		t.Fatal(err)
	}
	waitForFiles(t, e, e.AdminKey, convID, 1)
	secrets := []string{first, last, customerText, customerText2, agentText, fileMarker, "zenobia@example.com", "prefers mornings"}

	// Before: the database holds them (the search can find them).
	found := dbHolds(t, e, secrets)
	for _, s := range []string{last, customerText, agentText} {
		if !found[s] {
			t.Fatalf("before the erase the database lacks %q: the search is broken", s)
		}
	}
	var before struct {
		MessageCount int `json:"message_count"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID, nil, &before)

	// Erase without the contact: refused, pointing at the contact.
	if status, raw := e.Do(http.MethodPost, "/api/v1/pages/"+page.ID+"/customers/"+psid+"/erase", nil); status != http.StatusConflict || !strings.Contains(string(raw), contact.ID) {
		t.Errorf("erase of a customer with a contact: %d %s, want 409 naming the contact", status, raw)
	}
	// Agents may not erase.
	if status, _ := e.DoWithKey(agent.Key, http.MethodDelete, "/api/v1/contacts/"+contact.ID+"?erase=true", nil); status != http.StatusForbidden {
		t.Errorf("agent erase: %d, want 403", status)
	}
	var erased struct {
		Customers []struct {
			Conversations      []string `json:"conversations"`
			EndedRunning       bool     `json:"ended_running_conversation"`
			MessagesEmptied    int      `json:"messages_emptied"`
			FilesDeleted       int      `json:"files_deleted"`
			TemporalKeysErased int      `json:"temporal_keys_erased"`
		}
	}
	e.MustDo(http.StatusOK, http.MethodDelete, "/api/v1/contacts/"+contact.ID+"?erase=true", nil, &erased)
	if len(erased.Customers) != 1 {
		t.Fatalf("erased %+v, want one customer", erased)
	}
	if c := erased.Customers[0]; !c.EndedRunning || c.MessagesEmptied < 4 || c.FilesDeleted != 1 || c.TemporalKeysErased != 1 || len(c.Conversations) != 1 {
		t.Errorf("erase report = %+v", c)
	}

	// The database: nothing readable, counts kept.
	for s, ok := range dbHolds(t, e, secrets) {
		if ok {
			t.Errorf("after the erase the database still holds %q", s)
		}
	}
	var after struct {
		State        string `json:"state"`
		ClosedReason string `json:"closed_reason"`
		MessageCount int    `json:"message_count"`
	}
	e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID, nil, &after)
	if after.State != "closed" || after.ClosedReason != "erased" || after.MessageCount != before.MessageCount {
		t.Errorf("conversation after the erase = %+v, want closed, erased, %d messages counted", after, before.MessageCount)
	}
	if status, _ := e.Do(http.MethodGet, "/api/v1/contacts/"+contact.ID, nil); status != http.StatusNotFound {
		t.Errorf("erased contact: %d, want 404", status)
	}

	// The blob store: the file is gone.
	if err := filepath.WalkDir(filepath.Join(e.Dir, "blobs"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(fileMarker)) {
			t.Errorf("the blob store still holds the file: %s", path)
		}
		return err
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}

	// Temporal: every run's every event, as stored.
	histories := testenv.Histories(t, e.Temporal(), workflows.ConversationWorkflowID(pageID, psid))
	events, payloads, unreadable := 0, 0, 0
	for _, h := range histories {
		raw, err := proto.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		events += len(h.Events)
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("a history holds %q in clear", s)
			}
		}
		testenv.Payloads(h.ProtoReflect(), func(p *commonpb.Payload) {
			payloads++
			clear, err := e.App.Codec.Decode([]*commonpb.Payload{p})
			if errors.Is(err, payloadcodec.ErrKeyErased) {
				unreadable++
				return
			}
			if err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			for _, s := range secrets {
				if bytes.Contains(clear[0].Data, []byte(s)) {
					t.Errorf("a payload the codec can still read holds %q", s)
				}
			}
		})
	}
	if events < 20 || unreadable < 10 {
		t.Fatalf("%d events, %d payloads, %d unreadable: the search missed the histories", events, payloads, unreadable)
	}
	t.Logf("searched %d histories: %d events, %d payloads, %d no longer decryptable", len(histories), events, payloads, unreadable)

	// The customer writes again: a new conversation, a new key, nothing of the old.
	time.Sleep(100 * time.Millisecond)
	if _, err := e.Meta.CustomerSends(ctx, pageID, psid, "hello again"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list struct{ Data []struct{ ID, State string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+psid, nil, &list)
		if len(list.Data) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new conversation after the erase: %+v", list.Data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dbHolds says which of the strings some cell of the database contains.
func dbHolds(t *testing.T, e *testenv.Env, ss []string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	for _, s := range ss {
		found[s] = false
	}
	if err := e.App.Store.EachCell(t.Context(), func(table, column, value string) {
		for _, s := range ss {
			if strings.Contains(value, s) {
				found[s] = true
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	return found
}
