package messenger

import (
	"encoding/json"
	"strconv"
)

// EventKind says what a webhook event is about.
type EventKind string

// The kinds of event Parley recognises. Anything else is KindUnknown and is
// still delivered (with its raw JSON), never rejected.
const (
	KindMessage     EventKind = "message"
	KindEcho        EventKind = "echo"
	KindPostback    EventKind = "postback"
	KindDelivery    EventKind = "delivery"
	KindRead        EventKind = "read"
	KindReaction    EventKind = "reaction"
	KindMessageEdit EventKind = "message_edit"
	KindReferral    EventKind = "referral"
	KindOptin       EventKind = "optin"
	// KindHandover: thread control moved between the page's apps (the
	// handover protocol; Event.Handover says how).
	KindHandover EventKind = "handover"
	KindUnknown  EventKind = "unknown"
)

// Event is one normalized messaging event. It travels as a Temporal signal
// payload, hence exported fields with snake_case JSON tags.
type Event struct {
	Kind EventKind `json:"kind"`
	// PageID is entry[].id: the page the event belongs to.
	PageID string `json:"page_id,omitempty"`
	// PSID is the customer: sender.id for inbound events, recipient.id for
	// echoes (whose sender is the page). Empty for the few events that name
	// no customer (e.g. a plugin opt-in carrying only a user_ref).
	PSID string `json:"psid,omitempty"`
	// Timestamp is the event's timestamp in ms since the epoch (the entry's
	// time when the event has none).
	Timestamp int64 `json:"timestamp,omitempty"`
	// Standby is set for events from entry[].standby[]: another app owns the thread.
	Standby bool `json:"standby,omitempty"`

	MID               string       `json:"mid,omitempty"`
	Text              string       `json:"text,omitempty"`
	QuickReplyPayload string       `json:"quick_reply_payload,omitempty"`
	ReplyToMID        string       `json:"reply_to_mid,omitempty"`
	Attachments       []Attachment `json:"attachments,omitempty"`

	// AppID and Metadata are set on echoes. Meta sends app_id as a number; it
	// is kept as its decimal string so that large ids stay exact.
	AppID    string `json:"app_id,omitempty"`
	Metadata string `json:"metadata,omitempty"`

	PostbackTitle   string `json:"postback_title,omitempty"`
	PostbackPayload string `json:"postback_payload,omitempty"`

	// Referral is set for referral events and for postbacks or messages that
	// carry one (Get Started from an m.me link, a click-to-Messenger ad).
	Referral *Referral `json:"referral,omitempty"`

	// Watermark (ms) is set on delivery and read events: everything sent
	// before it was delivered/read. MIDs may be absent on deliveries.
	Watermark int64    `json:"watermark,omitempty"`
	MIDs      []string `json:"mids,omitempty"`

	Reaction       string `json:"reaction,omitempty"`
	Emoji          string `json:"emoji,omitempty"`
	ReactionAction string `json:"reaction_action,omitempty"` // react | unreact

	NumEdit int `json:"num_edit,omitempty"`

	// Handover is set on KindHandover events.
	Handover *Handover `json:"handover,omitempty"`

	// Raw is the event object's JSON exactly as it appears in the signed body,
	// kept for audit. (A JSON round trip, e.g. through Temporal, keeps its
	// meaning but compacts it and escapes <, > and &.)
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Handover actions (the webhook's pass_thread_control, take_thread_control
// and request_thread_control).
const (
	HandoverPass    = "pass_thread_control"    // delivered to the new owner
	HandoverTake    = "take_thread_control"    // delivered to the app that lost control
	HandoverRequest = "request_thread_control" // delivered to the owner: another app asks
)

// PageInboxAppID is Meta's own Page Inbox app: the page's people answering
// from Meta Business Suite.
const PageInboxAppID = "263902037430900"

// Handover is a change of thread control. App ids are kept as decimal strings.
type Handover struct {
	Action              string `json:"action"`
	NewOwnerAppID       string `json:"new_owner_app_id,omitempty"`
	PreviousOwnerAppID  string `json:"previous_owner_app_id,omitempty"`
	RequestedOwnerAppID string `json:"requested_owner_app_id,omitempty"`
	Metadata            string `json:"metadata,omitempty"`
}

// Attachment is one attachment of a message. Type is Meta's (image, audio,
// video, file, fallback, sticker, reel, ...); a fallback may have no URL.
type Attachment struct {
	Type      string `json:"type"`
	URL       string `json:"url,omitempty"`
	StickerID int64  `json:"sticker_id,omitempty"`
	Title     string `json:"title,omitempty"`
}

// Referral says how the customer came into the thread (m.me link, ad, chat
// plugin). Its shape is not fully documented: the raw event keeps the rest.
type Referral struct {
	Ref        string `json:"ref,omitempty"`
	Source     string `json:"source,omitempty"`
	Type       string `json:"type,omitempty"`
	AdID       string `json:"ad_id,omitempty"`
	RefererURI string `json:"referer_uri,omitempty"`
}

// DedupeKey identifies one fact so that Meta's redeliveries are recorded
// once:
//
//	message, echo, postback: "mid:<mid>"
//	postback without mid:    "postback:<psid>:<timestamp>:<payload>"
//	message_edit:            "edit:<mid>:<num_edit>"
//	reaction:                "reaction:<mid>:<action>:<reaction, else emoji>:<timestamp>"
//	delivery, read:          "delivery:<watermark>", "read:<watermark>"
//	referral:                "referral:<psid>:<timestamp>:<ref>"
//	anything else:           "<kind>:<psid>:<timestamp>"
func (e Event) DedupeKey() string {
	ts := strconv.FormatInt(e.Timestamp, 10)
	switch e.Kind {
	case KindMessage, KindEcho:
		if e.MID != "" {
			return "mid:" + e.MID
		}
	case KindPostback:
		if e.MID != "" {
			return "mid:" + e.MID
		}
		return "postback:" + e.PSID + ":" + ts + ":" + e.PostbackPayload
	case KindMessageEdit:
		return "edit:" + e.MID + ":" + strconv.Itoa(e.NumEdit)
	case KindReaction:
		r := e.Reaction
		if r == "" {
			r = e.Emoji
		}
		return "reaction:" + e.MID + ":" + e.ReactionAction + ":" + r + ":" + ts
	case KindDelivery, KindRead:
		return string(e.Kind) + ":" + strconv.FormatInt(e.Watermark, 10)
	case KindReferral:
		ref := ""
		if e.Referral != nil {
			ref = e.Referral.Ref
		}
		return "referral:" + e.PSID + ":" + ts + ":" + ref
	}
	// Also reached by a message without a mid, which Meta does not send.
	return string(e.Kind) + ":" + e.PSID + ":" + ts
}

// OpensWindow reports whether the event opens or refreshes the 24-hour
// standard messaging window: a customer's message (not an echo), a postback,
// or a referral into the thread. Reactions do not count: Meta does not
// confirm that they do, and wrongly assuming so would send outside the window.
func (e Event) OpensWindow() bool {
	switch e.Kind {
	case KindMessage, KindPostback, KindReferral:
		return true
	}
	return false
}

// Inbound reports whether the customer caused the event: everything but
// echoes of what the page sent.
func (e Event) Inbound() bool {
	return e.Kind != KindEcho
}

// Notification is one parsed webhook POST.
type Notification struct {
	Object  string  `json:"object"`
	Entries []Entry `json:"entries,omitempty"`
}

// Entry is one entry[] of a notification: one page's events, messaging[]
// first, then standby[].
type Entry struct {
	PageID string  `json:"page_id"`
	Time   int64   `json:"time,omitempty"`
	Events []Event `json:"events,omitempty"`
}
