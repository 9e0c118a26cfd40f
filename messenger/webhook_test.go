package messenger

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// batchBody is shaped like Meta's deliveries: several entries, several events
// per entry, a standby entry, escaped non-ASCII and escaped slashes.
const batchBody = `{"object":"page","entry":[` +
	`{"id":"106123456789012","time":1718000000999,"messaging":[` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000000100,"message":{"mid":"m_AAA","text":"Gr\u00fc\u00dfe, K\u00e4se? \ud83d\ude00","quick_reply":{"payload":"QR_YES"},"reply_to":{"mid":"m_PREV"}}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000000200,"message":{"mid":"m_BBB","attachments":[{"type":"image","payload":{"url":"https:\/\/scontent.xx.fbcdn.net\/v\/a.jpg?_nc_cat=1&oh=00_x"}},{"type":"fallback","title":"A shared link","url":"https:\/\/l.facebook.com\/l.php?u=x"},{"type":"fallback"}]}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000000300,"message":{"mid":"m_CCC","attachments":[{"type":"sticker","payload":{"url":"https:\/\/scontent.xx.fbcdn.net\/s.png","sticker_id":369239263222822}},{"type":"image","payload":{"url":"https:\/\/scontent.xx.fbcdn.net\/s.png","sticker_id":369239263222822}}]}}` +
	`]},` +
	`{"id":"106123456789012","time":1718000001999,"messaging":[` +
	`{"sender":{"id":"106123456789012"},"recipient":{"id":"7012345678901234"},"timestamp":1718000001100,"message":{"mid":"m_ECHO","is_echo":true,"app_id":263902037430900,"metadata":"parley:42","text":"Hello from the Page Inbox"}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001200,"postback":{"mid":"m_PB","title":"Get Started","payload":"GET_STARTED","referral":{"ref":"campaign-7","source":"SHORTLINK","type":"OPEN_THREAD"}}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001300,"delivery":{"mids":["m_ECHO"],"watermark":1718000001250}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001400,"read":{"watermark":1718000001350}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001500,"reaction":{"reaction":"love","emoji":"\u2764\ufe0f","action":"react","mid":"m_ECHO"}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001600,"message_edit":{"mid":"m_AAA","text":"Gr\u00fc\u00dfe!","num_edit":2}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001700,"referral":{"ref":"ad-landing","source":"ADS","type":"OPEN_THREAD","ad_id":"6045246247433","referer_uri":"https:\/\/m.me\/parley?ref=ad-landing"}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001800,"optin":{"type":"notification_messages","payload":"X","notification_messages_token":"t"}},` +
	`{"sender":{"id":"7012345678901234"},"recipient":{"id":"106123456789012"},"timestamp":1718000001900,"pass_thread_control":{"new_owner_app_id":"123","metadata":"x"}},` +
	`{"recipient":{"id":"106123456789012"},"timestamp":1718000001950,"policy-enforcement":{"action":"block","reason":"spam"}}` +
	`]},` +
	`{"id":"2222","time":1718000002999,"standby":[` +
	`{"sender":{"id":"8012345678901234"},"recipient":{"id":"2222"},"timestamp":1718000002100,"message":{"mid":"m_SB","text":"standby hi"}},` +
	`{"sender":{"id":"2222"},"recipient":{"id":"8012345678901234"},"timestamp":1718000002200,"message":{"mid":"m_SB_ECHO","is_echo":true,"app_id":"263902037430900","text":"answered by the inbox"}}` +
	`]}]}`

func parseBatch(t *testing.T) *Notification {
	t.Helper()
	n, err := ParseWebhook([]byte(batchBody))
	if err != nil {
		t.Fatalf("ParseWebhook: %v", err)
	}
	return n
}

func TestParseWebhookBatch(t *testing.T) {
	n := parseBatch(t)
	if n.Object != "page" {
		t.Errorf("Object = %q", n.Object)
	}
	if len(n.Entries) != 3 {
		t.Fatalf("%d entries, want 3", len(n.Entries))
	}
	wantCounts := []int{3, 10, 2}
	for i, e := range n.Entries {
		if len(e.Events) != wantCounts[i] {
			t.Errorf("entry %d: %d events, want %d", i, len(e.Events), wantCounts[i])
		}
	}
	if e := n.Entries[0]; e.PageID != "106123456789012" || e.Time != 1718000000999 {
		t.Errorf("entry 0 = %q/%d", e.PageID, e.Time)
	}

	var kinds []EventKind
	for _, e := range n.Entries {
		for _, ev := range e.Events {
			kinds = append(kinds, ev.Kind)
		}
	}
	wantKinds := []EventKind{
		KindMessage, KindMessage, KindMessage,
		KindEcho, KindPostback, KindDelivery, KindRead, KindReaction, KindMessageEdit, KindReferral, KindOptin, KindHandover, KindUnknown,
		KindMessage, KindEcho,
	}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("kinds = %v\nwant    %v", kinds, wantKinds)
	}
}

// want clears Raw so events can be compared field by field; Raw has its own test.
func withoutRaw(ev Event) Event {
	ev.Raw = nil
	return ev
}

func TestParseWebhookFields(t *testing.T) {
	n := parseBatch(t)
	const page, psid = "106123456789012", "7012345678901234"
	e0, e1, e2 := n.Entries[0].Events, n.Entries[1].Events, n.Entries[2].Events
	tests := []struct {
		name string
		got  Event
		want Event
	}{
		{"text with escaped non-ASCII, quick reply, reply_to", e0[0], Event{
			Kind: KindMessage, PageID: page, PSID: psid, Timestamp: 1718000000100, MID: "m_AAA",
			Text: "Grüße, Käse? 😀", QuickReplyPayload: "QR_YES", ReplyToMID: "m_PREV",
		}},
		{"image and fallbacks, one without payload", e0[1], Event{
			Kind: KindMessage, PageID: page, PSID: psid, Timestamp: 1718000000200, MID: "m_BBB",
			Attachments: []Attachment{
				{Type: "image", URL: "https://scontent.xx.fbcdn.net/v/a.jpg?_nc_cat=1&oh=00_x"},
				{Type: "fallback", Title: "A shared link", URL: "https://l.facebook.com/l.php?u=x"},
				{Type: "fallback"},
			},
		}},
		{"sticker with its companion image", e0[2], Event{
			Kind: KindMessage, PageID: page, PSID: psid, Timestamp: 1718000000300, MID: "m_CCC",
			Attachments: []Attachment{
				{Type: "sticker", URL: "https://scontent.xx.fbcdn.net/s.png", StickerID: 369239263222822},
				{Type: "image", URL: "https://scontent.xx.fbcdn.net/s.png", StickerID: 369239263222822},
			},
		}},
		{"echo: customer is the recipient, numeric app_id kept as decimal", e1[0], Event{
			Kind: KindEcho, PageID: page, PSID: psid, Timestamp: 1718000001100, MID: "m_ECHO",
			Text: "Hello from the Page Inbox", AppID: "263902037430900", Metadata: "parley:42",
		}},
		{"postback with referral", e1[1], Event{
			Kind: KindPostback, PageID: page, PSID: psid, Timestamp: 1718000001200, MID: "m_PB",
			PostbackTitle: "Get Started", PostbackPayload: "GET_STARTED",
			Referral: &Referral{Ref: "campaign-7", Source: "SHORTLINK", Type: "OPEN_THREAD"},
		}},
		{"delivery", e1[2], Event{
			Kind: KindDelivery, PageID: page, PSID: psid, Timestamp: 1718000001300,
			Watermark: 1718000001250, MIDs: []string{"m_ECHO"},
		}},
		{"read", e1[3], Event{
			Kind: KindRead, PageID: page, PSID: psid, Timestamp: 1718000001400, Watermark: 1718000001350,
		}},
		{"reaction", e1[4], Event{
			Kind: KindReaction, PageID: page, PSID: psid, Timestamp: 1718000001500, MID: "m_ECHO",
			Reaction: "love", Emoji: "\u2764\ufe0f", ReactionAction: "react",
		}},
		{"message_edit", e1[5], Event{
			Kind: KindMessageEdit, PageID: page, PSID: psid, Timestamp: 1718000001600, MID: "m_AAA",
			Text: "Grüße!", NumEdit: 2,
		}},
		{"referral", e1[6], Event{
			Kind: KindReferral, PageID: page, PSID: psid, Timestamp: 1718000001700,
			Referral: &Referral{Ref: "ad-landing", Source: "ADS", Type: "OPEN_THREAD", AdID: "6045246247433", RefererURI: "https://m.me/parley?ref=ad-landing"},
		}},
		{"optin", e1[7], Event{Kind: KindOptin, PageID: page, PSID: psid, Timestamp: 1718000001800}},
		{"handover: control passed to this app", e1[8], Event{Kind: KindHandover, PageID: page, PSID: psid, Timestamp: 1718000001900,
			Handover: &Handover{Action: HandoverPass, NewOwnerAppID: "123", Metadata: "x"}}},
		{"unknown kind without sender kept", e1[9], Event{Kind: KindUnknown, PageID: page, Timestamp: 1718000001950}},
		{"standby message", e2[0], Event{
			Kind: KindMessage, PageID: "2222", PSID: "8012345678901234", Timestamp: 1718000002100, Standby: true,
			MID: "m_SB", Text: "standby hi",
		}},
		{"standby echo with string app_id", e2[1], Event{
			Kind: KindEcho, PageID: "2222", PSID: "8012345678901234", Timestamp: 1718000002200, Standby: true,
			MID: "m_SB_ECHO", Text: "answered by the inbox", AppID: "263902037430900",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withoutRaw(tt.got); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseWebhookRawIsTheReceivedBytes(t *testing.T) {
	n := parseBatch(t)
	body := []byte(batchBody)
	offset := 0
	for _, e := range n.Entries {
		for _, ev := range e.Events {
			if !bytes.HasPrefix(ev.Raw, []byte(`{"`)) || !bytes.HasSuffix(ev.Raw, []byte("}")) {
				t.Fatalf("%s: Raw is not one object: %s", ev.Kind, ev.Raw)
			}
			// In order, byte for byte, escapes untouched.
			i := bytes.Index(body[offset:], ev.Raw)
			if i < 0 {
				t.Fatalf("%s: Raw not found in the body after offset %d: %s", ev.Kind, offset, ev.Raw)
			}
			offset += i + len(ev.Raw)
		}
	}
	if first := n.Entries[0].Events[0].Raw; !bytes.Contains(first, []byte(`Gr\u00fc\u00dfe`)) {
		t.Errorf("escapes not kept in Raw: %s", first)
	}
}

