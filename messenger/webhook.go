package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrMalformed is wrapped by every ParseWebhook error.
var ErrMalformed = errors.New("messenger: malformed webhook")

// ParseWebhook parses a webhook POST body (verify its signature first).
//
// Every entry[] and every event in both messaging[] and standby[] is kept, in
// order. Unknown event kinds become KindUnknown, never an error: a rejected
// POST is retried by Meta for hours and can end with the webhook disabled.
// Errors (all wrapping ErrMalformed) are reserved for bodies that are not a
// webhook: invalid JSON, no "object", entry/messaging/standby not arrays, and
// events of the documented kinds without sender.id or recipient.id.
func ParseWebhook(body []byte) (*Notification, error) {
	n, err := parseNotification(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return n, nil
}

func parseNotification(body []byte) (*Notification, error) {
	var env struct {
		Object *string         `json:"object"`
		Entry  json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	if env.Object == nil || *env.Object == "" {
		return nil, errors.New(`no "object"`)
	}
	entries, err := rawArray(env.Entry, "entry")
	if err != nil {
		return nil, err
	}
	n := &Notification{Object: *env.Object, Entries: make([]Entry, 0, len(entries))}
	for i, raw := range entries {
		e, err := parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("entry[%d]: %w", i, err)
		}
		n.Entries = append(n.Entries, e)
	}
	return n, nil
}

// rawArray splits a JSON array into its elements' raw bytes. Absent or null
// counts as empty.
func rawArray(raw json.RawMessage, name string) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, fmt.Errorf("%q is not an array", name)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return items, nil
}

