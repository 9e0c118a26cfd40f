package fakemeta

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Send API limits.
const (
	maxTextUnits      = 2000 // UTF-16 code units, as Meta counts
	maxMetadataRunes  = 1000
	maxQuickReplies   = 13
	maxQuickReplyRune = 20
)

var attachmentTypes = map[string]bool{"image": true, "audio": true, "video": true, "file": true}

// sendRequest is the Send API body. Graph merges the JSON body with query
// and form parameters; the fake does the same, field by field.
type sendRequest struct {
	Recipient     json.RawMessage `json:"recipient"`
	MessagingType string          `json:"messaging_type"`
	Tag           string          `json:"tag"`
	Message       json.RawMessage `json:"message"`
	SenderAction  string          `json:"sender_action"`
}

type sendMessage struct {
	Text         *string          `json:"text"`
	Attachment   *sendAttachment  `json:"attachment"`
	QuickReplies []sendQuickReply `json:"quick_replies"`
	Metadata     *string          `json:"metadata"`
}

type sendAttachment struct {
	Type    string `json:"type"`
	Payload *struct {
		URL          string `json:"url"`
		IsReusable   bool   `json:"is_reusable"`
		AttachmentID string `json:"attachment_id"`
	} `json:"payload"`
}

type sendQuickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     any    `json:"payload"`
	ImageURL    string `json:"image_url"`
}

// parsedSend is a validated Send API request.
type parsedSend struct {
	psid          string
	messagingType string
	tag           string
	senderAction  string
	isMessage     bool
	text          string
	attType       string
	attURL        string
	attID         string
	reusable      bool
	quickReplies  []QuickReply
	metadata      string
}

func (s *Server) handleSend(q *request, pathPage string) *response {
	return s.pageOp(q, pathPage, func(t token) *response {
		p, gerr := parseSend(q)
		if gerr != nil {
			return s.errorResponse(gerr)
		}
		return s.acceptSend(t, p)
	})
}

