package messenger

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The seeds are in testdata/fuzz/<target>: Meta's envelopes of every event
// kind, batches, standby, escaped non-ASCII, ids and times as strings and
// floats, and the regressions the fuzzer found.

// FuzzParseWebhook: any body either parses or is refused with ErrMalformed,
// never a panic. What parses parses again the same; rebuilt from the events'
// raw JSON (as the gateway keeps them) it gives the same events in the same
// order with the same dedupe keys; and each event survives the JSON of a
// Temporal signal.
func FuzzParseWebhook(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := ParseWebhook(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		again, err := ParseWebhook(body)
		if err != nil || !reflect.DeepEqual(n, again) {
			t.Fatalf("parsing is not deterministic: %v", err)
		}
		rebuilt, err := ParseWebhook(rebuild(t, n))
		if err != nil {
			t.Fatalf("the events' raw JSON does not parse again: %v", err)
		}
		if got, want := eventKeys(rebuilt), eventKeys(n); !reflect.DeepEqual(got, want) {
			t.Fatalf("re-parsed events differ:\n got %q\nwant %q", got, want)
		}
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
				ev.Raw, back.Raw = nil, nil // compacted, same meaning
				if !reflect.DeepEqual(back, ev) {
					t.Fatalf("event changed through JSON:\n%+v\n%+v", ev, back)
				}
			}
		}
	})
}

// rebuild writes a notification back as a webhook body from its events' raw
// JSON, messaging[] then standby[] per entry, as Meta orders them.
func rebuild(t *testing.T, n *Notification) []byte {
	t.Helper()
	type entry struct {
		ID        string            `json:"id"`
		Time      int64             `json:"time"`
		Messaging []json.RawMessage `json:"messaging,omitempty"`
		Standby   []json.RawMessage `json:"standby,omitempty"`
	}
	env := struct {
		Object string  `json:"object"`
		Entry  []entry `json:"entry"`
	}{Object: n.Object, Entry: []entry{}}
	for _, e := range n.Entries {
		w := entry{ID: e.PageID, Time: e.Time}
		for _, ev := range e.Events {
			if ev.Standby {
				w.Standby = append(w.Standby, ev.Raw)
			} else {
				w.Messaging = append(w.Messaging, ev.Raw)
			}
		}
		env.Entry = append(env.Entry, w)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	return b
}

// eventKeys lists each event's entry, kind, customer, standby flag and
// dedupe key, in order.
func eventKeys(n *Notification) []string {
	var out []string
	for i, e := range n.Entries {
		for _, ev := range e.Events {
			out = append(out, strings.Join([]string{strconv.Itoa(i), e.PageID, string(ev.Kind), ev.PSID, strconv.FormatBool(ev.Standby), ev.DedupeKey()}, "|"))
		}
	}
	return out
}

// FuzzVerifySignature: a body signed with the secret always verifies (sha256,
// or legacy sha1 alone); the body, signature or secret changed in one byte
// never does; any header is refused or accepted without a panic.
func FuzzVerifySignature(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, secret, header string, flip int) {
		err := VerifySignature(body, header, header, secret) // any header: no panic
		if err == nil && !strings.EqualFold(strings.TrimSpace(header), Sign(body, secret)) {
			t.Fatalf("header %q verifies for another body or secret", header)
		}
		if secret == "" {
			if err := VerifySignature(body, Sign(body, secret), "", secret); err == nil {
				t.Fatal("an empty secret verifies")
			}
			return
		}
		good, good1 := Sign(body, secret), SignSHA1(body, secret)
		if err := VerifySignature(body, good, "", secret); err != nil {
			t.Fatalf("a body signed with the secret does not verify: %v", err)
		}
		if err := VerifySignature(body, "", good1, secret); err != nil {
			t.Fatalf("a body signed with sha1 alone does not verify: %v", err)
		}
		if err := VerifySignature(body, good, "sha1=0000", secret); err != nil {
			t.Fatalf("sha256 present and good, a bad legacy sha1 must not matter: %v", err)
		}
		if err := VerifySignature(body, "sha256=00", good1, secret); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("a good sha1 rescues a bad sha256: %v", err)
		}
		at := func(n int) int { return (flip%n + n) % n }
		if len(body) > 0 {
			changed := []byte(string(body))
			i := at(len(changed))
			changed[i] ^= 0x01
			if err := VerifySignature(changed, good, "", secret); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("a body with byte %d changed verifies: %v", i, err)
			}
			if err := VerifySignature(body[:len(body)-1], good, "", secret); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("a body one byte short verifies: %v", err)
			}
		}
		sig := []byte(good)
		i := len("sha256=") + at(len(sig)-len("sha256="))
		sig[i] ^= 0x01 // another hex digit, or not hex: never the same bytes
		if err := VerifySignature(body, string(sig), "", secret); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("a signature with byte %d changed verifies: %v", i, err)
		}
		other := []byte(secret)
		other[at(len(other))] ^= 0x01
		if err := VerifySignature(body, good, "", string(other)); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("secret %q verifies what %q signed", other, secret)
		}
	})
}
