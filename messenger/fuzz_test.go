package messenger

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Seeds: Meta's envelopes of every kind (the testdata/fuzz corpus adds the
// regressions the fuzzer found).
var fuzzSeeds = []string{
	`{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1,"message":{"mid":"m_1","text":"h\u00e4llo"}}]}]}`,
	`{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":2,"message":{"mid":"m_2","attachments":[{"type":"image","payload":{"url":"https://x/p.jpg"}},{"type":"fallback"},{"type":"sticker","payload":{"url":"https://x/s.png","sticker_id":369239263222822}}]}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":3,"postback":{"mid":"m_3","title":"Track","payload":"TRACK","referral":{"ref":"r","source":"SHORTLINK","type":"OPEN_THREAD"}}}]}]}`,
	`{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":4,"message":{"mid":"m_4","text":"echo","is_echo":true,"app_id":263902037430900,"metadata":"parley:x"}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"reaction":{"reaction":"love","emoji":"\u2764","action":"react","mid":"m_4"}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":6,"message_edit":{"mid":"m_1","text":"x","num_edit":1}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":7,"delivery":{"mids":["m_4"],"watermark":4}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":8,"read":{"watermark":4}},{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":9,"referral":{"ref":"ad","source":"ADS","type":"OPEN_THREAD","ad_id":"42"}}]},{"id":"3","time":1,"standby":[{"sender":{"id":"4"},"recipient":{"id":"3"},"timestamp":1,"message":{"mid":"m_5","text":"standby"}}]}]}`,
	`{"object":"instagram","entry":[]}`,
	`{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":1,"optin":{"ref":"x"}}]}]}`,
	`{}`, `[]`, `null`, `{"object":"page","entry":[{"messaging":{}}]}`,
}

// FuzzParseWebhook: any body either parses or is refused with an error,
// never a panic; what parses parses again the same (events keep their
// order and dedupe keys).
func FuzzParseWebhook(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseWebhook(body)
		if err != nil {
			return
		}
		again, err := ParseWebhook(body)
		if err != nil {
			t.Fatalf("parsed once, not twice: %v", err)
		}
		var keys, keys2 []string
		for _, e := range n.Entries {
			for _, ev := range e.Events {
				keys = append(keys, string(ev.Kind)+"|"+ev.DedupeKey())
			}
		}
		for _, e := range again.Entries {
			for _, ev := range e.Events {
				keys2 = append(keys2, string(ev.Kind)+"|"+ev.DedupeKey())
			}
		}
		if !reflect.DeepEqual(keys, keys2) {
			t.Fatalf("parsing is not stable: %v then %v", keys, keys2)
		}
		// What the gateway signals must survive Temporal's JSON payloads.
		for _, e := range n.Entries {
			for _, ev := range e.Events {
				b, err := json.Marshal(ev)
				if err != nil {
					t.Fatalf("event %+v does not encode: %v", ev, err)
				}
				var back Event
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatalf("event %s does not decode: %v", b, err)
				}
				if back.DedupeKey() != ev.DedupeKey() || back.Kind != ev.Kind || back.OpensWindow() != ev.OpensWindow() {
					t.Fatalf("event changed through JSON: %+v -> %+v", ev, back)
				}
			}
		}
	})
}

// FuzzVerifySignature: a body signed with the secret always verifies; any
// other body, secret or header never does; nothing panics.
func FuzzVerifySignature(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "app-secret", "sha256=00", 0)
	}
	f.Fuzz(func(t *testing.T, body []byte, secret, header string, flip int) {
		if secret == "" {
			return
		}
		_ = VerifySignature(body, header, "", secret) // any header: no panic
		good := Sign(body, secret)
		if err := VerifySignature(body, good, "", secret); err != nil {
			t.Fatalf("a body signed with the secret does not verify: %v", err)
		}
		if err := VerifySignature(body, good, "sha1=0000", secret); err != nil {
			t.Fatalf("sha256 present and good, a bad legacy sha1 must not matter: %v", err)
		}
		if len(body) > 0 {
			changed := append([]byte(nil), body...)
			i := (flip%len(changed) + len(changed)) % len(changed)
			changed[i] ^= 0x01
			if err := VerifySignature(changed, good, "", secret); err == nil {
				t.Fatalf("a body with byte %d changed verifies", i)
			}
		}
		if err := VerifySignature(body, good, "", secret+"x"); err == nil {
			t.Fatal("another secret verifies")
		}
	})
}
