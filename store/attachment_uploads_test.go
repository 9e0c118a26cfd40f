package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An uploaded file's attachment_id is found by page, SHA-256 and type, is
// replaced by a newer upload, is not reused once older than 80 days, and is
// forgotten only while it is still the one Meta refused.
func TestAttachmentUploads(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		const page, sum = "200000000000001", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		if _, err := s.AttachmentUploadFor(ctx, page, sum, "image"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("before any upload: %v, want ErrNotFound", err)
		}
		if err := s.SaveAttachmentUpload(ctx, page, sum, "image", "111"); err != nil {
			t.Fatal(err)
		}
		u, err := s.AttachmentUploadFor(ctx, page, sum, "image")
		if err != nil || u.AttachmentID != "111" || u.UploadedAt.IsZero() || u.UploadedAt.Location() != time.UTC {
			t.Fatalf("after an upload: %+v, %v", u, err)
		}
		// The same bytes as another type, or for another page, are other uploads.
		for _, k := range [][2]string{{page, "file"}, {"200000000000002", "image"}} {
			if _, err := s.AttachmentUploadFor(ctx, k[0], sum, k[1]); !errors.Is(err, ErrNotFound) {
				t.Errorf("page %s, type %s: %v, want ErrNotFound", k[0], k[1], err)
			}
		}
		if err := s.SaveAttachmentUpload(ctx, page, sum, "image", "222"); err != nil {
			t.Fatal(err)
		}
		if u, err := s.AttachmentUploadFor(ctx, page, sum, "image"); err != nil || u.AttachmentID != "222" {
			t.Fatalf("after a second upload: %+v, %v; want 222", u, err)
		}
		// Forgetting an id that was replaced keeps the new one.
		if err := s.ForgetAttachmentUpload(ctx, page, sum, "image", "111"); err != nil {
			t.Fatal(err)
		}
		if u, err := s.AttachmentUploadFor(ctx, page, sum, "image"); err != nil || u.AttachmentID != "222" {
			t.Fatalf("after forgetting the old id: %+v, %v; want 222 kept", u, err)
		}
		if err := s.ForgetAttachmentUpload(ctx, page, sum, "image", "222"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AttachmentUploadFor(ctx, page, sum, "image"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after forgetting it: %v, want ErrNotFound", err)
		}
		// Meta's ids expire after 90 days; Parley stops at 80.
		if err := s.SaveAttachmentUpload(ctx, page, sum, "image", "333"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(79 * 24 * time.Hour)
		if u, err := s.AttachmentUploadFor(ctx, page, sum, "image"); err != nil || u.AttachmentID != "333" {
			t.Fatalf("after 79 days: %+v, %v; want 333", u, err)
		}
		clock.Advance(24 * time.Hour)
		if _, err := s.AttachmentUploadFor(ctx, page, sum, "image"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after 80 days: %v, want ErrNotFound", err)
		}
		if err := s.SaveAttachmentUpload(ctx, page, sum, "image", "444"); err != nil {
			t.Fatal(err)
		}
		if u, err := s.AttachmentUploadFor(ctx, page, sum, "image"); err != nil || u.AttachmentID != "444" {
			t.Fatalf("a new upload after expiry: %+v, %v; want 444", u, err)
		}
		for name, err := range map[string]error{
			"no page":          s.SaveAttachmentUpload(ctx, "", sum, "image", "1"),
			"no id":            s.SaveAttachmentUpload(ctx, page, sum, "image", ""),
			"no type (lookup)": func() error { _, err := s.AttachmentUploadFor(ctx, page, sum, ""); return err }(),
			"no hash (forget)": s.ForgetAttachmentUpload(ctx, page, "", "image", "1"),
		} {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
	})
}
