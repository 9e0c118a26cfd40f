package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"parley/apierror"
	"parley/messenger"
)

// A reply's attachment.url is downloaded, at most 25 MB of it, with its
// type and name; a URL on Parley's own network is not, unless allowed.
func TestFetchAttachmentURL(t *testing.T) {
	img := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1}, 5000)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/map.png":
			w.Header().Set("Content-Type", "image/png")
			if _, err := w.Write(img); err != nil {
				t.Error(err)
			}
		case "/download":
			w.Header().Set("Content-Disposition", `attachment; filename="Invoice 42.pdf"`)
			if _, err := w.Write([]byte("%PDF-1.7\n")); err != nil {
				t.Error(err)
			}
		case "/big":
			w.Header().Set("Content-Length", strconv.Itoa(messenger.MaxAttachmentSize+1))
		case "/big-chunked":
			w.Header().Set("Content-Type", "application/octet-stream")
			chunk := make([]byte, 1<<20)
			for range 26 {
				if _, err := w.Write(chunk); err != nil {
					return // the download stopped: expected
				}
				w.(http.Flusher).Flush()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	s := &Server{log: slog.Default(), fetch: newFetchClient(true)}
	ctx := context.Background()

	in, err := s.fetchFile(ctx, srv.URL+"/files/map.png")
	defer in.cleanup(s)
	sum := sha256.Sum256(img)
	if err != nil || in.over || in.size != int64(len(img)) || in.sum != hex.EncodeToString(sum[:]) || in.declared != "image/png" || in.filename != "map.png" || !bytes.Equal(in.head, img[:512]) {
		t.Fatalf("fetch = %+v, %v", in, err)
	}
	pdf, err := s.fetchFile(ctx, srv.URL+"/download")
	defer pdf.cleanup(s)
	if err != nil || pdf.filename != "Invoice 42.pdf" {
		t.Errorf("Content-Disposition's name: %q, %v", pdf.filename, err)
	}
	big, err := s.fetchFile(ctx, srv.URL+"/big")
	defer big.cleanup(s)
	if err != nil || !big.over || !big.known || big.size != messenger.MaxAttachmentSize+1 {
		t.Errorf("declared over the limit: %+v, %v", big, err)
	}
	chunked, err := s.fetchFile(ctx, srv.URL+"/big-chunked")
	defer chunked.cleanup(s)
	if err != nil || !chunked.over || chunked.known || chunked.size != messenger.MaxAttachmentSize+1 {
		t.Errorf("sent over the limit: over %v known %v size %d, %v", chunked.over, chunked.known, chunked.size, err)
	}
	for path, want := range map[string]string{
		srv.URL + "/missing":  "HTTP 404",
		"ftp://example.com/x": "absolute http(s) URL",
		"/relative":           "absolute http(s) URL",
	} {
		in, err := s.fetchFile(ctx, path)
		in.cleanup(s)
		if e := apierror.From(err); e.Status != http.StatusBadRequest || e.Field != "attachment.url" || !strings.Contains(e.Message, want) {
			t.Errorf("%s: %v, want 400 on attachment.url saying %q", path, err, want)
		}
	}

	guarded := &Server{log: slog.Default(), fetch: newFetchClient(false)}
	for _, u := range []string{srv.URL + "/files/map.png", "http://[::1]:9/x", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1:9/x"} {
		in, err := guarded.fetchFile(ctx, u)
		in.cleanup(guarded)
		if e := apierror.From(err); e.Status != http.StatusBadRequest || !strings.Contains(e.Message, "public addresses only") {
			t.Errorf("%s: %v, want refused as a private address", u, err)
		}
	}
}

func TestCleanFilename(t *testing.T) {
	for in, want := range map[string]string{
		"map.png":                  "map.png",
		`C:\Users\ada\scan.pdf`:    "scan.pdf",
		"../../etc/passwd":         "passwd",
		"a\x00b\nc.txt":            "abc.txt",
		"..":                       "",
		strings.Repeat("é", 200):   strings.Repeat("é", 127),
		"/":                        "",
		"report (final) v2.docx":   "report (final) v2.docx",
		"invoice\u202efdp.exe":     "invoicefdp.exe",
		"photo\r\nContent-Type: x": "photoContent-Type: x",
	} {
		if got := cleanFilename(in); got != want {
			t.Errorf("cleanFilename(%q) = %q, want %q", in, got, want)
		}
	}
}
