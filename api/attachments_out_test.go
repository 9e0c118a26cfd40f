package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"parley/testenv"
	"parley/workflows"
)

// outPNG is a real (small) PNG.
func outPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		img.Set(x, x%30, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// outPart is one part of a multipart upload.
type outPart struct {
	field, filename, contentType string
	data                         []byte
}

// postMultipart sends parts to path with key (chunked, without a
// Content-Length, when chunked is set) and has the exchange checked
// against openapi.yaml like testenv's requests.
func postMultipart(t *testing.T, e *testenv.Env, key, path string, chunked bool, parts ...outPart) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" {
			h.Set("Content-Disposition", `form-data; name="`+p.field+`"; filename="`+p.filename+`"`)
		} else {
			h.Set("Content-Disposition", `form-data; name="`+p.field+`"`)
		}
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	sent := body.Bytes()
	var rd io.Reader = bytes.NewReader(sent)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, err := http.NewRequest(http.MethodPost, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if testenv.Observer != nil {
		testenv.Observer(t, req, sent, resp.StatusCode, resp.Header, raw)
	}
	return resp.StatusCode, raw
}

type outTranscript struct {
	Data []struct {
		ID          string          `json:"id"`
		Direction   string          `json:"direction"`
		Sender      string          `json:"sender"`
		AgentID     string          `json:"agent_id"`
		Status      string          `json:"status"`
		Attachments json.RawMessage `json:"attachments"`
	} `json:"data"`
}

// Issue 8, acceptance (outbound): an agent's upload is checked, uploaded to
// Meta once and sent by attachment_id; the same file sent again (by the
// attachments endpoint or as a multipart reply) reuses the id without a
// second upload; the transcript shows the agent's files.
func TestAgentFileIsUploadedOnceAndSentByAttachmentID(t *testing.T) {
	start := time.Now()
	r := setupReplies(t, testenv.Options{TemporalInMemory: true}, "psid-out")
	img := outPNG(t)
	sum := sha256.Sum256(img)
	file := outPart{field: "file", filename: "map.png", contentType: "image/png", data: img}
	sends := []struct {
		path string
		part outPart
	}{
		{"/attachments", file},
		{"/attachments", file},
		{"/messages", outPart{field: "attachment", filename: "map-again.png", data: img}}, // no type: told by the bytes
	}
	for i, s := range sends {
		status, raw := postMultipart(t, r.e, r.agent.Key, "/api/v1/conversations/"+r.convID+s.path, false, s.part)
		var out struct{ Data []sentJSON }
		if status != http.StatusCreated {
			t.Fatalf("send %d (%s): %d %s", i+1, s.path, status, raw)
		}
		decodeJSON(t, raw, &out)
		if len(out.Data) != 1 || out.Data[0].Status != "sent" || out.Data[0].MID == "" || out.Data[0].MessagingType != "RESPONSE" {
			t.Fatalf("send %d (%s): %s, want one message sent as RESPONSE", i+1, s.path, raw)
		}
	}
	ups := r.e.Meta.Uploads(pageID)
	if len(ups) != 1 || ups[0].SHA256 != hex.EncodeToString(sum[:]) || ups[0].Type != "image" || ups[0].ContentType != "image/png" || !ups[0].Reusable {
		t.Fatalf("Meta's uploads = %+v, want the PNG once, reusable", ups)
	}
	sent := r.e.Meta.Sent(pageID, "psid-out")
	if len(sent) != 3 {
		t.Fatalf("Meta received %d messages, want 3", len(sent))
	}
	for i, m := range sent {
		if m.AttachmentID != ups[0].AttachmentID || m.AttachmentType != "image" || m.Text != "" || m.MessagingType != "RESPONSE" {
			t.Errorf("send %d = %+v, want the image by attachment_id %s", i+1, m, ups[0].AttachmentID)
		}
	}
	for _, c := range r.e.Meta.Calls() {
		if c.Op == "send" && bytes.Contains(c.Body, []byte(`"url"`)) {
			t.Errorf("a send carried a URL for Meta to fetch: %s", c.Body)
		}
	}

	// The transcript shows the three files, from Parley's blob store.
	var tr outTranscript
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/conversations/"+r.convID+"/messages", nil, &tr)
		agentFiles := 0
		for _, m := range tr.Data {
			if m.Sender == "agent" && m.AgentID == r.agent.ID && m.Direction == "out" && m.Status != "pending" && m.Status != "failed" &&
				bytes.Contains(m.Attachments, []byte(`"image"`)) {
				agentFiles++
			}
		}
		if len(tr.Data) == 4 && agentFiles == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transcript = %+v, want the customer's message and the agent's three images", tr.Data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var files []struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(tr.Data[3].Attachments, &files); err != nil || len(files) != 1 || files[0].URL == "" {
		t.Fatalf("the agent's file in the transcript: %s (%v), want one with Parley's URL", tr.Data[3].Attachments, err)
	}
	if strings.Contains(string(tr.Data[3].Attachments), "fbcdn") {
		t.Errorf("the transcript shows Meta's URL: %s", tr.Data[3].Attachments)
	}
	t.Logf("three files sent in %s", time.Since(start).Round(time.Millisecond))
}

