package fakemeta

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Errors of the webhook side.
var (
	ErrUnknownApp  = errors.New("fakemeta: unknown app")
	ErrUnknownPage = errors.New("fakemeta: unknown page")
	// ErrNoSubscriber: no app has a webhook and a page subscription for
	// the event's field, so Meta has nobody to deliver it to.
	ErrNoSubscriber = errors.New("fakemeta: no app webhook subscribed to this page event")
	// ErrNoWebhook: the app has no verified webhook (SetWebhook).
	ErrNoWebhook = errors.New("fakemeta: app has no webhook")
)

// Asynchronous deliveries (echoes) retry this many times after the first
// attempt, with this gap.
const (
	asyncRetries  = 3
	asyncRetryGap = 200 * time.Millisecond
	maxRespBody   = 64 << 10
)

// MessagingFields lists every webhook field of the Messenger platform, the
// default of SetWebhook and of a page subscription.
func MessagingFields() []string {
	return []string{
		"messages", "message_deliveries", "message_echoes", "message_edits",
		"message_reactions", "message_reads", "messaging_postbacks", "messaging_referrals",
		"messaging_handovers", "standby", "messaging_optins", "messaging_policy_enforcement",
	}
}

// Entry is one entry[] item of a webhook envelope.
type Entry struct {
	PageID    string
	Time      int64 // ms
	Messaging []json.RawMessage
	Standby   []json.RawMessage // events of threads the app does not own
}

// BuildEnvelope builds the exact bytes Meta POSTs:
// {"object":"page","entry":[{"id":..,"time":..,"messaging":[..]}]}, compact,
// with '/' escaped as "\/" and non-ASCII as \uXXXX (Meta's encoder), event
// JSON compacted and re-escaped the same way.
func BuildEnvelope(entries ...Entry) ([]byte, error) {
	type envEntry struct {
		ID        string            `json:"id"`
		Time      int64             `json:"time"`
		Messaging []json.RawMessage `json:"messaging,omitempty"`
		Standby   []json.RawMessage `json:"standby,omitempty"`
	}
	env := struct {
		Object string     `json:"object"`
		Entry  []envEntry `json:"entry"`
	}{Object: "page", Entry: []envEntry{}}
	for _, e := range entries {
		env.Entry = append(env.Entry, envEntry{ID: e.PageID, Time: e.Time, Messaging: e.Messaging, Standby: e.Standby})
	}
	return metaMarshal(env)
}

// Sign returns the two signature header values Meta sends with body:
// X-Hub-Signature-256 ("sha256=<hex>") and the legacy X-Hub-Signature
// ("sha1=<hex>"), both HMACs keyed with the app secret.
func Sign(body []byte, appSecret string) (sha256Header, sha1Header string) {
	m256 := hmac.New(sha256.New, []byte(appSecret))
	m256.Write(body)
	m1 := hmac.New(sha1.New, []byte(appSecret))
	m1.Write(body)
	return "sha256=" + hex.EncodeToString(m256.Sum(nil)), "sha1=" + hex.EncodeToString(m1.Sum(nil))
}

// Delivery is one webhook POST (with its retries: same bytes, same URL).
type Delivery struct {
	ID       int       `json:"id"`
	AppID    string    `json:"app_id"`
	PageID   string    `json:"page_id,omitempty"`
	URL      string    `json:"url"`
	Body     []byte    `json:"-"`
	Status   int       `json:"status"`   // of the last attempt; 0: no HTTP answer (or not tried yet)
	Attempts int       `json:"attempts"` // attempts so far
	Statuses []int     `json:"statuses"` // one per attempt
	Err      string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
}

// DeliveryError is a webhook POST the callback did not answer with 200.
type DeliveryError struct {
	AppID  string
	URL    string
	Status int    // 0 when there was no HTTP answer
	Body   []byte // the callback's answer (first 64 KiB)
	Err    error  // the transport error, if any
}

func (e *DeliveryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("fakemeta: webhook POST to %s (app %s): %v", e.URL, e.AppID, e.Err)
	}
	return fmt.Sprintf("fakemeta: webhook POST to %s (app %s): HTTP %d: %.200s", e.URL, e.AppID, e.Status, e.Body)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// SetWebhook is saving the callback in the app dashboard: Meta GETs
