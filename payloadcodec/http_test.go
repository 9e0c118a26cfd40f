package payloadcodec_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"parley/payloadcodec"
)

// post sends payloads to the codec server as Temporal Web does.
func post(t *testing.T, url string, payloads ...*commonpb.Payload) (int, []*commonpb.Payload, string) {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(raw)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://127.0.0.1:8233" {
		t.Errorf("Access-Control-Allow-Origin %q on the answer", got)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer %s: %v", raw, err)
	}
	return resp.StatusCode, out.Payloads, string(raw)
}

// The codec server decodes what it can: a payload whose key was erased
// comes back unchanged (still encrypted), plain payloads too; encode uses
// the system key.
func TestHTTPHandler(t *testing.T) {
	s := newStore(t)
	codec := payloadcodec.New(s, payloadcodec.Options{})
	srv := httptest.NewServer(payloadcodec.CORS(nil, codec.HTTPHandler()))
	t.Cleanup(srv.Close)

	clear := jsonPayload(t, map[string]string{"text": "where is my order"})
	enc := encodeOne(t, conversationCodec(codec, page, psid), clear)
	gone := encodeOne(t, conversationCodec(codec, page, "300000000000002"), jsonPayload(t, "forget me"))
	if _, err := codec.EraseCustomer(context.Background(), page, "300000000000002"); err != nil {
		t.Fatal(err)
	}
	plain := jsonPayload(t, "not encrypted")

	status, out, raw := post(t, srv.URL+"/decode", enc, gone, plain)
	if status != http.StatusOK || len(out) != 3 {
		t.Fatalf("decode: %d %s", status, raw)
	}
	if !proto.Equal(out[0], clear) {
		t.Errorf("decoded %v, want %v", out[0], clear)
	}
	if !proto.Equal(out[1], gone) {
		t.Errorf("erased key's payload came back as %v, want it unchanged", out[1])
	}
	if !proto.Equal(out[2], plain) {
		t.Errorf("plain payload came back as %v", out[2])
	}

	status, out, raw = post(t, srv.URL+"/encode", clear)
	if status != http.StatusOK || len(out) != 1 {
		t.Fatalf("encode: %d %s", status, raw)
	}
	sk, err := s.SystemKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(out[0].Metadata[converter.MetadataEncoding]) != payloadcodec.EncodingEncrypted || keyID(out[0]) != sk.ID {
		t.Errorf("encoded with %v, want the system key %s", out[0].Metadata, sk.ID)
	}
	back, err := codec.Decode(out)
	if err != nil || !proto.Equal(back[0], clear) {
		t.Errorf("encoded payload decodes to %v, %v", back, err)
	}

	// An altered payload is an error, not silently passed.
	bad := proto.Clone(enc).(*commonpb.Payload)
	bad.Data[len(bad.Data)-1] ^= 1
	if status, _, raw := post(t, srv.URL+"/decode", bad); status != http.StatusBadRequest || strings.Contains(raw, "where is") {
		t.Errorf("tampered: %d %s, want 400", status, raw)
	}
	resp, err := http.Post(srv.URL+"/decode", "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed body: %d, want 400", resp.StatusCode)
	}
}

// Preflight requests are answered for the allowed origins only.
func TestCORS(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tc := range []struct {
		name, origin string
		allowed      []string
		want         bool
	}{
		{"any origin", "http://127.0.0.1:8233", nil, true},
		{"listed", "https://temporal.example.com", []string{"http://127.0.0.1:8233", "https://temporal.example.com/"}, true},
		{"not listed", "https://evil.example", []string{"http://127.0.0.1:8233"}, false},
		{"no origin", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := payloadcodec.CORS(tc.allowed, next)
			req := httptest.NewRequest(http.MethodOptions, "/decode", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				t.Errorf("preflight: %d, want 204", w.Code)
			}
			got := w.Header().Get("Access-Control-Allow-Origin")
			if tc.want && (got != tc.origin || w.Header().Get("Access-Control-Allow-Credentials") != "true" ||
				!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "X-Namespace") ||
				!strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "POST")) {
				t.Errorf("allowed origin: headers %v", w.Header())
			}
			if !tc.want && got != "" {
				t.Errorf("origin %q allowed: %v", tc.origin, w.Header())
			}

			req = httptest.NewRequest(http.MethodPost, "/decode", nil)
			req.Header.Set("Origin", tc.origin)
			w = httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusTeapot || (w.Header().Get("Access-Control-Allow-Origin") != "") == !tc.want {
				t.Errorf("POST: %d, headers %v", w.Code, w.Header())
			}
		})
	}
}
