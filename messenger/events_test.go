package messenger

import "testing"

func TestDedupeKey(t *testing.T) {
	ref := &Referral{Ref: "camp"}
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Kind: KindMessage, PSID: "p", Timestamp: 1, MID: "m_1"}, "mid:m_1"},
		{Event{Kind: KindEcho, PSID: "p", Timestamp: 1, MID: "m_2"}, "mid:m_2"},
		{Event{Kind: KindPostback, PSID: "p", Timestamp: 1, MID: "m_3", PostbackPayload: "GS"}, "mid:m_3"},
		{Event{Kind: KindPostback, PSID: "p", Timestamp: 7, PostbackPayload: "GS"}, "postback:p:7:GS"},
		{Event{Kind: KindMessageEdit, PSID: "p", Timestamp: 1, MID: "m_4", NumEdit: 3}, "edit:m_4:3"},
		{Event{Kind: KindReaction, PSID: "p", Timestamp: 9, MID: "m_5", Reaction: "love", Emoji: "❤", ReactionAction: "react"}, "reaction:m_5:react:love:9"},
		{Event{Kind: KindReaction, PSID: "p", Timestamp: 9, MID: "m_5", Emoji: "🙃", ReactionAction: "react"}, "reaction:m_5:react:🙃:9"},
		{Event{Kind: KindReaction, PSID: "p", Timestamp: 10, MID: "m_5", ReactionAction: "unreact"}, "reaction:m_5:unreact::10"},
		{Event{Kind: KindDelivery, PSID: "p", Timestamp: 1, Watermark: 42}, "delivery:42"},
		{Event{Kind: KindRead, PSID: "p", Timestamp: 1, Watermark: 43}, "read:43"},
		{Event{Kind: KindReferral, PSID: "p", Timestamp: 5, Referral: ref}, "referral:p:5:camp"},
		{Event{Kind: KindReferral, PSID: "p", Timestamp: 5}, "referral:p:5:"},
		{Event{Kind: KindOptin, PSID: "p", Timestamp: 6}, "optin:p:6"},
		{Event{Kind: KindUnknown, PSID: "p", Timestamp: 8}, "unknown:p:8"},
		{Event{Kind: KindMessage, PSID: "p", Timestamp: 8}, "message:p:8"},
	}
	for _, tt := range tests {
		if got := tt.ev.DedupeKey(); got != tt.want {
			t.Errorf("%+v: DedupeKey = %q, want %q", tt.ev, got, tt.want)
		}
	}
}

// A redelivered batch gives the same keys; distinct facts give distinct keys.
func TestDedupeKeysOfBatch(t *testing.T) {
	first, second := parseBatch(t), parseBatch(t)
	seen := map[string]bool{}
	for i, e := range first.Entries {
		for j, ev := range e.Events {
			k := ev.DedupeKey()
			if k2 := second.Entries[i].Events[j].DedupeKey(); k2 != k {
				t.Errorf("redelivery key %q != %q", k2, k)
			}
			if seen[k] {
				t.Errorf("key %q used by two facts", k)
			}
			seen[k] = true
		}
	}
}

func TestOpensWindowAndInbound(t *testing.T) {
	tests := []struct {
		kind           EventKind
		opens, inbound bool
	}{
		{KindMessage, true, true},
		{KindPostback, true, true},
		{KindReferral, true, true},
		{KindEcho, false, false},
		{KindReaction, false, true},
		{KindDelivery, false, true},
		{KindRead, false, true},
		{KindMessageEdit, false, true},
		{KindOptin, false, true},
		{KindUnknown, false, true},
	}
	for _, tt := range tests {
		ev := Event{Kind: tt.kind}
		if got := ev.OpensWindow(); got != tt.opens {
			t.Errorf("%s: OpensWindow = %v, want %v", tt.kind, got, tt.opens)
		}
		if got := ev.Inbound(); got != tt.inbound {
			t.Errorf("%s: Inbound = %v, want %v", tt.kind, got, tt.inbound)
		}
	}
}
