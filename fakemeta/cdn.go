package fakemeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Meta's CDN: what a customer sends (a photo, a voice note, a PDF) reaches
// the page as a URL on Meta's CDN that stops working after a while (its
// oe= parameter; Meta answers 403 "URL signature expired"). The fake serves
// files under /_cdn/ with the same behaviour; Expire ends every link now.

// CDNFile is a file a customer sends.
type CDNFile struct {
	// Type is Meta's attachment type: image, audio, video, file, sticker.
	Type        string `json:"type"`
	ContentType string `json:"content_type"`
	Data        []byte `json:"data"` // base64 in JSON
	// StickerID, for a sticker (Meta's sticker id).
	StickerID int64 `json:"sticker_id,omitempty"`
	// DuplicateImage sends, next to a sticker, the image attachment Meta
	// used to send alongside (until Aug 2026).
	DuplicateImage bool `json:"duplicate_image,omitempty"`
}

type cdnFile struct {
	contentType string
	data        []byte
	expires     time.Time
}

type cdn struct {
	mu    sync.Mutex
	files map[string]*cdnFile
	gets  map[string]int
}

// cdnLinkLife is how long a CDN link works (Meta's last days).
const cdnLinkLife = 72 * time.Hour

func (s *Server) cdnStore() *cdn {
	s.cdnOnce.Do(func() { s.cdnFiles = &cdn{files: map[string]*cdnFile{}, gets: map[string]int{}} })
	return s.cdnFiles
}

// cdnURL puts a file on the CDN and returns its (expiring) URL.
func (s *Server) cdnURL(base, contentType string, data []byte) string {
	c := s.cdnStore()
	id := randomDigits(17)
	exp := s.now().Add(cdnLinkLife)
	c.mu.Lock()
	c.files[id] = &cdnFile{contentType: contentType, data: data, expires: exp}
	c.mu.Unlock()
	return fmt.Sprintf("%s/_cdn/v/t1.15752-9/%s_n%s?_nc_cat=1&oh=%s&oe=%X", strings.TrimRight(base, "/"), id, extFor(contentType), fbtraceID(), exp.Unix())
}

func extFor(contentType string) string {
	switch {
	case strings.HasPrefix(contentType, "image/png"):
		return ".png"
	case strings.HasPrefix(contentType, "image/"):
		return ".jpg"
	case strings.HasPrefix(contentType, "audio/"):
		return ".mp4"
	case strings.HasPrefix(contentType, "video/"):
		return ".mp4"
	case contentType == "application/pdf":
		return ".pdf"
	}
	return ""
}

// ExpireCDN makes every CDN link given so far stop working, as Meta's do.
func (s *Server) ExpireCDN() int {
	c := s.cdnStore()
	c.mu.Lock()
	defer c.mu.Unlock()
	past := s.now().Add(-time.Second)
	for _, f := range c.files {
		f.expires = past
	}
	return len(c.files)
}

// CDNGets is how many times the CDN served a file (downloads).
func (s *Server) CDNGets() int {
	c := s.cdnStore()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, g := range c.gets {
		n += g
	}
	return n
}

// serveCDN serves GET /_cdn/v/<...>/<id>_n.<ext>?oe=...
func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	id, _, _ := strings.Cut(name, "_")
	c := s.cdnStore()
	c.mu.Lock()
	f := c.files[id]
	if f != nil && s.now().Before(f.expires) {
		c.gets[id]++
	}
	c.mu.Unlock()
	switch {
	case f == nil:
		http.Error(w, "Bad URL timestamp", http.StatusForbidden)
	case !s.now().Before(f.expires):
		http.Error(w, "URL signature expired", http.StatusForbidden)
	default:
		w.Header().Set("Content-Type", f.contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
		_, _ = w.Write(f.data)
	}
}

// CustomerSendsFiles is a customer sending files (and maybe text): one
// message with attachments[]{type, payload{url[, sticker_id]}} whose URLs
// are on the fake CDN under base (the fake's own address).
func (s *Server) CustomerSendsFiles(ctx context.Context, pageID, psid, base string, files []CDNFile) (mid string, err error) {
	if len(files) == 0 {
		return "", errors.New("fakemeta: CustomerSendsFiles: no file")
	}
	var atts []orderedObject
	for _, f := range files {
		if f.Type == "" || len(f.Data) == 0 {
			return "", errors.New("fakemeta: CustomerSendsFiles: a file needs a type and data")
		}
		u := s.cdnURL(base, f.ContentType, f.Data)
		p := orderedObject{{"url", u}}
		if f.StickerID != 0 {
			p = append(p, kv{"sticker_id", f.StickerID})
		}
		atts = append(atts, orderedObject{{"type", f.Type}, {"payload", p}})
		if f.Type == "sticker" && f.DuplicateImage {
			atts = append(atts, orderedObject{{"type", "image"}, {"payload", orderedObject{{"url", u}, {"sticker_id", f.StickerID}}}})
		}
	}
	mid = newMID()
	ms := s.now().UnixMilli()
	ev := mustJSON(orderedObject{
		{"sender", orderedObject{{"id", psid}}},
		{"recipient", orderedObject{{"id", pageID}}},
		{"timestamp", ms},
		{"message", orderedObject{{"mid", mid}, {"attachments", atts}}},
	})
	_, err = s.deliverPage(ctx, pageID, []json.RawMessage{ev}, nil)
	return mid, err
}

func (s *Server) ctlCustomerFiles(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID string    `json:"page_id"`
		PSID   string    `json:"psid"`
		Files  []CDNFile `json:"files"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID) {
		return
	}
	if len(in.Files) == 0 {
		ctlError(w, http.StatusBadRequest, "files is required")
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	mid, err := s.CustomerSendsFiles(r.Context(), in.PageID, in.PSID, scheme+"://"+r.Host, in.Files)
	if err != nil && statusOf(err) == 0 && mid == "" {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctlDeliveryResult(w, mid, statusOf(err), err)
}