// Meta's limits apply before anything is stored or sent: over 25 MB is 413
// with the limit, a program or a file whose bytes contradict its type 415
// with the accepted types; files need the workstream's permission (409,
// the refusal replies already give) and the conversation's agent.
func TestAgentFileLimitsBeforeAnythingIsSent(t *testing.T) {
	r := setupReplies(t, testenv.Options{TemporalInMemory: true}, "psid-lim")
	path := "/api/v1/conversations/" + r.convID + "/attachments"
	nothingSent := func(what string) {
		t.Helper()
		if n, m := len(r.e.Meta.Uploads("")), len(r.e.Meta.Sent(pageID, "psid-lim")); n != 0 || m != 0 {
			t.Errorf("%s: Meta got %d uploads and %d messages, want none", what, n, m)
		}
	}
	message := func(raw []byte) string {
		var e apiError
		decodeJSON(t, raw, &e)
		return e.Error.Message
	}

	// 25 MB and one byte: 413 saying the limit.
	big := make([]byte, 25<<20+1)
	copy(big, "%PDF-1.7\n")
	status, raw := postMultipart(t, r.e, r.agent.Key, path, false, outPart{field: "file", filename: "scan.pdf", contentType: "application/pdf", data: big})
	wantError(t, "25 MB + 1 byte", status, raw, http.StatusRequestEntityTooLarge, "file")
	if msg := message(raw); !strings.Contains(msg, "26214401 bytes") || !strings.Contains(msg, "up to 25 MB (26214400 bytes)") {
		t.Errorf("413 message %q, want the file's size and the limit", msg)
	} else {
		t.Logf("413: %s", msg)
	}
	// The same in a multipart reply, and sent without a length (the body
	// limit stops reading): 413 too.
	status, raw = postMultipart(t, r.e, r.agent.Key, "/api/v1/conversations/"+r.convID+"/messages", true,
		outPart{field: "attachment", filename: "huge.bin", data: make([]byte, 26<<20+100<<10)})
	wantError(t, "chunked 26.1 MB reply", status, raw, http.StatusRequestEntityTooLarge, "attachment")
	if msg := message(raw); !strings.Contains(msg, "25 MB") {
		t.Errorf("413 message %q, want the limit", msg)
	}
	nothingSent("over the limit")

	// Programs, and bytes that contradict the declared type: 415.
	exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), make([]byte, 2000)...)
	for _, c := range []struct {
		name string
		part outPart
	}{
		{"a Windows program", outPart{field: "file", filename: "setup.exe", contentType: "application/x-msdownload", data: exe}},
		{"a program disguised as a PNG", outPart{field: "file", filename: "cat.png", contentType: "image/png", data: exe}},
		{"a PDF declared as a PNG", outPart{field: "file", filename: "cat.png", contentType: "image/png", data: []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\n")}},
	} {
		status, raw := postMultipart(t, r.e, r.agent.Key, path, false, c.part)
		wantError(t, c.name, status, raw, http.StatusUnsupportedMediaType, "file")
		if msg := message(raw); !strings.Contains(msg, "JPEG, PNG, GIF and WebP") {
			t.Errorf("%s: 415 message %q, want the accepted types", c.name, msg)
		} else {
			t.Logf("415 (%s): %s", c.name, msg)
		}
	}
	// An image asked for as a video: 415 too.
	status, raw = postMultipart(t, r.e, r.agent.Key, path, false, outPart{field: "file", filename: "map.png", contentType: "image/png", data: outPNG(t)},
		outPart{field: "type", data: []byte("video")})
	wantError(t, "a PNG as a video", status, raw, http.StatusUnsupportedMediaType, "file")
	nothingSent("refused types")

	// Not multipart: 415; no file: 400; unknown field: 400.
	status, raw = r.e.DoWithKey(r.agent.Key, http.MethodPost, path, map[string]string{"file": "x"})
	wantError(t, "a JSON upload", status, raw, http.StatusUnsupportedMediaType, "")
	status, raw = postMultipart(t, r.e, r.agent.Key, path, false, outPart{field: "type", data: []byte("image")})
	wantError(t, "no file", status, raw, http.StatusBadRequest, "file")
	status, raw = postMultipart(t, r.e, r.agent.Key, path, false, outPart{field: "caption", data: []byte("hi")})
	wantError(t, "unknown field", status, raw, http.StatusBadRequest, "caption")

	// Only the conversation's agent sends files, like replies.
	status, raw = postMultipart(t, r.e, r.e.AdminKey, path, false, outPart{field: "file", filename: "map.png", data: outPNG(t)})
	wantError(t, "an admin", status, raw, http.StatusForbidden, "")
	other := r.e.CreateAgent("Bob", "bob@example.com")
	status, raw = postMultipart(t, r.e, other.Key, path, false, outPart{field: "file", filename: "map.png", data: outPNG(t)})
	wantError(t, "another agent", status, raw, http.StatusNotFound, "")

	// A URL on Parley's own network is not downloaded.
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if _, err := w.Write(outPNG(t)); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(local.Close)
	status, raw = r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/messages",
		map[string]any{"attachment": map[string]string{"type": "image", "url": local.URL + "/map.png"}})
	wantError(t, "a loopback URL", status, raw, http.StatusBadRequest, "attachment.url")
	nothingSent("refused requests")

	// Agent files off for the workstream: the refusal replies give, before
	// the file is read, whichever way it comes.
	var ws struct {
		Data []struct{ ID string } `json:"data"`
	}
	r.e.MustDo(http.StatusOK, http.MethodGet, "/api/v1/workstreams", nil, &ws)
	if len(ws.Data) != 1 {
		t.Fatalf("workstreams = %+v", ws.Data)
	}
	r.e.MustDo(http.StatusOK, http.MethodPatch, "/api/v1/workstreams/"+ws.Data[0].ID, map[string]any{"attachments": map[string]bool{"agent": false}}, nil)
	for name, do := range map[string]func() (int, []byte){
		"upload": func() (int, []byte) {
			return postMultipart(t, r.e, r.agent.Key, path, false, outPart{field: "file", filename: "map.png", data: outPNG(t)})
		},
		"multipart reply": func() (int, []byte) {
			return postMultipart(t, r.e, r.agent.Key, "/api/v1/conversations/"+r.convID+"/messages", false, outPart{field: "attachment", filename: "map.png", data: outPNG(t)})
		},
		"reply by URL": func() (int, []byte) {
			return r.e.DoWithKey(r.agent.Key, http.MethodPost, "/api/v1/conversations/"+r.convID+"/messages",
				map[string]any{"attachment": map[string]string{"url": "https://files.example.com/map.png"}})
		},
	} {
		status, raw := do()
		wantError(t, "agent files off: "+name, status, raw, http.StatusConflict, "")
		if msg := message(raw); msg != workflows.AgentAttachmentsOff {
			t.Errorf("agent files off, %s: %q, want %q", name, msg, workflows.AgentAttachmentsOff)
		}
	}
	// Over the limit too: the permission comes first.
	status, raw = postMultipart(t, r.e, r.agent.Key, path, false, outPart{field: "file", filename: "scan.pdf", contentType: "application/pdf", data: big})
	wantError(t, "agent files off, over the limit", status, raw, http.StatusConflict, "")
	nothingSent("agent files off")
}
