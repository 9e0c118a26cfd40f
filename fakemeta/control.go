package fakemeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"
)

// The control API drives the fake over HTTP (make dev, the CLI simulator).
// JSON in and out, no authentication: serve it on loopback only.
//
//	POST /_fake/apps                {app_id, app_secret}
//	POST /_fake/pages               {app_id, page_id, name, access_token}
//	POST /_fake/webhooks            {app_id, callback_url, verify_token, fields}  handshake; 502 {"error"} on failure
//	POST /_fake/users               {page_id, psid, first_name, last_name, visible (default true)}
//	POST /_fake/users/block         {page_id, psid}
//	POST /_fake/human_agent         {app_id, allowed}
//	POST /_fake/customer/messages   {page_id, psid, text}              -> {"mid","status"}; 502 {"error","mid","status","body"}
//	POST /_fake/customer/postbacks  {page_id, psid, title, payload}    -> same
//	POST /_fake/customer/files      {page_id, psid, files: [{type, content_type, data (base64), sticker_id, duplicate_image}]} -> same
//	POST /_fake/cdn/expire                                             -> {"expired": n}: every CDN link stops working
//	GET  /_cdn/...                                                     the files' expiring URLs (403 once expired)
//	POST /_fake/customer/delivered  {page_id, psid}                    -> {"status"}; 502 on failure
//	POST /_fake/customer/read       {page_id, psid}                    -> same
//	POST /_fake/deliver             {page_id, events: [...], standby}  -> same
//	POST /_fake/failures            {op, page_id, code, subcode, http_status, times, message, after_accept}
//	POST /_fake/tokens/invalidate   {page_id, subcode}
//	POST /_fake/pages/scopes        {page_id, scopes}                  scopes null: the default (all)
//	POST /_fake/subscriptions/drop  {page_id, app_id}                  Meta drops the app's subscription
//	POST /_fake/thread              {page_id, psid, action: take|pass, app_id, to_app_id}  another app (default: the Page Inbox) takes the thread, or passes it
//	POST /_fake/tokens/expiry       {page_id, expires_at, data_access_expires_at}  RFC 3339; omitted: never / 90 days
//	GET  /_fake/calls                                                  -> {"data":[call...]}
//	GET  /_fake/sent?page_id=&psid=                                    -> {"data":[message...]}
//	GET  /_fake/deliveries                                             -> {"data":[delivery...]}
//	POST /_fake/deliveries/retry                                       -> {"retried":n}; 502 if some failed again
//	POST /_fake/reset
//
// Unknown app or page: 404 {"error":"..."}; bad JSON or missing field: 400;
// no app subscribed to the event: 409.
func (s *Server) registerControl(mux *http.ServeMux) {
	mux.HandleFunc("POST /_fake/apps", s.ctlApps)
	mux.HandleFunc("POST /_fake/pages", s.ctlPages)
	mux.HandleFunc("POST /_fake/webhooks", s.ctlWebhooks)
	mux.HandleFunc("POST /_fake/users", s.ctlUsers)
	mux.HandleFunc("POST /_fake/users/block", s.ctlBlock)
	mux.HandleFunc("POST /_fake/human_agent", s.ctlHumanAgent)
	mux.HandleFunc("POST /_fake/customer/messages", s.ctlCustomerMessage)
	mux.HandleFunc("POST /_fake/customer/postbacks", s.ctlCustomerPostback)
	mux.HandleFunc("POST /_fake/customer/files", s.ctlCustomerFiles)
	mux.HandleFunc("POST /_fake/cdn/expire", func(w http.ResponseWriter, r *http.Request) {
		ctlJSON(w, http.StatusOK, map[string]int{"expired": s.ExpireCDN()})
	})
	mux.HandleFunc("GET /_cdn/", s.serveCDN)
	mux.HandleFunc("POST /_fake/customer/delivered", s.ctlReceipt(s.MarkDelivered))
	mux.HandleFunc("POST /_fake/customer/read", s.ctlReceipt(s.MarkRead))
	mux.HandleFunc("POST /_fake/deliver", s.ctlDeliver)
	mux.HandleFunc("POST /_fake/failures", s.ctlFailures)
	mux.HandleFunc("POST /_fake/tokens/invalidate", s.ctlInvalidate)
	mux.HandleFunc("POST /_fake/pages/scopes", s.ctlScopes)
	mux.HandleFunc("POST /_fake/subscriptions/drop", s.ctlDropSubscription)
	mux.HandleFunc("POST /_fake/thread", s.ctlThread)
	mux.HandleFunc("POST /_fake/tokens/expiry", s.ctlTokenExpiry)
	mux.HandleFunc("GET /_fake/calls", s.ctlCalls)
	mux.HandleFunc("GET /_fake/sent", s.ctlSent)
	mux.HandleFunc("GET /_fake/deliveries", s.ctlDeliveries)
	mux.HandleFunc("POST /_fake/deliveries/retry", s.ctlRetry)
	mux.HandleFunc("POST /_fake/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		ctlOK(w)
	})
	mux.HandleFunc("/_fake/", func(w http.ResponseWriter, r *http.Request) {
		ctlError(w, http.StatusNotFound, "no control route "+r.Method+" "+r.URL.Path)
	})
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ctlOK(w http.ResponseWriter) { ctlJSON(w, http.StatusOK, map[string]bool{"success": true}) }

