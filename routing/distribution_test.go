package routing

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDistributionValidate(t *testing.T) {
	exists := queues("general", "billing")
	valid := Distribution{Mode: ModePush, FallbackQueueID: "general"}.WithDefaults()
	if err := valid.Validate(exists); err != nil {
		t.Fatalf("defaults: Validate = %v, want nil", err)
	}
	full := Distribution{Mode: ModePick, CapacityUnits: MaxCapacityUnits, AllowedPresences: []string{PresenceInactive, PresenceOffline, PresenceAway, PresenceDoNotDisturb, PresenceBusy, PresenceAvailable},
		KeepSameAgent:             KeepSame{Enabled: true, Wait: Duration(MaxKeepSameAgentWait)},
		BlockCapacityDuringWrapUp: WrapUpBlock{Mode: WrapUpDuration, Duration: Duration(MinWrapUpBlock)},
		OfferTimeout:              Duration(MaxOfferTimeout), MissedOfferPresence: PresenceInactive, FallbackQueueID: "general",
		Rules: []Rule{{Name: "billing", QueueID: "billing", Conditions: []Condition{cond(FieldFirstMessage, OpContains, "invoice")}}}}
	if err := full.Validate(exists); err != nil {
		t.Fatalf("every setting: Validate = %v, want nil", err)
	}
	disabled := valid
	disabled.KeepSameAgent = KeepSame{Wait: 0}
	if err := disabled.Validate(exists); err != nil {
		t.Fatalf("keep same agent off: Validate = %v, want nil", err)
	}

	with := func(f func(d *Distribution)) Distribution {
		d := valid
		d.AllowedPresences = slices.Clone(valid.AllowedPresences)
		f(&d)
		return d
	}
	rule := func(c Condition) []Rule {
		return []Rule{full.Rules[0], {Name: "tech", QueueID: "billing", Conditions: []Condition{cond(FieldPage, OpExists, ""), c}}}
	}
	for _, tc := range []struct {
		what    string
		d       Distribution
		field   string
		message string
	}{
		{"no mode", with(func(d *Distribution) { d.Mode = "" }), "mode", "is required: push"},
		{"unknown mode", with(func(d *Distribution) { d.Mode = "broadcast" }), "mode", `must be push or pick, got "broadcast"`},
		{"capacity 0", with(func(d *Distribution) { d.CapacityUnits = 0 }), "capacity_units", "from 1 to 100, got 0"},
		{"capacity too big", with(func(d *Distribution) { d.CapacityUnits = 101 }), "capacity_units", "from 1 to 100"},
		{"no presences", with(func(d *Distribution) { d.AllowedPresences = nil }), "allowed_presences", "at least one"},
		{"unknown presence", with(func(d *Distribution) { d.AllowedPresences = []string{PresenceAvailable, "lunch"} }), "allowed_presences[1]", `got "lunch"`},
		{"presence twice", with(func(d *Distribution) { d.AllowedPresences = []string{PresenceBusy, PresenceAvailable, PresenceBusy} }), "allowed_presences[2]", "listed twice"},
		{"negative wait", with(func(d *Distribution) { d.KeepSameAgent.Wait = Duration(-time.Second) }), "keep_same_agent.wait", "from 0s to 24h"},
		{"wait over a day", with(func(d *Distribution) { d.KeepSameAgent = KeepSame{Enabled: true, Wait: Duration(25 * time.Hour)} }), "keep_same_agent.wait", "from 0s to 24h"},
		{"enabled without a wait", with(func(d *Distribution) { d.KeepSameAgent = KeepSame{Enabled: true} }), "keep_same_agent.wait", "is required when keep_same_agent is enabled"},
		{"no wrap-up mode", with(func(d *Distribution) { d.BlockCapacityDuringWrapUp.Mode = "" }), "block_capacity_during_wrap_up.mode", "must be always, never or duration"},
		{"unknown wrap-up mode", with(func(d *Distribution) { d.BlockCapacityDuringWrapUp.Mode = "sometimes" }), "block_capacity_during_wrap_up.mode", `got "sometimes"`},
		{"duration with always", with(func(d *Distribution) {
			d.BlockCapacityDuringWrapUp = WrapUpBlock{Mode: WrapUpAlways, Duration: Duration(time.Minute)}
		}), "block_capacity_during_wrap_up.duration", "only for mode duration"},
		{"duration with never", with(func(d *Distribution) {
			d.BlockCapacityDuringWrapUp = WrapUpBlock{Mode: WrapUpNever, Duration: Duration(time.Minute)}
		}), "block_capacity_during_wrap_up.duration", "only for mode duration"},
		{"duration missing", with(func(d *Distribution) { d.BlockCapacityDuringWrapUp = WrapUpBlock{Mode: WrapUpDuration} }), "block_capacity_during_wrap_up.duration", "from 30s to 1h0m0s"},
		{"duration too short", with(func(d *Distribution) {
			d.BlockCapacityDuringWrapUp = WrapUpBlock{Mode: WrapUpDuration, Duration: Duration(29 * time.Second)}
		}), "block_capacity_during_wrap_up.duration", `got "29s"`},
		{"duration too long", with(func(d *Distribution) {
			d.BlockCapacityDuringWrapUp = WrapUpBlock{Mode: WrapUpDuration, Duration: Duration(61 * time.Minute)}
		}), "block_capacity_during_wrap_up.duration", `got "1h1m0s"`},
		{"no offer time-out", with(func(d *Distribution) { d.OfferTimeout = 0 }), "offer_timeout", "from 5s to 1h0m0s"},
		{"offer time-out too short", with(func(d *Distribution) { d.OfferTimeout = Duration(4 * time.Second) }), "offer_timeout", `got "4s"`},
		{"offer time-out too long", with(func(d *Distribution) { d.OfferTimeout = Duration(time.Hour + time.Second) }), "offer_timeout", `got "1h0m1s"`},
		{"missed offer presence", with(func(d *Distribution) { d.MissedOfferPresence = PresenceAway }), "missed_offer_presence", "must be inactive, or empty"},
		{"no fallback queue", with(func(d *Distribution) { d.FallbackQueueID = "" }), "fallback_queue", "is required"},
		{"unknown fallback queue", with(func(d *Distribution) { d.FallbackQueueID = "gone" }), "fallback_queue", `no queue "gone"`},
		{"too many rules", with(func(d *Distribution) { d.Rules = make([]Rule, MaxRules+1) }), "routing_rules", "at most 100 rules"},
		{"a rule's operator", with(func(d *Distribution) { d.Rules = rule(cond(FieldLocale, "like", "fr")) }), "routing_rules[1].conditions[1].operator", `unknown operator "like"`},
		{"a rule's queue", with(func(d *Distribution) {
			d.Rules = []Rule{{Name: "x", QueueID: "gone", Conditions: full.Rules[0].Conditions}}
		}), "routing_rules[0].queue", `no queue "gone"`},
		{"in order: mode first", with(func(d *Distribution) { d.Mode, d.CapacityUnits, d.FallbackQueueID = "", 0, "" }), "mode", ""},
		{"in order: fallback before rules", with(func(d *Distribution) { d.FallbackQueueID, d.Rules = "", rule(cond("", "", "")) }), "fallback_queue", ""},
	} {
		t.Run(tc.what, func(t *testing.T) {
			err := tc.d.Validate(exists)
			wantFieldError(t, err, tc.field, tc.message)
			var re *RuleError
			if isRule := strings.HasPrefix(tc.field, "routing_rules["); errors.As(err, &re) != isRule {
				t.Fatalf("errors.As(%v, *RuleError) = %v, want %v", err, !isRule, isRule)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	got := Distribution{Mode: ModePick, FallbackQueueID: "general"}.WithDefaults()
	want := Distribution{Mode: ModePick, FallbackQueueID: "general", CapacityUnits: 1,
		AllowedPresences:          []string{PresenceAvailable, PresenceBusy},
		OfferTimeout:              Duration(DefaultOfferTimeout),
		BlockCapacityDuringWrapUp: WrapUpBlock{Mode: WrapUpAlways}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
	set := Distribution{Mode: ModePush, CapacityUnits: 3, AllowedPresences: []string{PresenceAway},
		OfferTimeout: Duration(time.Minute), BlockCapacityDuringWrapUp: WrapUpBlock{Mode: WrapUpNever},
		KeepSameAgent: KeepSame{Enabled: true, Wait: Duration(time.Minute)}}
	if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
		t.Fatalf("WithDefaults changed set values: %+v, want %+v", got, set)
	}
	if got := (Distribution{}).WithDefaults(); got.Mode != "" {
		t.Fatalf("WithDefaults set mode %q: the admin chooses it", got.Mode)
	}
	if got := (Distribution{AllowedPresences: []string{}}).WithDefaults(); len(got.AllowedPresences) != 2 {
		t.Fatalf("WithDefaults left an empty list of presences: %q", got.AllowedPresences)
	}
}
