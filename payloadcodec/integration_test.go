package payloadcodec_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"parley/payloadcodec"
	"parley/testenv"
	"parley/workflows"
)

const (
	itAppID     = "700000000000011"
	itAppSecret = "it-codec-app-secret-0123456789"
	itPageID    = "710000000000011"
	itToken     = "EAAG-it-codec-page-token-0123456789"
	itPSID      = "720000000000011"
)

// Against the real dev server: what a customer writes and what an agent
// answers never reach Temporal in clear. A plain client (no codec) reads the
// conversation's whole history: neither text appears in its bytes, every
// payload is encrypted with the customer's own key (none with the system
// key); Parley's codec decrypts them back; once the customer's key is
// erased, it no longer can.
func TestConversationHistoryIsEncryptedPerCustomer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the Temporal dev server")
	}
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(itAppID, itAppSecret)
	page := e.CreatePage(acct, itPageID, "Acme", itToken)
	e.ConnectWebhook(itAppID, page)
	var ws struct{ ID string }
	e.MustDo(http.StatusCreated, http.MethodPost, "/api/v1/workstreams", map[string]any{"name": "Acme", "page": page.ID}, &ws)
	agent := e.CreateAgent("Ada", "ada@example.com")

	const customerText = "codec-proof: my parcel 7F3K-QX never arrived"
	const agentText = "codec-proof reply: sorry about parcel 7F3K-QX"
	ctx := t.Context()
	if _, err := e.Meta.CustomerSends(ctx, itPageID, itPSID, customerText); err != nil {
		t.Fatal(err)
	}
	type message struct{ Sender, Text, Status string }
	var convID string
	waitFor(t, "the conversation", func() bool {
		var list struct{ Data []struct{ ID string } }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations?psid="+itPSID, nil, &list)
		if len(list.Data) == 1 {
			convID = list.Data[0].ID
		}
		return convID != ""
	})
	e.MustDo(http.StatusOK, http.MethodPost, "/api/v1/conversations/"+convID+"/assign", map[string]string{"agent_id": agent.ID}, nil)
	if status, raw := e.DoWithKey(agent.Key, http.MethodPost, "/api/v1/conversations/"+convID+"/messages", map[string]string{"text": agentText}); status != http.StatusCreated {
		t.Fatalf("reply: %d %s", status, raw)
	}
	waitFor(t, "both messages recorded and the reply sent", func() bool {
		var page struct{ Data []message }
		e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+convID+"/messages", nil, &page)
		in, out := false, false
		for _, m := range page.Data {
			in = in || m.Text == customerText
			out = out || (m.Text == agentText && m.Status == "sent")
		}
		return in && out
	})

	plain, err := client.Dial(client.Options{HostPort: e.TemporalAddress, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	id := workflows.ConversationWorkflowID(itPageID, itPSID)
	history := func() *historypb.History {
		t.Helper()
		h := &historypb.History{}
		it := plain.GetWorkflowHistory(ctx, id, "", false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		return h
	}
	// The activities' completions may still be on their way.
	time.Sleep(time.Second)
	h := history()
	raw, err := proto.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{customerText, agentText, "7F3K-QX"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the raw history (%d events) contains %q in clear", len(h.Events), s)
		}
	}

	customerKey, err := e.App.Store.CustomerKey(ctx, itPageID, itPSID)
	if err != nil {
		t.Fatal(err)
	}
	systemKey, err := e.App.Store.SystemKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all []*commonpb.Payload
	testenv.Payloads(h.ProtoReflect(), func(p *commonpb.Payload) {
		all = append(all, p)
		enc, key := string(p.GetMetadata()[converter.MetadataEncoding]), keyID(p)
		switch {
		case enc != payloadcodec.EncodingEncrypted:
			t.Errorf("a payload is %q, not encrypted: %v", enc, p)
		case key == systemKey.ID:
			t.Errorf("a payload of the conversation is encrypted with the system key")
		case key != customerKey.ID:
			t.Errorf("a payload is encrypted with key %q, not the customer's %q", key, customerKey.ID)
		}
	})
	if len(all) < 10 {
		t.Fatalf("only %d payloads in %d events: the walk is broken", len(all), len(h.Events))
	}

	t.Logf("%d events, %d payloads, all encrypted with the customer's key %s", len(h.Events), len(all), customerKey.ID)
	decoded, err := e.App.Codec.Decode(all)
	if err != nil {
		t.Fatal(err)
	}
	var clear []byte
	for _, p := range decoded {
		clear = append(clear, p.Data...)
	}
	for _, s := range []string{customerText, agentText} {
		if !bytes.Contains(clear, []byte(s)) {
			t.Errorf("the decoded history lacks %q", s)
		}
	}

	// Erasure: the conversation ends first (its workflow could no longer
	// read its own history), then the key goes.
	if err := e.Temporal().TerminateWorkflow(ctx, id, "", "customer erased"); err != nil {
		t.Fatal(err)
	}
	ids, err := e.App.Codec.EraseCustomer(ctx, itPageID, itPSID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != customerKey.ID {
		t.Errorf("erased %v, want [%s]", ids, customerKey.ID)
	}
	for _, p := range all {
		if _, err := e.App.Codec.Decode([]*commonpb.Payload{p}); !errors.Is(err, payloadcodec.ErrKeyErased) {
			t.Fatalf("decode after erasure: %v, want ErrKeyErased", err)
		}
	}
	// Another process (a fresh codec, no cache) cannot either.
	fresh := payloadcodec.New(e.App.Store, payloadcodec.Options{})
	if _, err := fresh.Decode(all[:1]); !errors.Is(err, payloadcodec.ErrKeyErased) {
		t.Errorf("a fresh codec after erasure: %v, want ErrKeyErased", err)
	}
	// The termination itself (by Parley's client) is encrypted too.
	after := history()
	if raw, err := proto.Marshal(after); err != nil || bytes.Contains(raw, []byte("7F3K-QX")) {
		t.Errorf("history after termination: %v", err)
	}
	if last := after.Events[len(after.Events)-1].GetEventType(); last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED {
		t.Errorf("last event %s, want the termination", last)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