func parseEntry(raw json.RawMessage) (Entry, error) {
	var w struct {
		ID        flexString      `json:"id"`
		Time      flexInt64       `json:"time"`
		Messaging json.RawMessage `json:"messaging"`
		Standby   json.RawMessage `json:"standby"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return Entry{}, err
	}
	e := Entry{PageID: string(w.ID), Time: int64(w.Time)}
	for _, part := range []struct {
		name    string
		raw     json.RawMessage
		standby bool
	}{{"messaging", w.Messaging, false}, {"standby", w.Standby, true}} {
		items, err := rawArray(part.raw, part.name)
		if err != nil {
			return Entry{}, err
		}
		for j, item := range items {
			ev, err := parseEvent(item)
			if err != nil {
				return Entry{}, fmt.Errorf("%s[%d]: %w", part.name, j, err)
			}
			ev.PageID = e.PageID
			ev.Standby = part.standby
			if ev.Timestamp == 0 {
				ev.Timestamp = e.Time
			}
			e.Events = append(e.Events, ev)
		}
	}
	return e, nil
}

// Wire shapes of Meta's events. Ids and numbers go through flexString and
// flexInt64, which accept both JSON strings and numbers, because Meta is not
// consistent about which it sends.
type (
	wireEvent struct {
		Sender      *wireParty       `json:"sender"`
		Recipient   *wireParty       `json:"recipient"`
		Timestamp   flexInt64        `json:"timestamp"`
		Message     *wireMessage     `json:"message"`
		Postback    *wirePostback    `json:"postback"`
		Delivery    *wireDelivery    `json:"delivery"`
		Read        *wireRead        `json:"read"`
		Reaction    *wireReaction    `json:"reaction"`
		MessageEdit *wireMessageEdit `json:"message_edit"`
		Referral    *wireReferral    `json:"referral"`
		Optin       json.RawMessage  `json:"optin"`
		// Handover protocol (webhook field messaging_handovers).
		PassThreadControl    *wireHandover `json:"pass_thread_control"`
		TakeThreadControl    *wireHandover `json:"take_thread_control"`
		RequestThreadControl *wireHandover `json:"request_thread_control"`
	}
	wireHandover struct {
		NewOwnerAppID       flexString `json:"new_owner_app_id"`
		PreviousOwnerAppID  flexString `json:"previous_owner_app_id"`
		RequestedOwnerAppID flexString `json:"requested_owner_app_id"`
		Metadata            string     `json:"metadata"`
	}
	wireParty struct {
		ID flexString `json:"id"`
	}
	wireMessage struct {
		MID        flexString `json:"mid"`
		Text       string     `json:"text"`
		QuickReply *struct {
			Payload string `json:"payload"`
		} `json:"quick_reply"`
		ReplyTo *struct {
			MID flexString `json:"mid"`
		} `json:"reply_to"`
		Attachments []wireAttachment `json:"attachments"`
		IsEcho      bool             `json:"is_echo"`
		AppID       flexString       `json:"app_id"`
		Metadata    string           `json:"metadata"`
		Referral    *wireReferral    `json:"referral"`
	}
	wireAttachment struct {
		Type    string             `json:"type"`
		Title   flexString         `json:"title"`
		URL     flexString         `json:"url"`
		Payload *wireAttachPayload `json:"payload"`
	}
	wirePostback struct {
		MID      flexString    `json:"mid"`
		Title    string        `json:"title"`
		Payload  string        `json:"payload"`
		Referral *wireReferral `json:"referral"`
	}
	wireDelivery struct {
		MIDs      []flexString `json:"mids"`
		Watermark flexInt64    `json:"watermark"`
	}
	wireRead struct {
		Watermark flexInt64 `json:"watermark"`
	}
	wireReaction struct {
		Reaction string     `json:"reaction"`
		Emoji    string     `json:"emoji"`
		Action   string     `json:"action"`
		MID      flexString `json:"mid"`
	}
	wireMessageEdit struct {
		MID     flexString `json:"mid"`
		Text    string     `json:"text"`
		NumEdit flexInt64  `json:"num_edit"`
	}
)

func parseEvent(raw json.RawMessage) (Event, error) {
	var w wireEvent
	if err := json.Unmarshal(raw, &w); err != nil {
		return Event{}, err
	}
	ev := Event{Kind: KindUnknown, Timestamp: int64(w.Timestamp), Raw: raw}
	sender, recipient := w.Sender.id(), w.Recipient.id()
	ev.PSID = sender
	switch {
	case w.Message != nil:
		m := w.Message
		ev.Kind = KindMessage
		if m.IsEcho {
			ev.Kind = KindEcho
			ev.PSID = recipient
			ev.AppID = string(m.AppID)
			ev.Metadata = m.Metadata
		}
		ev.MID, ev.Text = string(m.MID), m.Text
		if m.QuickReply != nil {
			ev.QuickReplyPayload = m.QuickReply.Payload
		}
		if m.ReplyTo != nil {
			ev.ReplyToMID = string(m.ReplyTo.MID)
		}
		for _, a := range m.Attachments {
			ev.Attachments = append(ev.Attachments, a.normalize())
		}
		ev.Referral = m.Referral.normalize()
	case w.Postback != nil:
		ev.Kind = KindPostback
		ev.MID = string(w.Postback.MID)
		ev.PostbackTitle, ev.PostbackPayload = w.Postback.Title, w.Postback.Payload
		ev.Referral = w.Postback.Referral.normalize()
	case w.Delivery != nil:
		ev.Kind = KindDelivery
		ev.Watermark = int64(w.Delivery.Watermark)
		for _, mid := range w.Delivery.MIDs {
			ev.MIDs = append(ev.MIDs, string(mid))
		}
	case w.Read != nil:
		ev.Kind = KindRead
		ev.Watermark = int64(w.Read.Watermark)
	case w.Reaction != nil:
		ev.Kind = KindReaction
		ev.MID = string(w.Reaction.MID)
		ev.Reaction, ev.Emoji, ev.ReactionAction = w.Reaction.Reaction, w.Reaction.Emoji, w.Reaction.Action
	case w.MessageEdit != nil:
		ev.Kind = KindMessageEdit
		ev.MID, ev.Text = string(w.MessageEdit.MID), w.MessageEdit.Text
		ev.NumEdit = int(w.MessageEdit.NumEdit)
	case w.Referral != nil:
		ev.Kind = KindReferral
		ev.Referral = w.Referral.normalize()
	case len(w.Optin) > 0 && !bytes.Equal(w.Optin, []byte("null")):
		ev.Kind = KindOptin
	case w.PassThreadControl != nil:
		ev.setHandover(HandoverPass, w.PassThreadControl)
	case w.TakeThreadControl != nil:
		ev.setHandover(HandoverTake, w.TakeThreadControl)
	case w.RequestThreadControl != nil:
		ev.setHandover(HandoverRequest, w.RequestThreadControl)
	}
	// The documented conversation events always name both parties. Referrals
	// (chat plugin guests come with a user_ref), opt-ins and unknown kinds
	// (policy enforcement has no sender) may not: they are kept with whatever
	// PSID they have rather than failing the whole POST.
	switch ev.Kind {
	case KindReferral, KindOptin, KindUnknown:
	default:
		if sender == "" {
			return Event{}, fmt.Errorf("%s event without sender.id", ev.Kind)
		}
		if recipient == "" {
			return Event{}, fmt.Errorf("%s event without recipient.id", ev.Kind)
		}
	}
	return ev, nil
}

func (p *wireParty) id() string {
	if p == nil {
		return ""
	}
	return string(p.ID)
}

func (a wireAttachment) normalize() Attachment {
	out := Attachment{Type: a.Type, URL: string(a.URL), Title: string(a.Title)}
	if p := a.Payload; p != nil {
		if p.URL != "" {
			out.URL = string(p.URL)
		}
		if p.Title != "" {
			out.Title = string(p.Title)
		}
		out.StickerID = int64(p.StickerID)
	}
	return out
}

// wireAttachPayload tolerates payloads that are not objects (a fallback's
// payload may be null or absent; templates carry shapes Parley ignores).
type wireAttachPayload struct {
	URL       flexString
	StickerID flexInt64
	Title     flexString
}

func (p *wireAttachPayload) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '{' {
		return nil
	}
	var w struct {
		URL       flexString `json:"url"`
		StickerID flexInt64  `json:"sticker_id"`
		Title     flexString `json:"title"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*p = wireAttachPayload(w)
	return nil
}

// wireReferral tolerates any shape: referral payloads are not fully
// documented, and the raw event keeps whatever Parley does not read.
type wireReferral struct {
	Ref        flexString `json:"ref"`
	Source     flexString `json:"source"`
	Type       flexString `json:"type"`
	AdID       flexString `json:"ad_id"`
	RefererURI flexString `json:"referer_uri"`
}

func (r *wireReferral) UnmarshalJSON(data []byte) error {
	if len(data) == 0 || data[0] != '{' {
		return nil
	}
	type plain wireReferral
	var w plain
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = wireReferral(w)
	return nil
}

func (r *wireReferral) normalize() *Referral {
	if r == nil {
		return nil
	}
	return &Referral{
		Ref:        string(r.Ref),
		Source:     string(r.Source),
		Type:       string(r.Type),
		AdID:       string(r.AdID),
		RefererURI: string(r.RefererURI),
	}
}

// flexString accepts a JSON string, or a number kept as its exact decimal
// digits (Meta sends app_id and some ids as numbers that do not fit a
// float64). Other JSON values decode to "".
type flexString string

func (s *flexString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return nil
	case data[0] == '"':
		var v string
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case data[0] == '-' || (data[0] >= '0' && data[0] <= '9'):
		*s = flexString(decimal(string(data)))
	default:
		*s = ""
	}
	return nil
}