func TestParseWebhookWhitespaceAndEventTimeFallback(t *testing.T) {
	body := "{\n  \"object\": \"page\",\n  \"entry\": [ {\n    \"id\": \"1\", \"time\": 1700000000000,\n    \"messaging\": [\n      {\"sender\": {\"id\": \"2\"}, \"recipient\": {\"id\": \"1\"}, \"read\": {\"watermark\": 5}}\n    ]\n  } ]\n}\n"
	n, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatalf("ParseWebhook: %v", err)
	}
	ev := n.Entries[0].Events[0]
	if ev.Timestamp != 1700000000000 {
		t.Errorf("Timestamp = %d, want the entry's time", ev.Timestamp)
	}
	if !strings.Contains(body, string(ev.Raw)) {
		t.Errorf("Raw %q not in body", ev.Raw)
	}
}

func TestParseWebhookEmptyAndOtherObjects(t *testing.T) {
	for _, body := range []string{
		`{"object":"page"}`,
		`{"object":"page","entry":null}`,
		`{"object":"page","entry":[]}`,
		`{"object":"page","entry":[{"id":"1","time":1}]}`,
		`{"object":"instagram","entry":[{"id":"1","time":1,"messaging":[]}]}`,
	} {
		n, err := ParseWebhook([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		for _, e := range n.Entries {
			if len(e.Events) != 0 {
				t.Errorf("%s: events %v", body, e.Events)
			}
		}
	}
}

func TestParseWebhookMalformed(t *testing.T) {
	const ids = `"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1`
	for name, body := range map[string]string{
		"empty":                      ``,
		"not JSON":                   `object=page`,
		"truncated":                  `{"object":"page","entry":[`,
		"array at top":               `[{"object":"page"}]`,
		"null":                       `null`,
		"no object":                  `{"entry":[]}`,
		"empty object":               `{"object":"","entry":[]}`,
		"object not a string":        `{"object":1,"entry":[]}`,
		"entry an object":            `{"object":"page","entry":{"id":"1"}}`,
		"entry a string":             `{"object":"page","entry":"x"}`,
		"entry item not an object":   `{"object":"page","entry":[1]}`,
		"messaging not an array":     `{"object":"page","entry":[{"id":"1","messaging":{}}]}`,
		"standby not an array":       `{"object":"page","entry":[{"id":"1","standby":"x"}]}`,
		"event not an object":        `{"object":"page","entry":[{"id":"1","messaging":["x"]}]}`,
		"message without sender":     `{"object":"page","entry":[{"id":"1","messaging":[{"recipient":{"id":"1"},"message":{"mid":"m"}}]}]}`,
		"message with empty sender":  `{"object":"page","entry":[{"id":"1","messaging":[{"sender":{},"recipient":{"id":"1"},"message":{"mid":"m"}}]}]}`,
		"echo without recipient":     `{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"1"},"message":{"mid":"m","is_echo":true}}]}]}`,
		"delivery without recipient": `{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"delivery":{"watermark":1}}]}]}`,
		"standby without sender":     `{"object":"page","entry":[{"id":"1","standby":[{"recipient":{"id":"1"},"read":{"watermark":1}}]}]}`,
		"message not an object":      `{"object":"page","entry":[{"id":"1","messaging":[{` + ids + `,"message":"hi"}]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			n, err := ParseWebhook([]byte(body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseWebhook = %+v, %v; want ErrMalformed", n, err)
			}
		})
	}
}

func TestParseWebhookLenientShapes(t *testing.T) {
	body := `{"object":"page","entry":[{"id":1061,"time":"1718000000000","messaging":[` +
		// a referral whose shape is not the documented one
		`{"sender":{"user_ref":"guest-1"},"recipient":{"id":"1061"},"timestamp":1.718000000001E+12,"referral":"x"},` +
		// a template echo whose payload Parley does not read
		`{"sender":{"id":"1061"},"recipient":{"id":"7"},"timestamp":1,"message":{"mid":"m","is_echo":true,"app_id":1.5e3,"attachments":[{"type":"template","payload":{"template_type":"button","buttons":[]}},{"type":"fallback","payload":null},{"type":"file","payload":"odd"}]}}` +
		`]}]}`
	n, err := ParseWebhook([]byte(body))
	if err != nil {
		t.Fatalf("ParseWebhook: %v", err)
	}
	e := n.Entries[0]
	if e.PageID != "1061" || e.Time != 1718000000000 {
		t.Errorf("entry = %q/%d", e.PageID, e.Time)
	}
	ref := e.Events[0]
	if ref.Kind != KindReferral || ref.PSID != "" || ref.Referral == nil || ref.Timestamp != 1718000000001 {
		t.Errorf("referral = %+v", ref)
	}
	echo := e.Events[1]
	if echo.AppID != "1500" || len(echo.Attachments) != 3 || echo.Attachments[0].Type != "template" {
		t.Errorf("echo = %+v", echo)
	}
}

func TestFlexStringKeepsLargeIDsExact(t *testing.T) {
	var v struct {
		A flexString `json:"a"`
		B flexString `json:"b"`
		C flexString `json:"c"`
	}
	if err := json.Unmarshal([]byte(`{"a":123456789012345678901234567890,"b":"x","c":true}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != "123456789012345678901234567890" || v.B != "x" || v.C != "" {
		t.Errorf("got %+v", v)
	}
}

// Events travel as Temporal payloads: JSON must round-trip.
func TestEventJSONRoundTrip(t *testing.T) {
	n := parseBatch(t)
	for _, e := range n.Entries {
		for _, ev := range e.Events {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("marshal %s: %v", ev.Kind, err)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", ev.Kind, err)
			}
			if !reflect.DeepEqual(withoutRaw(back), withoutRaw(ev)) {
				t.Errorf("round trip of %s:\n got %+v\nwant %+v", ev.Kind, back, ev)
			}
			var rawBefore, rawAfter any
			if err := json.Unmarshal(ev.Raw, &rawBefore); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(back.Raw, &rawAfter); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rawBefore, rawAfter) {
				t.Errorf("raw of %s changed meaning", ev.Kind)
			}
		}
	}
	b, err := json.Marshal(Event{Kind: KindRead, PSID: "1", Watermark: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"kind":"read","psid":"1","watermark":5}`; got != want {
		t.Errorf("JSON = %s, want %s (snake_case, omitempty)", got, want)
	}
}
