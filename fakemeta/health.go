package fakemeta

import (
	"net/http"
	"time"
)

// DropSubscription models Meta dropping the app's subscription to the
// page's webhooks (as after a long outage of the callback): subscribed_apps
// no longer lists the app, and no event is delivered to it.
func (s *Server) DropSubscription(pageID, appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPageLocked("DropSubscription", pageID)
	if pa, ok := p.apps[appID]; ok {
		pa.subscribed = false
	}
}

// SetTokenExpiry sets when the page's tokens expire (debug_token's
// expires_at; zero: never) and when their data access ends
// (data_access_expires_at; zero: 90 days after issue).
func (s *Server) SetTokenExpiry(pageID string, expiresAt, dataAccessEnds time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPageLocked("SetTokenExpiry", pageID)
	for _, t := range s.tokens {
		if t.pageID == pageID {
			t.expiresAt, t.dataAccessEnds = expiresAt, dataAccessEnds
		}
	}
}

func (s *Server) ctlDropSubscription(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID string `json:"page_id"`
		AppID  string `json:"app_id"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "app_id", in.AppID) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	s.DropSubscription(in.PageID, in.AppID)
	ctlOK(w)
}

func (s *Server) ctlTokenExpiry(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID              string    `json:"page_id"`
		ExpiresAt           time.Time `json:"expires_at"`
		DataAccessExpiresAt time.Time `json:"data_access_expires_at"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	s.SetTokenExpiry(in.PageID, in.ExpiresAt, in.DataAccessExpiresAt)
	ctlOK(w)
}
