package activities_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/blobs"
	"parley/messenger"
	"parley/store"
)

func TestInboundAttachmentsRecordsAStickerOnce(t *testing.T) {
	got := activities.InboundAttachments(messenger.Event{Attachments: []messenger.Attachment{
		{Type: "sticker", URL: "https://cdn/s.png", StickerID: 42},
		{Type: "image", URL: "https://cdn/s2.png", StickerID: 42}, // Meta's duplicate image
		{Type: "image", URL: "https://cdn/like.png", StickerID: 369239263222822},
		{Type: "fallback", Title: "A shared link"},
		{Type: "location", Title: "Home"},
		{Type: "file", URL: "https://cdn/a.pdf"},
		{Type: "file", URL: "https://cdn/a.pdf"}, // the same link twice
	}})
	want := []activities.InboundAttachment{
		{Position: 0, Type: "sticker", URL: "https://cdn/s.png", StickerID: 42, File: true},
		{Position: 1, Type: "sticker", URL: "https://cdn/like.png", StickerID: 369239263222822, File: true},
		{Position: 2, Type: "fallback", Title: "A shared link"},
		{Position: 3, Type: "location", Title: "Home"},
		{Position: 4, Type: "file", URL: "https://cdn/a.pdf", File: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("attachment %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// KeepAttachments: a file over 25 MB and an expired link fail for good at
// once, with why; a CDN that keeps failing is retried and, on the last
// attempt, marked failed; a kept file is not downloaded twice.
func TestKeepAttachmentsFailsForGoodOrRetries(t *testing.T) {
	ctx := context.Background()
	st, _, page := newTestStore(t)
	bs, err := blobs.Open(ctx, blobs.DefaultURL(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int32
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		switch r.URL.Path {
		case "/big.mp4":
			w.Header().Set("Content-Type", "video/mp4")
			w.Write(make([]byte, activities.MaxInboundFile+1))
		case "/expired.jpg":
			http.Error(w, "URL signature expired", http.StatusForbidden)
		case "/down.jpg":
			http.Error(w, "oops", http.StatusBadGateway)
		default:
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write([]byte("\xff\xd8\xff jpeg"))
		}
	}))
	t.Cleanup(cdn.Close)

	// A conversation whose customer sent four files.
	now := time.Now().UTC()
	conv := store.Conversation{ID: "c1", PageRef: page.ID, AccountID: page.AccountID, FacebookPageID: "page1", PSID: "u1", WorkflowID: "w",
		State: "open", StartedAt: now, UpdatedAt: now}
	if err := st.UpsertConversation(ctx, conv); err != nil {
		t.Fatal(err)
	}
	msgID := activities.MessageID("c1", 1)
	if _, err := st.InsertMessages(ctx, []store.Message{{ID: msgID, ConversationID: "c1", Seq: 1, Direction: "in", Sender: "customer",
		Kind: "message", FacebookPageID: "page1", PSID: "u1", Status: "received", SentAt: now}}); err != nil {
		t.Fatal(err)
	}
	names := []string{"big.mp4", "expired.jpg", "down.jpg", "ok.jpg"}
	types := []string{"video", "image", "image", "image"}
	in := activities.KeepAttachmentsInput{ConversationID: "c1", FacebookPageID: "page1", PSID: "u1"}
	var rows []store.Attachment
	for i, n := range names {
		id := activities.AttachmentID(msgID, i)
		rows = append(rows, store.Attachment{ID: id, MessageID: msgID, ConversationID: "c1", FacebookPageID: "page1", PSID: "u1",
			Position: i, Direction: "in", Type: types[i], Status: store.AttachmentPending})
		in.Files = append(in.Files, activities.FileToFetch{AttachmentID: id, Type: types[i], URL: cdn.URL + "/" + n})
	}
	if err := st.InsertAttachments(ctx, rows); err != nil {
		t.Fatal(err)
	}
	a := &activities.Conversations{Store: st, Blobs: bs}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(a.KeepAttachments, activityName(activities.KeepAttachmentsName))
	status := func(i int) store.Attachment {
		t.Helper()
		att, err := st.GetAttachment(ctx, rows[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		return att
	}

	// First attempt: the CDN that is down makes it retry.
	if _, err := env.ExecuteActivity(activities.KeepAttachmentsName, in); err == nil || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("first attempt: %v, want a retryable error naming the 502", err)
	}
	if a := status(0); a.Status != store.AttachmentFailed || !strings.Contains(a.Note, "25 MB") {
		t.Errorf("big file = %+v, want failed saying 25 MB", a)
	}
	if a := status(1); a.Status != store.AttachmentFailed || !strings.Contains(a.Note, "expired") {
		t.Errorf("expired link = %+v, want failed saying it expired", a)
	}
	if a := status(2); a.Status != store.AttachmentPending {
		t.Errorf("CDN down = %+v, want still pending (retried)", a)
	}
	ok := status(3)
	if ok.Status != store.AttachmentKept || ok.ContentType != "image/jpeg" || ok.Size != 8 || ok.SHA256 == "" {
		t.Fatalf("ok file = %+v", ok)
	}
	r, err := bs.Get(ctx, ok.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	b := new(bytes.Buffer)
	b.ReadFrom(r)
	r.Close()
	if b.String() != "\xff\xd8\xff jpeg" || !strings.HasPrefix(ok.BlobKey, blobs.CustomerPrefix("page1", "u1")) {
		t.Errorf("kept %q under %s", b, ok.BlobKey)
	}

	// Retried as the workflow does: on the last attempt the file that still
	// cannot be had is marked failed and the activity succeeds; the kept
	// file is not fetched again.
	before := gets.Load()
	wenv := suite.NewTestWorkflowEnvironment()
	wenv.RegisterActivityWithOptions(a.KeepAttachments, activityName(activities.KeepAttachmentsName))
	wenv.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: activities.KeepAttachmentsAttempts}})
		return workflow.ExecuteActivity(ctx, activities.KeepAttachmentsName, in).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "keep"})
	wenv.ExecuteWorkflow("keep")
	if err := wenv.GetWorkflowError(); err != nil {
		t.Fatalf("retried: %v", err)
	}
	if a := status(2); a.Status != store.AttachmentFailed || !strings.Contains(a.Note, "502") {
		t.Errorf("CDN down on the last attempt = %+v, want failed with why", a)
	}
	if n := gets.Load() - before; n != activities.KeepAttachmentsAttempts {
		t.Errorf("%d downloads over %d attempts, want one per attempt (only the pending file)", n, activities.KeepAttachmentsAttempts)
	}
}

func activityName(n string) activity.RegisterOptions { return activity.RegisterOptions{Name: n} }
