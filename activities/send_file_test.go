package activities_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"parley/activities"
	"parley/blobs"
	"parley/fakemeta"
	"parley/messenger"
	"parley/store"
)

// fileEnv is senderEnv with a blob store holding one PNG.
func fileEnv(t *testing.T) (*activities.Sender, *fakemeta.Server, store.Page, *activities.OutFile) {
	t.Helper()
	a, fake, page := senderEnv(t)
	b, err := blobs.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a.Blobs = b
	return a, fake, page, putFile(t, b, append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("pixels"), 500)...))
}

func putFile(t *testing.T, b *blobs.Store, data []byte) *activities.OutFile {
	t.Helper()
	sum := sha256.Sum256(data)
	f := &activities.OutFile{Type: "image", SHA256: hex.EncodeToString(sum[:]), ContentType: "image/png", Filename: "map.png", Size: int64(len(data))}
	f.BlobKey = blobs.CustomerPrefix(pageID, psid) + "out/" + f.SHA256
	if _, err := b.Put(context.Background(), f.BlobKey, f.ContentType, bytes.NewReader(data), messenger.MaxAttachmentSize); err != nil {
		t.Fatal(err)
	}
	return f
}

func sendFile(t *testing.T, a *activities.Sender, page store.Page, id string, f *activities.OutFile) (activities.SendOutcome, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.SendMessage)
	v, err := env.ExecuteActivity(a.SendMessage, activities.SendInput{
		MessageID: id, PageRef: page.ID, FacebookPageID: pageID, PSID: psid, MessagingType: messenger.MessagingTypeResponse, File: f,
	})
	if err != nil {
		return activities.SendOutcome{}, err
	}
	var out activities.SendOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

func sendCalls(fake *fakemeta.Server) int {
	n := 0
	for _, c := range fake.Calls() {
		if c.Op == fakemeta.OpSend {
			n++
		}
	}
	return n
}

// The first send uploads the file and sends it by attachment_id; the second
// reuses the id without uploading.
func TestSendFileUploadsOnceThenReusesTheID(t *testing.T) {
	a, fake, page, f := fileEnv(t)
	for i, id := range []string{"msg-file-1", "msg-file-2"} {
		out, err := sendFile(t, a, page, id, f)
		if err != nil || out.Outcome != activities.OutcomeSent || out.MID == "" {
			t.Fatalf("send %d: %+v, %v", i+1, out, err)
		}
	}
	ups := fake.Uploads(pageID)
	if len(ups) != 1 || ups[0].SHA256 != f.SHA256 || ups[0].Type != "image" || !ups[0].Reusable || ups[0].ContentType != "image/png" || ups[0].Filename != "map.png" {
		t.Fatalf("uploads = %+v, want the file once", ups)
	}
	sent := fake.Sent(pageID, psid)
	if len(sent) != 2 || sent[0].AttachmentID != ups[0].AttachmentID || sent[1].AttachmentID != ups[0].AttachmentID || sent[1].AttachmentType != "image" {
		t.Fatalf("sent = %+v, want two sends by %s", sent, ups[0].AttachmentID)
	}
	if sent[1].Metadata != activities.Metadata("msg-file-2") {
		t.Errorf("metadata = %q: the echo would not confirm the message", sent[1].Metadata)
	}
}

// A cached id Meta no longer knows is forgotten; the file is uploaded and
// sent once more, in the same activity.
func TestSendFileReuploadsAnIDMetaRefuses(t *testing.T) {
	a, fake, page, f := fileEnv(t)
	if err := a.Store.SaveAttachmentUpload(context.Background(), pageID, f.SHA256, f.Type, "4242424242"); err != nil {
		t.Fatal(err)
	}
	out, err := sendFile(t, a, page, "msg-stale", f)
	if err != nil || out.Outcome != activities.OutcomeSent {
		t.Fatalf("send: %+v, %v; want sent after a new upload", out, err)
	}
	ups := fake.Uploads(pageID)
	if len(ups) != 1 || sendCalls(fake) != 2 || len(fake.Sent(pageID, psid)) != 1 {
		t.Fatalf("%d uploads, %d Send API calls, %d sent; want 1, 2 (refused, then sent), 1", len(ups), sendCalls(fake), len(fake.Sent(pageID, psid)))
	}
	cached, err := a.Store.AttachmentUploadFor(context.Background(), pageID, f.SHA256, f.Type)
	if err != nil || cached.AttachmentID != ups[0].AttachmentID {
		t.Errorf("cache = %+v, %v; want the new id %s", cached, err, ups[0].AttachmentID)
	}
}

// A failed upload sent nothing: Meta's refusal fails the message with its
// code; throttling and lost connections are retried; a file no longer
// stored cannot be sent.
func TestSendFileUploadFailures(t *testing.T) {
	a, fake, page, f := fileEnv(t)
	for _, c := range []struct {
		name          string
		code, subcode int
		outcome       string
	}{
		{"too large for Meta", 100, 2018109, activities.OutcomeRefused},
		{"token invalid", 190, 460, activities.OutcomeRefused},
		{"throttled", 613, 0, activities.OutcomeRetry},
		{"temporary", 2, 0, activities.OutcomeRetry},
		{"connection dropped", 0, 0, activities.OutcomeRetry},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake.FailNext(fakemeta.Failure{Op: fakemeta.OpAttachmentUpload, Code: c.code, Subcode: c.subcode})
			out, err := sendFile(t, a, page, "msg-"+c.name, f)
			if err != nil || out.Outcome != c.outcome || out.Code != c.code || out.Subcode != c.subcode || out.Reason == "" {
				t.Errorf("outcome = %+v, %v; want %s with %d/%d and a reason", out, err, c.outcome, c.code, c.subcode)
			}
		})
	}
	if n := sendCalls(fake); n != 0 {
		t.Errorf("%d Send API calls after failed uploads, want none", n)
	}
	if err := a.Blobs.Delete(context.Background(), f.BlobKey); err != nil {
		t.Fatal(err)
	}
	_, err := sendFile(t, a, page, "msg-erased", f)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != activities.SendImpossibleErrorType {
		t.Errorf("erased file: %v, want %s", err, activities.SendImpossibleErrorType)
	}
}
