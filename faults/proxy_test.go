package faults

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newSlowProxy stands between a worker and the fake Meta: a Send API call
// waits delay/2 before it reaches Meta and delay/2 before its answer goes
// back, so that a worker killed meanwhile leaves a message that Meta got,
// or did not get, with no answer either way. Each such call is announced
// on inFlight.
func newSlowProxy(t *testing.T, target string, delay time.Duration, inFlight chan<- struct{}, aborted *atomic.Int64) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	isSend := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages")
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if isSend(resp.Request) {
			time.Sleep(delay / 2)
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isSend(r) {
			// Read the body first: only then does the server notice (and
			// cancel the request's context) when the worker dies.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			select {
			case inFlight <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
				aborted.Add(1)
				return // the worker died before the call reached Meta
			case <-time.After(delay / 2):
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