func ctlError(w http.ResponseWriter, status int, msg string) {
	ctlJSON(w, status, map[string]string{"error": msg})
}

// ctlDecode reads a JSON body strictly; it answers 400 itself on failure.
func ctlDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		ctlError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func ctlRequire(w http.ResponseWriter, fields ...string) bool {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			ctlError(w, http.StatusBadRequest, fields[i]+" is required")
			return false
		}
	}
	return true
}

func (s *Server) hasApp(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.apps[id]
	return ok
}

func (s *Server) hasPage(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pages[id]
	return ok
}

func (s *Server) ctlApps(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AppID     string `json:"app_id"`
		AppSecret string `json:"app_secret"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "app_id", in.AppID, "app_secret", in.AppSecret) {
		return
	}
	s.AddApp(in.AppID, in.AppSecret)
	ctlOK(w)
}

func (s *Server) ctlPages(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AppID       string `json:"app_id"`
		PageID      string `json:"page_id"`
		Name        string `json:"name"`
		AccessToken string `json:"access_token"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "app_id", in.AppID, "page_id", in.PageID, "access_token", in.AccessToken) {
		return
	}
	if !s.hasApp(in.AppID) {
		ctlError(w, http.StatusNotFound, "unknown app "+in.AppID)
		return
	}
	s.AddPage(in.AppID, in.PageID, in.Name, in.AccessToken)
	ctlOK(w)
}

func (s *Server) ctlWebhooks(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AppID       string   `json:"app_id"`
		CallbackURL string   `json:"callback_url"`
		VerifyToken string   `json:"verify_token"`
		Fields      []string `json:"fields"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "app_id", in.AppID, "callback_url", in.CallbackURL, "verify_token", in.VerifyToken) {
		return
	}
	if !s.hasApp(in.AppID) {
		ctlError(w, http.StatusNotFound, "unknown app "+in.AppID)
		return
	}
	if err := s.SetWebhook(r.Context(), in.AppID, in.CallbackURL, in.VerifyToken, in.Fields); err != nil {
		ctlError(w, http.StatusBadGateway, err.Error())
		return
	}
	ctlOK(w)
}

func (s *Server) ctlUsers(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID    string `json:"page_id"`
		PSID      string `json:"psid"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
		Visible   *bool  `json:"visible"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	s.SetUserProfile(in.PageID, in.PSID, in.FirstName, in.LastName, in.Visible == nil || *in.Visible)
	ctlOK(w)
}

func (s *Server) ctlBlock(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID string `json:"page_id"`
		PSID   string `json:"psid"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	s.BlockUser(in.PageID, in.PSID)
	ctlOK(w)
}

func (s *Server) ctlHumanAgent(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AppID   string `json:"app_id"`
		Allowed bool   `json:"allowed"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "app_id", in.AppID) {
		return
	}
	if !s.hasApp(in.AppID) {
		ctlError(w, http.StatusNotFound, "unknown app "+in.AppID)
		return
	}
	s.SetHumanAgentPermission(in.AppID, in.Allowed)
	ctlOK(w)
}

// ctlDeliveryResult answers the outcome of a synchronous webhook delivery.
func ctlDeliveryResult(w http.ResponseWriter, mid string, status int, err error) {
	out := map[string]any{"status": status}
	if mid != "" {
		out["mid"] = mid
	}
	var de *DeliveryError
	switch {
	case err == nil:
		ctlJSON(w, http.StatusOK, out)
		return
	case errors.Is(err, ErrUnknownPage), errors.Is(err, ErrUnknownApp):
		ctlError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrNoSubscriber), errors.Is(err, ErrNoWebhook):
		out["error"] = err.Error()
		ctlJSON(w, http.StatusConflict, out)
		return
	case errors.As(err, &de):
		out["status"] = de.Status
		if utf8.Valid(de.Body) {
			out["body"] = string(de.Body)
		} else {
			out["body"] = fmt.Sprintf("%q", de.Body)
		}
	}
	out["error"] = err.Error()
	ctlJSON(w, http.StatusBadGateway, out)
}

func (s *Server) ctlCustomerMessage(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID string `json:"page_id"`
		PSID   string `json:"psid"`
		Text   string `json:"text"`
		// QuickReplyPayload: a tap on a quick reply (text is its title).
		QuickReplyPayload string `json:"quick_reply_payload"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID, "text", in.Text) {
		return
	}
	var mid string
	var err error
	if in.QuickReplyPayload != "" {
		mid, err = s.CustomerTapsQuickReply(r.Context(), in.PageID, in.PSID, in.Text, in.QuickReplyPayload)
	} else {
		mid, err = s.CustomerSends(r.Context(), in.PageID, in.PSID, in.Text)
	}
	ctlDeliveryResult(w, mid, statusOf(err), err)
}

