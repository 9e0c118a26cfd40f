package payloadcodec

import (
	"net/http"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// HTTPHandler serves Temporal's remote codec protocol, for Temporal Web and
// `temporal --codec-endpoint`: POST <endpoint>/encode and <endpoint>/decode
// with {"payloads":[...]} (protojson), answered in kind. Decode leaves a
// payload whose key was erased as it is (still encrypted) instead of
// failing the whole history; Encode (Temporal Web's signals and starts)
// uses the system key. The X-Namespace header is not needed: the key id
// travels with each payload. It authenticates no one: mount it behind
// authentication (package api) and CORS.
func (c *Codec) HTTPHandler() http.Handler {
	return converter.NewPayloadCodecHTTPHandler(codecServer{c: &Codec{ring: c.ring}})
}

// codecServer is the codec as the codec server sees it.
type codecServer struct{ c *Codec }

func (s codecServer) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return s.c.Encode(payloads)
}

func (s codecServer) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return s.c.ring.decode(payloads, true)
}

// CORSHeaders are the request headers Temporal Web's codec calls send.
const CORSHeaders = "Content-Type, X-Namespace, Authorization"

// CORS lets browser code on another origin (Temporal Web calls the codec
// from its own origin, e.g. http://127.0.0.1:8233) call next: it answers
// preflight requests (OPTIONS) itself, and names the request's origin as
// allowed, with credentials, when it is in allowedOrigins (empty: any
// origin; the codec's callers authenticate with an API key, not cookies).
func CORS(allowedOrigins []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := origin != "" && (len(allowedOrigins) == 0 || slices.ContainsFunc(allowedOrigins, func(o string) bool {
			return strings.EqualFold(strings.TrimRight(o, "/"), origin)
		}))
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method != http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Allow", "POST, OPTIONS")
		if allowed {
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", CORSHeaders)
			h.Set("Access-Control-Max-Age", "600")
			// Chrome asks before a public page calls a private address.
			if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
				h.Set("Access-Control-Allow-Private-Network", "true")
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
