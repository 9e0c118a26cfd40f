package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"parley/api"
	"parley/payloadcodec"
	"parley/secrets"
	"parley/store"
	"parley/testenv"
	"parley/workflows"
)

type codecServer struct {
	url   string
	admin string
	codec *payloadcodec.Codec
	log   *testenv.Output
}

// newCodecServer runs the API with the codec over a store of its own.
func newCodecServer(t *testing.T, withCodec bool) *codecServer {
	t.Helper()
	ctx := context.Background()
	enc, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.ParseKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "parley.db"), box)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cs := &codecServer{admin: "pk_admin_codec_test_0123456789abcdef", log: &testenv.Output{}}
	opts := api.Options{Store: st, AdminAPIKey: cs.admin,
		Logger: slog.New(slog.NewTextHandler(cs.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if withCodec {
		cs.codec = payloadcodec.New(st, payloadcodec.Options{})
		opts.Codec = cs.codec
	}
	srv := httptest.NewServer(api.New(opts))
	t.Cleanup(srv.Close)
	cs.url = srv.URL
	return cs
}

// call sends payloads as Temporal Web does (Origin, X-Namespace), with key
// in the Authorization header unless it is "", and checks the exchange
// against the OpenAPI document; OPTIONS sends a CORS preflight.
func (cs *codecServer) call(t *testing.T, method, path, key string, payloads ...*commonpb.Payload) (int, http.Header, []byte) {
	t.Helper()
	var sent []byte
	var body io.Reader
	if method == http.MethodPost {
		var err error
		if sent, err = protojson.Marshal(&commonpb.Payloads{Payloads: payloads}); err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, cs.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://127.0.0.1:8233")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
	} else {
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
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
	if method != http.MethodOptions { // a preflight is no API operation
		validateExchange(t, req, sent, resp.StatusCode, resp.Header, raw)
	}
	return resp.StatusCode, resp.Header, raw
}

func (cs *codecServer) createKey(t *testing.T, path string, body map[string]string) string {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, cs.url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cs.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Secret string `json:"secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.Secret == "" {
		t.Fatalf("POST %s: %d, %v", path, resp.StatusCode, err)
	}
	return out.Secret
}

// Temporal Web decodes a conversation's payloads through the codec, with
// an admin or supervisor key in the header or in the path; agents and
// callers without a key are refused; the key in the path is never logged.
func TestTemporalCodecEndpoint(t *testing.T) {
	cs := newCodecServer(t, true)
	supervisor := cs.createKey(t, "/api/v1/api-keys", map[string]string{"name": "ops", "role": "supervisor"})
	agent := cs.createKey(t, "/api/v1/agents", map[string]string{"name": "Ada", "email": "ada@example.com"})

	clear, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"text": "my parcel never arrived"})
	if err != nil {
		t.Fatal(err)
	}
	conv := cs.codec.WithSerializationContext(converter.WorkflowSerializationContext{WorkflowID: workflows.ConversationWorkflowID("200000000000051", "300000000000051")})
	enc, err := conv.Encode([]*commonpb.Payload{clear})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc[0].Data, []byte("parcel")) {
		t.Fatal("the payload is not encrypted")
	}

	decoded := func(what string, status int, raw []byte) {
		t.Helper()
		if status != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", what, status, raw)
			return
		}
		var out commonpb.Payloads
		if err := protojson.Unmarshal(raw, &out); err != nil || len(out.Payloads) != 1 {
			t.Errorf("%s: %s (%v)", what, raw, err)
			return
		}
		if got := string(out.Payloads[0].Data); got != `{"text":"my parcel never arrived"}` {
			t.Errorf("%s: decoded %q", what, got)
		}
		if enc := string(out.Payloads[0].Metadata[converter.MetadataEncoding]); enc != converter.MetadataEncodingJSON {
			t.Errorf("%s: encoding %q, want %q", what, enc, converter.MetadataEncodingJSON)
		}
	}
	status, header, raw := cs.call(t, http.MethodPost, api.CodecPath+"/decode", supervisor, enc...)
	decoded("supervisor, key in the header", status, raw)
	if header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" {
		t.Errorf("no CORS headers on the answer: %v", header)
	}
	status, _, raw = cs.call(t, http.MethodPost, "/api/v1/temporal-codec/k/"+cs.admin+"/decode", "", enc...)
	decoded("admin, key in the path", status, raw)
	// The path's key wins over the header's (Temporal Web may send its own token).
	status, _, raw = cs.call(t, http.MethodPost, "/api/v1/temporal-codec/k/"+supervisor+"/decode", "an-oidc-token", enc...)
	decoded("supervisor in the path, a token in the header", status, raw)

	status, header, raw = cs.call(t, http.MethodPost, api.CodecPath+"/decode", "", enc...)
	wantError(t, "no key", status, raw, http.StatusUnauthorized, "")
	if header.Get("Access-Control-Allow-Origin") == "" {
		t.Error("a refusal without CORS headers: the browser could not read it")
	}
	status, _, raw = cs.call(t, http.MethodPost, "/api/v1/temporal-codec/k/pk_wrong/decode", "", enc...)
	wantError(t, "unknown key in the path", status, raw, http.StatusUnauthorized, "")
	status, _, raw = cs.call(t, http.MethodPost, api.CodecPath+"/decode", agent, enc...)
	wantError(t, "agent", status, raw, http.StatusForbidden, "")
	status, _, raw = cs.call(t, http.MethodPost, "/api/v1/temporal-codec/k/"+agent+"/decode", "", enc...)
	wantError(t, "agent, key in the path", status, raw, http.StatusForbidden, "")
	status, _, raw = cs.call(t, http.MethodPost, api.CodecPath+"/transcode", supervisor, enc...)
	wantError(t, "unknown operation", status, raw, http.StatusNotFound, "")

	// Encode (Temporal Web's signals) gives what decode reads back.
	status, _, raw = cs.call(t, http.MethodPost, api.CodecPath+"/encode", supervisor, clear)
	var encoded commonpb.Payloads
	if err := protojson.Unmarshal(raw, &encoded); status != http.StatusOK || err != nil || len(encoded.Payloads) != 1 ||
		string(encoded.Payloads[0].Metadata[converter.MetadataEncoding]) != payloadcodec.EncodingEncrypted {
		t.Fatalf("encode: %d %s (%v)", status, raw, err)
	}
	status, _, raw = cs.call(t, http.MethodPost, api.CodecPath+"/decode", supervisor, encoded.Payloads...)
	decoded("decode of encode", status, raw)

	for _, path := range []string{api.CodecPath + "/decode", "/api/v1/temporal-codec/k/" + cs.admin + "/encode"} {
		status, header, raw := cs.call(t, http.MethodOptions, path, "")
		if status != http.StatusNoContent || header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:8233" ||
			!strings.Contains(header.Get("Access-Control-Allow-Headers"), "X-Namespace") {
			t.Errorf("preflight %s: %d %v %s", path, status, header, raw)
		}
	}

	logged := cs.log.String()
	if !strings.Contains(logged, "temporal-codec") {
		t.Fatalf("the requests were not logged (the check below would prove nothing): %s", logged)
	}
	for name, key := range map[string]string{"admin": cs.admin, "supervisor": supervisor, "agent": agent} {
		if strings.Contains(logged, key) {
			t.Errorf("the %s key was logged:\n%s", name, logged)
		}
	}
}

// Without a codec configured, the endpoint answers 503.
func TestTemporalCodecEndpointWithoutCodec(t *testing.T) {
	cs := newCodecServer(t, false)
	status, _, raw := cs.call(t, http.MethodPost, api.CodecPath+"/decode", cs.admin)
	wantError(t, "no codec", status, raw, http.StatusServiceUnavailable, "")
}