func parseSend(q *request) (*parsedSend, *graphError) {
	var req sendRequest
	if q.isJSON() {
		if err := json.Unmarshal(q.body, &req); err != nil {
			return nil, errParam("Invalid JSON in request body")
		}
	}
	if len(req.Recipient) == 0 || string(req.Recipient) == "null" {
		req.Recipient = json.RawMessage(q.param("recipient"))
	}
	if len(req.Message) == 0 || string(req.Message) == "null" {
		if m := q.param("message"); m != "" {
			req.Message = json.RawMessage(m)
		} else {
			req.Message = nil
		}
	}
	if req.MessagingType == "" {
		req.MessagingType = q.param("messaging_type")
	}
	if req.Tag == "" {
		req.Tag = q.param("tag")
	}
	if req.SenderAction == "" {
		req.SenderAction = q.param("sender_action")
	}

	p := &parsedSend{}
	if len(req.Recipient) == 0 {
		return nil, errParam("The parameter recipient is required")
	}
	var rcpt map[string]json.RawMessage
	if err := json.Unmarshal(req.Recipient, &rcpt); err != nil {
		return nil, errParam("Param recipient must be a JSON object")
	}
	p.psid = jsonScalar(rcpt["id"])
	if p.psid == "" {
		return nil, errParam("The parameter recipient[id] is required")
	}

	hasMessage := len(req.Message) > 0
	switch {
	case hasMessage && req.SenderAction != "":
		return nil, errParam("Only one of message or sender_action may be set")
	case !hasMessage && req.SenderAction == "":
		return nil, errParam("The parameter message or sender_action is required")
	case req.SenderAction != "":
		switch req.SenderAction {
		case "mark_seen", "typing_on", "typing_off":
		default:
			return nil, errParam("Param sender_action must be one of {mark_seen, typing_on, typing_off} - got %q", req.SenderAction)
		}
		if req.Tag != "" {
			return nil, errParam("Tag can only be used with messaging_type MESSAGE_TAG")
		}
		p.senderAction = req.SenderAction
		return p, nil
	}

	p.isMessage = true
	switch req.MessagingType {
	case "":
		return nil, errParam("The parameter messaging_type is required")
	case "RESPONSE", "UPDATE", "MESSAGE_TAG":
	default:
		return nil, errParam("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG} - got %q", req.MessagingType)
	}
	p.messagingType = req.MessagingType
	switch {
	case req.MessagingType == "MESSAGE_TAG" && req.Tag == "":
		return nil, errParam("Tag is required for MESSAGE_TAG messaging type")
	case req.MessagingType != "MESSAGE_TAG" && req.Tag != "":
		return nil, errParam("Tag can only be used with messaging_type MESSAGE_TAG")
	case req.Tag != "" && req.Tag != "HUMAN_AGENT":
		// ACCOUNT_UPDATE, CONFIRMED_EVENT_UPDATE, POST_PURCHASE_UPDATE and
		// every other tag are retired (spec: they now fail with 100).
		return nil, errParam("Param tag must be one of {HUMAN_AGENT} - got %q", req.Tag)
	}
	p.tag = req.Tag

	var m sendMessage
	if err := json.Unmarshal(req.Message, &m); err != nil {
		return nil, errParam("Param message must be a JSON object")
	}
	hasText := m.Text != nil && *m.Text != ""
	switch {
	case hasText && m.Attachment != nil:
		return nil, errParam("Only one of message[text] or message[attachment] may be set")
	case !hasText && m.Attachment == nil:
		return nil, errParam("Param message must be non-empty")
	case hasText:
		// Meta counts UTF-16 code units: an emoji outside the BMP is 2.
		if len(utf16.Encode([]rune(*m.Text))) > maxTextUnits {
			return nil, errParam("Length of param message[text] must be less than or equal to %d", maxTextUnits)
		}
		p.text = *m.Text
	default:
		a := m.Attachment
		if !attachmentTypes[a.Type] {
			return nil, errParam("Param message[attachment][type] must be one of {image, audio, video, file} - got %q", a.Type)
		}
		if a.Payload == nil || (a.Payload.URL == "" && a.Payload.AttachmentID == "") {
			return nil, errParam("Param message[attachment][payload] must have a url or an attachment_id")
		}
		if a.Payload.URL != "" && a.Payload.AttachmentID != "" {
			return nil, errParam("Only one of message[attachment][payload][url] or message[attachment][payload][attachment_id] may be set")
		}
		if a.Payload.URL != "" && !validHTTPURL(a.Payload.URL) {
			return nil, errParam("Param message[attachment][payload][url] must be a valid URL")
		}
		p.attType, p.attURL, p.attID = a.Type, a.Payload.URL, a.Payload.AttachmentID
		p.reusable = a.Payload.IsReusable
	}
	if len(m.QuickReplies) > maxQuickReplies {
		return nil, errParam("Param message[quick_replies] must have at most %d elements", maxQuickReplies)
	}
	for i, qr := range m.QuickReplies {
		out := QuickReply{ContentType: qr.ContentType, Title: qr.Title, ImageURL: qr.ImageURL}
		if qr.Payload != nil {
			out.Payload = jsonScalar(mustJSON(qr.Payload))
		}
		switch qr.ContentType {
		case "text":
			if qr.Title == "" && qr.ImageURL == "" {
				return nil, errParam("Param message[quick_replies][%d][title] must be non-empty", i)
			}
			if utf8.RuneCountInString(qr.Title) > maxQuickReplyRune {
				return nil, errParam("Length of param message[quick_replies][%d][title] must be less than or equal to %d", i, maxQuickReplyRune)
			}
			if out.Payload == "" {
				return nil, errParam("Param message[quick_replies][%d][payload] must be non-empty", i)
			}
		case "user_phone_number", "user_email":
		default:
			return nil, errParam("Param message[quick_replies][%d][content_type] must be one of {text, user_phone_number, user_email} - got %q", i, qr.ContentType)
		}
		p.quickReplies = append(p.quickReplies, out)
	}
	if m.Metadata != nil {
		if utf8.RuneCountInString(*m.Metadata) > maxMetadataRunes {
			return nil, errParam("Length of param message[metadata] must be less than or equal to %d", maxMetadataRunes)
		}
		p.metadata = *m.Metadata
	}
	return p, nil
}