// callback?hub.mode=subscribe&hub.verify_token=..&hub.challenge=<random>
// and keeps the subscription only if the callback answers 200 with exactly
// the challenge as body. fields defaults to MessagingFields(). HTTP
// callbacks are allowed (Meta requires HTTPS: the fake does not).
func (s *Server) SetWebhook(ctx context.Context, appID, callbackURL, verifyToken string, fields []string) error {
	s.mu.Lock()
	_, ok := s.apps[appID]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownApp, appID)
	}
	u, err := url.Parse(callbackURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("fakemeta: callback URL %q is not an absolute http(s) URL", callbackURL)
	}
	if verifyToken == "" {
		return errors.New("fakemeta: verify token is required")
	}
	if len(fields) == 0 {
		fields = MessagingFields()
	} else {
		f, gerr := parseFieldList(strings.Join(fields, ","))
		if gerr != nil {
			return errors.New("fakemeta: " + gerr.message)
		}
		fields = f
	}

	challenge := randomDigits(10)
	qv := u.Query()
	qv.Set("hub.mode", "subscribe")
	qv.Set("hub.challenge", challenge)
	qv.Set("hub.verify_token", verifyToken)
	u.RawQuery = qv.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("fakemeta: handshake: %w", err)
	}
	req.Header.Set("User-Agent", "facebookplatform/1.0 (+http://developers.facebook.com)")
	resp, err := s.client.Do(req)
	if err != nil {
		s.log.Warn("webhook handshake failed", "app_id", appID, "url", callbackURL, "error", err)
		return fmt.Errorf("fakemeta: handshake GET %s: %w", callbackURL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRespBody))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.log.Warn("webhook handshake refused", "app_id", appID, "url", callbackURL, "status", resp.StatusCode)
		return &DeliveryError{AppID: appID, URL: callbackURL, Status: resp.StatusCode, Body: body,
			Err: fmt.Errorf("handshake: callback answered HTTP %d, want 200 with the challenge", resp.StatusCode)}
	}
	if string(body) != challenge {
		s.log.Warn("webhook handshake: wrong challenge", "app_id", appID, "url", callbackURL)
		return &DeliveryError{AppID: appID, URL: callbackURL, Status: resp.StatusCode, Body: body,
			Err: fmt.Errorf("handshake: callback answered %.100q, want the challenge %q byte for byte", body, challenge)}
	}

	s.mu.Lock()
	s.apps[appID].webhook = &webhookSub{url: callbackURL, verifyToken: verifyToken, fields: fields}
	s.mu.Unlock()
	s.log.Info("webhook verified", "app_id", appID, "url", callbackURL, "fields", fields)
	return nil
}

// CustomerSends is a customer writing text to the page: it opens (or
// refreshes) the person's windows, then POSTs Meta's envelope
// {"object":"page","entry":[{"id":page,"time":ms,"messaging":[{"sender":
// {"id":psid},"recipient":{"id":page},"timestamp":ms,"message":{"mid":..,
// "text":..}}]}]} signed with the app secret to every app subscribed to
// "messages" on the page. One attempt: a non-200 answer is returned as a
// *DeliveryError (tests retry with Redeliver or RetryFailed, like Meta).
func (s *Server) CustomerSends(ctx context.Context, pageID, psid, text string) (mid string, err error) {
	return s.customerMessage(ctx, pageID, psid, text, "")
}

// CustomerTapsQuickReply delivers the customer's tap on a quick reply: a
// message whose text is the button's title, with its payload, as Meta
// sends it.
func (s *Server) CustomerTapsQuickReply(ctx context.Context, pageID, psid, title, payload string) (mid string, err error) {
	if payload == "" {
		return "", errors.New("fakemeta: CustomerTapsQuickReply: empty payload")
	}
	return s.customerMessage(ctx, pageID, psid, title, payload)
}

func (s *Server) customerMessage(ctx context.Context, pageID, psid, text, payload string) (mid string, err error) {
	if text == "" {
		return "", errors.New("fakemeta: CustomerSends: empty text")
	}
	mid = newMID()
	ms := s.now().UnixMilli()
	msg := orderedObject{{"mid", mid}, {"text", text}}
	if payload != "" {
		msg = append(msg, kv{"quick_reply", orderedObject{{"payload", payload}}})
	}
	ev := mustJSON(orderedObject{
		{"sender", orderedObject{{"id", psid}}},
		{"recipient", orderedObject{{"id", pageID}}},
		{"timestamp", ms},
		{"message", msg},
	})
	_, err = s.deliverPage(ctx, pageID, []json.RawMessage{ev}, nil)
	return mid, err
}