// decimal renders a JSON number literal as plain decimal digits when it is an
// integer written with a fraction or exponent (1.5e3 -> 1500) that a float64
// holds exactly; anything else keeps its literal (plain digits stay exact).
func decimal(lit string) string {
	if _, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return lit
	}
	if v, ok := exactInt(lit); ok {
		return strconv.FormatInt(v, 10)
	}
	return lit
}

// maxExactFloat is 2^53: integers up to it survive a float64.
const maxExactFloat = 1 << 53

// exactInt parses a number literal that is an integer held exactly by a
// float64. (ParseFloat rather than big.Rat: a hostile 1e999999999 must stay cheap.)
func exactInt(lit string) (int64, bool) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxExactFloat {
		return 0, false
	}
	return int64(f), true
}

// flexInt64 accepts a JSON number (integer, or integral float such as
// 1.458668856253E+12) or a string holding one. Other values decode to 0.
type flexInt64 int64

func (n *flexInt64) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	lit := string(data)
	if data[0] == '"' {
		if err := json.Unmarshal(data, &lit); err != nil {
			return err
		}
	}
	if v, err := strconv.ParseInt(lit, 10, 64); err == nil {
		*n = flexInt64(v)
		return nil
	}
	if v, ok := exactInt(lit); ok {
		*n = flexInt64(v)
		return nil
	}
	*n = 0
	return nil
}

func (ev *Event) setHandover(action string, h *wireHandover) {
	ev.Kind = KindHandover
	ev.Handover = &Handover{Action: action, NewOwnerAppID: string(h.NewOwnerAppID), PreviousOwnerAppID: string(h.PreviousOwnerAppID),
		RequestedOwnerAppID: string(h.RequestedOwnerAppID), Metadata: h.Metadata}
}