// acceptSend applies the checks that depend on state, then records the
// message and schedules its echo.
func (s *Server) acceptSend(t token, p *parsedSend) *response {
	s.mu.Lock()
	u, known := s.users[userKey{t.pageID, p.psid}]
	if !known {
		s.mu.Unlock()
		return s.errorResponse(newGraphError(100, 2018001))
	}
	if u.blocked {
		s.mu.Unlock()
		return s.errorResponse(newGraphError(10, 2018108))
	}
	if p.tag == "HUMAN_AGENT" && !s.apps[t.appID].humanAgent {
		s.mu.Unlock()
		return s.errorResponse(&graphError{status: defaultErrStatus, code: 200, typ: typeOAuth,
			message: "(#200) The HUMAN_AGENT tag requires the Human Agent permission for this app"})
	}
	now := s.now()
	window := s.replyWindow
	if p.tag == "HUMAN_AGENT" {
		window = s.humanWindow
	}
	if u.lastMsg.IsZero() || now.Sub(u.lastMsg) > window {
		s.mu.Unlock()
		return s.errorResponse(newGraphError(10, 2018278))
	}
	if p.attID != "" {
		a, ok := s.attachments[p.attID]
		if !ok || a.pageID != t.pageID {
			s.mu.Unlock()
			return s.errorResponse(errParam("Param message[attachment][payload][attachment_id] is not a valid attachment id"))
		}
	}

	if !p.isMessage {
		s.mu.Unlock()
		return s.jsonResponse(orderedObject{{"recipient_id", p.psid}})
	}

	mid := newMID()
	newAttID := ""
	if p.attURL != "" && p.reusable {
		newAttID = randomDigits(16)
		s.attachments[newAttID] = &attachment{pageID: t.pageID, typ: p.attType, url: p.attURL}
	}
	msg := SentMessage{
		MessageID: mid, AppID: t.appID, PageID: t.pageID, PSID: p.psid,
		MessagingType: p.messagingType, Tag: p.tag, Text: p.text,
		AttachmentType: p.attType, AttachmentURL: p.attURL, AttachmentID: p.attID,
		QuickReplies: p.quickReplies, Metadata: p.metadata, At: now,
	}
	if msg.AttachmentID != "" {
		msg.AttachmentURL = s.attachments[msg.AttachmentID].url
	}
	s.sent = append(s.sent, msg)
	u.undelivered = append(u.undelivered, mid)

	echo := s.echoEvent(msg, now)
	targets := s.targetsLocked(s.pages[t.pageID], []json.RawMessage{echo}, nil)
	s.mu.Unlock()

	s.log.Info("message accepted", "page_id", t.pageID, "psid", p.psid, "mid", mid,
		"messaging_type", p.messagingType, "tag", p.tag)
	for _, tg := range targets {
		s.deliverAsync(s.newDelivery(tg, t.pageID, now))
	}

	resp := orderedObject{{"recipient_id", p.psid}, {"message_id", mid}}
	if newAttID != "" {
		resp = append(resp, kv{"attachment_id", newAttID})
	}
	return s.jsonResponse(resp)
}

// echoEvent is the message_echoes event of a sent message.
func (s *Server) echoEvent(m SentMessage, now time.Time) json.RawMessage {
	msg := orderedObject{{"mid", m.MessageID}, {"is_echo", true}, {"app_id", appIDValue(m.AppID)}}
	if m.Metadata != "" {
		msg = append(msg, kv{"metadata", m.Metadata})
	}
	if m.Text != "" {
		msg = append(msg, kv{"text", m.Text})
	}
	if m.AttachmentType != "" {
		// Meta re-hosts what pages send: echoes carry its CDN's URL, not
		// the URL the app gave.
		cdn := "https://scontent.xx.fbcdn.net/v/t1.15752-9/" + randomDigits(17) + "_n?_nc_cat=1&oh=" + fbtraceID()
		msg = append(msg, kv{"attachments", []orderedObject{{
			{"type", m.AttachmentType}, {"payload", orderedObject{{"url", cdn}}},
		}}})
	}
	ev := orderedObject{
		{"sender", orderedObject{{"id", m.PageID}}},
		{"recipient", orderedObject{{"id", m.PSID}}},
		{"timestamp", now.UnixMilli()},
		{"message", msg},
	}
	return mustJSON(ev)
}

// appIDValue is the app id as a JSON number when it is one (Meta sends
// app_id as a number in echoes), else as a string.
func appIDValue(id string) any {
	if _, err := strconv.ParseUint(id, 10, 64); err == nil {
		return json.Number(id)
	}
	return id
}

// jsonScalar reads a JSON string or number as a string.
func jsonScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func mustJSON(v any) json.RawMessage {
	b, err := marshalNoHTML(v)
	if err != nil {
		panic("fakemeta: " + err.Error())
	}
	return b
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && !strings.ContainsAny(s, " \n")
}