// CustomerPostback is a customer tapping a button (Get Started, a menu
// item): a postback{title, payload, mid} event, which opens the window.
func (s *Server) CustomerPostback(ctx context.Context, pageID, psid, title, payload string) (mid string, err error) {
	mid = newMID()
	ms := s.now().UnixMilli()
	ev := mustJSON(orderedObject{
		{"sender", orderedObject{{"id", psid}}},
		{"recipient", orderedObject{{"id", pageID}}},
		{"timestamp", ms},
		{"postback", orderedObject{{"title", title}, {"payload", payload}, {"mid", mid}}},
	})
	_, err = s.deliverPage(ctx, pageID, []json.RawMessage{ev}, nil)
	return mid, err
}

// MarkDelivered sends a delivery{mids, watermark} event from the person:
// mids lists what was sent to them since the last call (omitted when
// none), watermark is now in ms.
func (s *Server) MarkDelivered(ctx context.Context, pageID, psid string) (status int, err error) {
	s.mu.Lock()
	if _, ok := s.pages[pageID]; !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w %q", ErrUnknownPage, pageID)
	}
	u := s.userLocked(pageID, psid)
	mids := u.undelivered
	u.undelivered = nil
	s.mu.Unlock()
	ms := s.now().UnixMilli()
	d := orderedObject{}
	if len(mids) > 0 {
		d = append(d, kv{"mids", mids})
	}
	d = append(d, kv{"watermark", ms})
	ev := mustJSON(orderedObject{
		{"sender", orderedObject{{"id", psid}}},
		{"recipient", orderedObject{{"id", pageID}}},
		{"timestamp", ms},
		{"delivery", d},
	})
	return s.deliverPage(ctx, pageID, []json.RawMessage{ev}, nil)
}

// MarkRead sends a read{watermark} event from the person (watermark = now).
func (s *Server) MarkRead(ctx context.Context, pageID, psid string) (status int, err error) {
	ms := s.now().UnixMilli()
	ev := mustJSON(orderedObject{
		{"sender", orderedObject{{"id", psid}}},
		{"recipient", orderedObject{{"id", pageID}}},
		{"timestamp", ms},
		{"read", orderedObject{{"watermark", ms}}},
	})
	return s.deliverPage(ctx, pageID, []json.RawMessage{ev}, nil)
}

// Deliver POSTs arbitrary messaging events of a page in one signed
// envelope (one entry), to every app subscribed to the page, each getting
// only the events of fields it subscribes to (an event of unknown kind goes
// to all). Events from a person carrying a message (not an echo), a
// postback or a referral open the person's windows at the event's
// timestamp (now when it has none). status is 200, or the first non-200
// status (0: no answer); err joins every failed POST.
func (s *Server) Deliver(ctx context.Context, pageID string, events ...json.RawMessage) (status int, err error) {
	return s.deliverPage(ctx, pageID, events, nil)
}

// DeliverStandby is Deliver with the events in entry[].standby[]: what an
// app that does not own the thread receives (webhook field "standby").
func (s *Server) DeliverStandby(ctx context.Context, pageID string, events ...json.RawMessage) (status int, err error) {
	return s.deliverPage(ctx, pageID, nil, events)
}

// DeliverRaw signs body with the app's secret and POSTs it, byte for byte,
// to the app's webhook (tests use it to resend the same bytes or craft
// batches over several pages with BuildEnvelope). Events in it open
// windows like Deliver's.
func (s *Server) DeliverRaw(ctx context.Context, appID string, body []byte) (status int, err error) {
	var env struct {
		Entry []struct {
			ID        string            `json:"id"`
			Messaging []json.RawMessage `json:"messaging"`
			Standby   []json.RawMessage `json:"standby"`
		} `json:"entry"`
	}
	s.mu.Lock()
	a, ok := s.apps[appID]
	if !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w %q", ErrUnknownApp, appID)
	}
	if a.webhook == nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: %s", ErrNoWebhook, appID)
	}
	target := deliveryTarget{appID: appID, url: a.webhook.url}
	pageID := ""
	if json.Unmarshal(body, &env) == nil {
		for _, e := range env.Entry {
			if _, known := s.pages[e.ID]; known {
				s.observeLocked(e.ID, e.Messaging, e.Standby)
			}
			pageID = e.ID
		}
	}
	s.mu.Unlock()
	d := s.recordDelivery(target, pageID, bytes.Clone(body))
	return s.attempt(ctx, d)
}

// Deliveries returns every webhook POST so far, in order of creation.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		c := *d
		c.Body = bytes.Clone(d.Body)
		c.Statuses = slices.Clone(d.Statuses)
		out[i] = c
	}
	return out
}

