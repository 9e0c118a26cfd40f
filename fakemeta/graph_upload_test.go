package fakemeta

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"mime/multipart"
	"net/http"
	"testing"
)

// uploadForm is a multipart upload of data as filedata.
func uploadForm(t *testing.T, typ, name, contentType string, data []byte) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("message", `{"attachment":{"type":"`+typ+`","payload":{"is_reusable":true}}}`); err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{
		"Content-Disposition": {`form-data; name="filedata"; filename="` + name + `"`},
		"Content-Type":        {contentType},
	}
	w, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.String()
}

// Every upload is recorded with the SHA-256 of its bytes, each gets its own
// attachment_id; a file of 25 MB is accepted, one byte more is refused with
// 100/2018109 and leaves no upload; a body past what the fake reads too.
func TestAttachmentUploadRecordsAndLimits(t *testing.T) {
	e := newEnv(t, Options{})
	e.customerWrites("hi")
	q := auth(testToken, testSecret)
	data := []byte("\x89PNG\r\n\x1a\n a picture")
	sum := sha256.Sum256(data)
	ids := map[string]bool{}
	for range 2 {
		ct, body := uploadForm(t, "image", "cat.png", "image/png", data)
		st, raw, _ := e.do(http.MethodPost, "/v25.0/"+testPage+"/message_attachments", q, ct, body)
		up := decode(t, raw)
		wantOK(t, st, up)
		ids[up["attachment_id"].(string)] = true
	}
	ups := e.fake.Uploads(testPage)
	if len(ups) != 2 || len(ids) != 2 {
		t.Fatalf("uploads = %+v, ids %v; want two, each with its own id", ups, ids)
	}
	for _, u := range ups {
		if !ids[u.AttachmentID] || u.SHA256 != hex.EncodeToString(sum[:]) || u.Size != int64(len(data)) ||
			u.Type != "image" || !u.Reusable || u.Filename != "cat.png" || u.ContentType != "image/png" || u.AppID != testApp {
			t.Errorf("upload = %+v", u)
		}
	}
	if len(e.fake.Uploads("999")) != 0 {
		t.Error("uploads of another page")
	}

	big := make([]byte, maxUploadBytes)
	ct, body := uploadForm(t, "file", "big.bin", "application/octet-stream", big)
	st, raw, _ := e.do(http.MethodPost, "/v25.0/"+testPage+"/message_attachments", q, ct, body)
	wantOK(t, st, decode(t, raw))
	ct, body = uploadForm(t, "file", "big.bin", "application/octet-stream", append(big, 0))
	st, raw, _ = e.do(http.MethodPost, "/v25.0/"+testPage+"/message_attachments", q, ct, body)
	wantGraphError(t, st, decode(t, raw), 400, 100, 2018109)
	ct, body = uploadForm(t, "file", "huge.bin", "application/octet-stream", make([]byte, maxRequestBody))
	st, raw, _ = e.do(http.MethodPost, "/v25.0/"+testPage+"/message_attachments", q, ct, body)
	wantGraphError(t, st, decode(t, raw), 400, 100, 2018109)
	if n := len(e.fake.Uploads("")); n != 3 {
		t.Errorf("%d uploads, want 3 (the refused ones are not recorded)", n)
	}

	// A send by an id the page never got is refused as an invalid parameter
	// (100, no subcode).
	st, b := e.send(`{"recipient":{"id":"` + testPSID + `"},"messaging_type":"RESPONSE","message":{"attachment":{"type":"image","payload":{"attachment_id":"1234"}}}}`)
	wantGraphError(t, st, b, 400, 100, 0)

	e.fake.Reset()
	if n := len(e.fake.Uploads("")); n != 0 {
		t.Errorf("after Reset: %d uploads recorded", n)
	}
}