func (s *Server) ctlCustomerPostback(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID  string `json:"page_id"`
		PSID    string `json:"psid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID, "payload", in.Payload) {
		return
	}
	mid, err := s.CustomerPostback(r.Context(), in.PageID, in.PSID, in.Title, in.Payload)
	ctlDeliveryResult(w, mid, statusOf(err), err)
}

// statusOf is the callback status an error of CustomerSends implies.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Status
	}
	return 0
}

func (s *Server) ctlReceipt(fn func(ctx context.Context, pageID, psid string) (int, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			PageID string `json:"page_id"`
			PSID   string `json:"psid"`
		}
		if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID) {
			return
		}
		st, err := fn(r.Context(), in.PageID, in.PSID)
		ctlDeliveryResult(w, "", st, err)
	}
}

func (s *Server) ctlDeliver(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID  string            `json:"page_id"`
		Events  []json.RawMessage `json:"events"`
		Standby bool              `json:"standby"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID) {
		return
	}
	if len(in.Events) == 0 {
		ctlError(w, http.StatusBadRequest, "events is required")
		return
	}
	deliver := s.Deliver
	if in.Standby {
		deliver = s.DeliverStandby
	}
	st, err := deliver(r.Context(), in.PageID, in.Events...)
	ctlDeliveryResult(w, "", st, err)
}

func (s *Server) ctlFailures(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Failure
		AfterAccept bool `json:"after_accept"`
	}
	if !ctlDecode(w, r, &in) {
		return
	}
	if in.AfterAccept {
		s.FailAfterAccept(in.Failure)
	} else {
		s.FailNext(in.Failure)
	}
	ctlOK(w)
}

func (s *Server) ctlInvalidate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID  string `json:"page_id"`
		Subcode int    `json:"subcode"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	s.InvalidateToken(in.PageID, in.Subcode)
	ctlOK(w)
}

func (s *Server) ctlScopes(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID string   `json:"page_id"`
		Scopes []string `json:"scopes"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	s.SetPageScopes(in.PageID, in.Scopes)
	ctlOK(w)
}

// callView is a Call as the control API shows it (bodies as text).
type callView struct {
	Op       string     `json:"op"`
	AppID    string     `json:"app_id,omitempty"`
	PageID   string     `json:"page_id,omitempty"`
	Method   string     `json:"method"`
	Path     string     `json:"path"`
	Query    url.Values `json:"query"`
	Body     string     `json:"body"`
	Status   int        `json:"status"`
	Response string     `json:"response"`
	At       time.Time  `json:"at"`
}

func (s *Server) ctlCalls(w http.ResponseWriter, r *http.Request) {
	calls := s.Calls()
	out := make([]callView, len(calls))
	for i, c := range calls {
		out[i] = callView{c.Op, c.AppID, c.PageID, c.Method, c.Path, c.Query, string(c.Body), c.Status, string(c.Response), c.At}
	}
	ctlJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) ctlSent(w http.ResponseWriter, r *http.Request) {
	sent := s.Sent(r.URL.Query().Get("page_id"), r.URL.Query().Get("psid"))
	if sent == nil {
		sent = []SentMessage{}
	}
	ctlJSON(w, http.StatusOK, map[string]any{"data": sent})
}

func (s *Server) ctlDeliveries(w http.ResponseWriter, r *http.Request) {
	type view struct {
		Delivery
		Body string `json:"body"`
	}
	ds := s.Deliveries()
	out := make([]view, len(ds))
	for i, d := range ds {
		out[i] = view{d, string(d.Body)}
	}
	ctlJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) ctlRetry(w http.ResponseWriter, r *http.Request) {
	n, err := s.RetryFailed(r.Context())
	if err != nil {
		ctlJSON(w, http.StatusBadGateway, map[string]any{"retried": n, "error": err.Error()})
		return
	}
	ctlJSON(w, http.StatusOK, map[string]any{"retried": n})
}