// Redeliver POSTs delivery id again (same bytes, same URL, signed with the
// app's current secret): one Meta retry.
func (s *Server) Redeliver(ctx context.Context, id int) (status int, err error) {
	s.mu.Lock()
	var d *Delivery
	for _, x := range s.deliveries {
		if x.ID == id {
			d = x
		}
	}
	s.mu.Unlock()
	if d == nil {
		return 0, fmt.Errorf("fakemeta: no delivery %d", id)
	}
	return s.attempt(ctx, d)
}

// RetryFailed redelivers, once each, every delivery whose last attempt did
// not get a 200, as Meta's retry loop does. It returns how many it retried
// and the errors of those that failed again.
func (s *Server) RetryFailed(ctx context.Context) (retried int, err error) {
	s.mu.Lock()
	var todo []*Delivery
	for _, d := range s.deliveries {
		if d.Attempts > 0 && d.Status != http.StatusOK {
			todo = append(todo, d)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, d := range todo {
		if _, err := s.attempt(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return len(todo), errors.Join(errs...)
}

// ---- internals ----

type deliveryTarget struct {
	appID, url string
	messaging  []json.RawMessage
	standby    []json.RawMessage
}

// deliverPage delivers events of one page synchronously, one attempt per
// subscribed app.
func (s *Server) deliverPage(ctx context.Context, pageID string, messaging, standby []json.RawMessage) (int, error) {
	s.mu.Lock()
	p, ok := s.pages[pageID]
	if !ok {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w %q", ErrUnknownPage, pageID)
	}
	s.observeLocked(pageID, messaging, standby)
	targets := s.targetsLocked(p, messaging, standby)
	s.mu.Unlock()
	if len(targets) == 0 {
		return 0, fmt.Errorf("%w (page %s)", ErrNoSubscriber, pageID)
	}
	now := s.now()
	status := http.StatusOK
	var errs []error
	for _, t := range targets {
		st, err := s.attempt(ctx, s.newDelivery(t, pageID, now))
		if err != nil {
			errs = append(errs, err)
			if status == http.StatusOK {
				status = st
			}
		}
	}
	return status, errors.Join(errs...)
}

// newDelivery builds and records the envelope of one target.
func (s *Server) newDelivery(t deliveryTarget, pageID string, now time.Time) *Delivery {
	body, err := BuildEnvelope(Entry{PageID: pageID, Time: now.UnixMilli(), Messaging: t.messaging, Standby: t.standby})
	if err != nil {
		panic("fakemeta: building envelope: " + err.Error())
	}
	return s.recordDelivery(t, pageID, body)
}

func (s *Server) recordDelivery(t deliveryTarget, pageID string, body []byte) *Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliverySeq++
	d := &Delivery{ID: s.deliverySeq, AppID: t.appID, PageID: pageID, URL: t.url, Body: body, At: s.now()}
	s.deliveries = append(s.deliveries, d)
	return d
}

// targetsLocked lists, per app of the page (by id), the events it gets:
// the app needs a verified webhook and a page subscription, and each event
// needs its field in both.
func (s *Server) targetsLocked(p *page, messaging, standby []json.RawMessage) []deliveryTarget {
	var out []deliveryTarget
	fields, owners := make([]string, len(messaging)), make([]string, len(messaging))
	for i, ev := range messaging {
		fields[i], owners[i] = eventField(ev), s.ownerLocked(p.id, ev)
	}
	for _, id := range sortedKeys(p.apps) {
		pa, a := p.apps[id], s.apps[id]
		if a.webhook == nil || !pa.subscribed {
			continue
		}
		has := func(f string) bool {
			return f == "" || (slices.Contains(a.webhook.fields, f) && slices.Contains(pa.fields, f))
		}
		t := deliveryTarget{appID: id, url: a.webhook.url}
		for i, ev := range messaging {
			field := fields[i]
			// Once a handover gave the thread an owner, the other apps get
			// its events as standby (handover events go to whom they name).
			if owner := owners[i]; owner != "" && owner != id && field != "messaging_handovers" {
				if has("standby") {
					t.standby = append(t.standby, ev)
				}
				continue
			}
			if has(field) {
				t.messaging = append(t.messaging, ev)
			}
		}
		if has("standby") {
			t.standby = append(t.standby, standby...)
		}
		if len(t.messaging) > 0 || len(t.standby) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// eventField names the webhook field an event belongs to ("" if unknown).
func eventField(ev json.RawMessage) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(ev, &m) != nil {
		return ""
	}
	if msg, ok := m["message"]; ok {
		var e struct {
			IsEcho bool `json:"is_echo"`
		}
		_ = json.Unmarshal(msg, &e)
		if e.IsEcho {
			return "message_echoes"
		}
		return "messages"
	}
	for _, k := range []struct{ key, field string }{
		{"postback", "messaging_postbacks"},
		{"delivery", "message_deliveries"},
		{"read", "message_reads"},
		{"reaction", "message_reactions"},
		{"message_edit", "message_edits"},
		{"referral", "messaging_referrals"},
		{"optin", "messaging_optins"},
		{"pass_thread_control", "messaging_handovers"},
		{"take_thread_control", "messaging_handovers"},
		{"request_thread_control", "messaging_handovers"},
		{"app_roles", "messaging_handovers"},
		{"policy_enforcement", "messaging_policy_enforcement"},
	} {
		if _, ok := m[k.key]; ok {
			return k.field
		}
	}
	return ""
}

// observeLocked updates people from events the page receives: a message
// (not an echo), a postback or a referral from a person opens the windows
// (at the event's timestamp, never moving back) and lifts a block.
// Reactions, reads and deliveries do not.
func (s *Server) observeLocked(pageID string, messaging, standby []json.RawMessage) {
	for _, ev := range slices.Concat(messaging, standby) {
		var e struct {
			Sender struct {
				ID string `json:"id"`
			} `json:"sender"`
			Timestamp int64 `json:"timestamp"`
			Message   *struct {
				IsEcho bool   `json:"is_echo"`
				MID    string `json:"mid"`
				Text   string `json:"text"`
			} `json:"message"`
			Postback json.RawMessage `json:"postback"`
			Referral json.RawMessage `json:"referral"`
		}
		if json.Unmarshal(ev, &e) != nil || e.Sender.ID == "" || e.Sender.ID == pageID {
			continue
		}
		if !((e.Message != nil && !e.Message.IsEcho) || e.Postback != nil || e.Referral != nil) {
			continue
		}
		at := s.now()
		if e.Timestamp > 0 {
			at = time.UnixMilli(e.Timestamp)
		}
		u := s.userLocked(pageID, e.Sender.ID)
		if at.After(u.lastMsg) {
			u.lastMsg = at
		}
		u.blocked = false
		if p, ok := s.pages[pageID]; ok && e.Message != nil && e.Message.MID != "" &&
			!slices.ContainsFunc(p.inbound, func(m threadMessage) bool { return m.mid == e.Message.MID }) {
			p.inbound = append(p.inbound, threadMessage{mid: e.Message.MID, psid: e.Sender.ID, text: e.Message.Text, at: at})
		}
	}
}

// attempt POSTs a delivery once and records the outcome.
func (s *Server) attempt(ctx context.Context, d *Delivery) (int, error) {
	s.mu.Lock()
	secret := ""
	if a, ok := s.apps[d.AppID]; ok {
		secret = a.secret
	}
	s.mu.Unlock()
	sig256, sig1 := Sign(d.Body, secret)

	status := 0
	var respBody []byte
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "facebookexternalua")
		req.Header.Set("X-Hub-Signature-256", sig256)
		req.Header.Set("X-Hub-Signature", sig1)
		var resp *http.Response
		resp, err = s.client.Do(req)
		if err == nil {
			respBody, _ = io.ReadAll(io.LimitReader(resp.Body, maxRespBody))
			resp.Body.Close()
			status = resp.StatusCode
		}
	}

	s.mu.Lock()
	d.Attempts++
	d.Statuses = append(d.Statuses, status)
	d.Status = status
	d.Err = ""
	if err != nil {
		d.Err = err.Error()
	}
	attempts := d.Attempts
	s.mu.Unlock()
	s.log.Info("webhook delivery", "delivery_id", d.ID, "app_id", d.AppID, "page_id", d.PageID,
		"url", d.URL, "status", status, "attempt", attempts, "error", errString(err))

	switch {
	case err != nil:
		return 0, &DeliveryError{AppID: d.AppID, URL: d.URL, Err: err}
	case status != http.StatusOK:
		return status, &DeliveryError{AppID: d.AppID, URL: d.URL, Status: status, Body: respBody}
	}
	return status, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// deliverAsync delivers in the background, retrying non-200 answers.
func (s *Server) deliverAsync(d *Delivery) {
	s.bgAdd()
	go func() {
		defer s.bgDone()
		for i := 0; i <= asyncRetries; i++ {
			if i > 0 {
				select {
				case <-s.bgCtx.Done():
					return
				case <-time.After(asyncRetryGap):
				}
			}
			if st, _ := s.attempt(s.bgCtx, d); st == http.StatusOK {
				return
			}
		}
	}()
}
