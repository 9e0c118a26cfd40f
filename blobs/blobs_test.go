package blobs

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPutGetDeleteInAFolder(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, DefaultURL(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prefix := CustomerPrefix("p1", "u/1")
	if prefix != "customers/p1/u_1/" {
		t.Fatalf("prefix %q", prefix)
	}
	n, err := s.Put(ctx, prefix+"a.png", "image/png", strings.NewReader("PNGDATA"), 100)
	if err != nil || n != 7 {
		t.Fatalf("put: %d %v", n, err)
	}
	if _, err := s.Put(ctx, CustomerPrefix("p1", "u2")+"b", "text/plain", strings.NewReader("other"), 100); err != nil {
		t.Fatal(err)
	}
	r, err := s.Get(ctx, prefix+"a.png")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "PNGDATA" || r.ContentType != "image/png" || r.Size != 7 {
		t.Fatalf("got %q %q %d", b, r.ContentType, r.Size)
	}
	// Over the limit: refused, nothing kept.
	if _, err := s.Put(ctx, prefix+"big", "image/png", strings.NewReader(strings.Repeat("x", 101)), 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("big put: %v", err)
	}
	if ok, err := s.Exists(ctx, prefix+"big"); err != nil || ok {
		t.Fatalf("big kept: %v %v", ok, err)
	}
	del, err := s.DeletePrefix(ctx, prefix)
	if err != nil || del != 1 {
		t.Fatalf("delete: %d %v", del, err)
	}
	if _, err := s.Get(ctx, prefix+"a.png"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if ok, _ := s.Exists(ctx, CustomerPrefix("p1", "u2")+"b"); !ok {
		t.Fatal("another customer's file was deleted")
	}
	if _, err := s.DeletePrefix(ctx, "customers"); err == nil {
		t.Fatal("a prefix that is not a folder was accepted")
	}
}
