// Package blobs keeps files Parley must hold on to (what customers send,
// what agents upload) in a bucket: a folder in the data directory by
// default, an S3-compatible or GCS bucket when several replicas share them.
// It is a thin layer over gocloud.dev/blob.
package blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	_ "gocloud.dev/blob/gcsblob"  // gs:// buckets
	_ "gocloud.dev/blob/memblob"  // mem:// buckets (tests)
	_ "gocloud.dev/blob/s3blob"   // s3:// buckets (and S3-compatible stores)
	"gocloud.dev/gcerrors"
)

// ErrNotFound: no file under that key (never stored, or erased).
var ErrNotFound = errors.New("blob not found")

// ErrTooLarge: the file is over the limit given to Put.
var ErrTooLarge = errors.New("blob too large")

// Store is a bucket of files.
type Store struct {
	b *blob.Bucket
}

// DefaultURL is the bucket in a folder of the data directory.
func DefaultURL(dataDir string) string {
	abs, err := filepath.Abs(filepath.Join(dataDir, "blobs"))
	if err != nil {
		abs = filepath.Join(dataDir, "blobs")
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "create_dir=1&no_tmp_dir=1"}).String()
}

// Open opens the bucket at a gocloud.dev URL: file:///path?create_dir=1,
// s3://bucket?region=...&endpoint=..., gs://bucket, mem://.
func Open(ctx context.Context, bucketURL string) (*Store, error) {
	b, err := blob.OpenBucket(ctx, bucketURL)
	if err != nil {
		return nil, fmt.Errorf("open blob bucket %s: %w", redact(bucketURL), err)
	}
	return &Store{b: b}, nil
}

// redact keeps credentials that a URL may carry out of errors and logs.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Close releases the bucket.
func (s *Store) Close() error { return s.b.Close() }

// Put stores r under key, refusing more than limit bytes (ErrTooLarge,
// nothing kept). It returns the size written.
func (s *Store) Put(ctx context.Context, key, contentType string, r io.Reader, limit int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType})
	if err != nil {
		return 0, fmt.Errorf("write blob %s: %w", key, err)
	}
	n, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if err != nil {
		cancel() // a cancelled writer discards what it got
		_ = w.Close()
		return n, fmt.Errorf("write blob %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return n, fmt.Errorf("write blob %s: %w", key, err)
	}
	return n, nil
}

// Reader is an open file: its bytes, type and size.
type Reader struct {
	io.ReadCloser
	ContentType string
	Size        int64
}

// Get opens the file under key (ErrNotFound when there is none).
func (s *Store) Get(ctx context.Context, key string) (*Reader, error) {
	r, err := s.b.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("blob %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("read blob %s: %w", key, err)
	}
	return &Reader{ReadCloser: r, ContentType: r.ContentType(), Size: r.Size()}, nil
}

// Exists reports whether a file is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.b.Exists(ctx, key)
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", key, err)
	}
	return ok, nil
}

// Delete deletes the file under key; deleting what is gone is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.b.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// DeletePrefix deletes every file whose key starts with prefix and says
// how many there were. Deleting what is gone is not an error.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if prefix == "" || !strings.HasSuffix(prefix, "/") {
		return 0, fmt.Errorf("delete blobs: prefix %q must be a folder (end with /)", prefix)
	}
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	n := 0
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("list blobs %s: %w", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		if err := s.b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return n, fmt.Errorf("delete blob %s: %w", obj.Key, err)
		}
		n++
	}
}

// CustomerPrefix is the folder of everything kept for one customer of a
// page, so that erasing the customer deletes one folder.
func CustomerPrefix(facebookPageID, psid string) string {
	return "customers/" + safe(facebookPageID) + "/" + safe(psid) + "/"
}

// safe keeps a key segment a single segment.
func safe(s string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "__").Replace(s)
}
