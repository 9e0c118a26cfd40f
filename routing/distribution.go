package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits of a distribution (as the API documents them).
const (
	MaxCapacityUnits     = 100
	MinOfferTimeout      = 5 * time.Second
	MaxOfferTimeout      = time.Hour
	MaxKeepSameAgentWait = 24 * time.Hour
	MinWrapUpBlock       = 30 * time.Second
	MaxWrapUpBlock       = time.Hour
)

// allPresences are the presences allowed_presences may name.
func allPresences() []string { return append(ChoosablePresences(), PresenceInactive) }

func (d Distribution) validate(queueExists func(string) bool) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	switch d.Mode {
	case ModePush, ModePick:
	case "":
		return bad("mode", "is required: %s (Parley offers each conversation to one agent) or %s (agents pick from their queues)", ModePush, ModePick)
	default:
		return bad("mode", "must be %s or %s, got %q", ModePush, ModePick, d.Mode)
	}
	if d.CapacityUnits < 1 || d.CapacityUnits > MaxCapacityUnits {
		return bad("capacity_units", "must be from 1 to %d, got %d", MaxCapacityUnits, d.CapacityUnits)
	}
	known := allPresences()
	if len(d.AllowedPresences) == 0 {
		return bad("allowed_presences", "must name at least one presence among %s", strings.Join(known, ", "))
	}
	for i, p := range d.AllowedPresences {
		field := fmt.Sprintf("allowed_presences[%d]", i)
		if !slices.Contains(known, p) {
			return bad(field, "must be one of %s, got %q", strings.Join(known, ", "), p)
		}
		if slices.Contains(d.AllowedPresences[:i], p) {
			return bad(field, "%s is listed twice", p)
		}
	}
	switch w := d.KeepSameAgent.Wait.D(); {
	case w < 0 || w > MaxKeepSameAgentWait:
		return bad("keep_same_agent.wait", "must be a duration from 0s to %v, got %q", MaxKeepSameAgentWait, w.String())
	case d.KeepSameAgent.Enabled && w == 0:
		return bad("keep_same_agent.wait", "is required when keep_same_agent is enabled: how long to wait for the last agent, such as \"5m\" (at most %v)", MaxKeepSameAgentWait)
	}
	b := d.BlockCapacityDuringWrapUp
	switch b.Mode {
	case WrapUpAlways, WrapUpNever:
		if b.Duration != 0 {
			return bad("block_capacity_during_wrap_up.duration", "is only for mode %s", WrapUpDuration)
		}
	case WrapUpDuration:
		if w := b.Duration.D(); w < MinWrapUpBlock || w > MaxWrapUpBlock {
			return bad("block_capacity_during_wrap_up.duration", "must be a duration from %v to %v with mode %s, got %q", MinWrapUpBlock, MaxWrapUpBlock, WrapUpDuration, w.String())
		}
	default:
		return bad("block_capacity_during_wrap_up.mode", "must be %s, %s or %s, got %q", WrapUpAlways, WrapUpNever, WrapUpDuration, b.Mode)
	}
	if t := d.OfferTimeout.D(); t < MinOfferTimeout || t > MaxOfferTimeout {
		return bad("offer_timeout", "must be a duration from %v to %v, got %q", MinOfferTimeout, MaxOfferTimeout, t.String())
	}
	if d.MissedOfferPresence != "" && d.MissedOfferPresence != PresenceInactive {
		return bad("missed_offer_presence", "must be %s, or empty to leave the agent's presence alone, got %q", PresenceInactive, d.MissedOfferPresence)
	}
	switch {
	case d.FallbackQueueID == "":
		return bad("fallback_queue", "is required: the id of the queue for the conversations no rule sends elsewhere (GET /api/v1/queues lists them)")
	case queueExists != nil && !queueExists(d.FallbackQueueID):
		return bad("fallback_queue", "no queue %q (GET /api/v1/queues lists them)", d.FallbackQueueID)
	}
	if len(d.Rules) > MaxRules {
		return bad("routing_rules", "must have at most %d rules, got %d", MaxRules, len(d.Rules))
	}
	if err := validateRules(d.Rules, queueExists); err != nil {
		var re *RuleError
		if !errors.As(err, &re) {
			return err
		}
		field := fmt.Sprintf("routing_rules[%d]", re.Index)
		if re.Field != "" {
			field += "." + re.Field
		}
		return &FieldError{Field: field, Message: re.Message, Err: re}
	}
	return nil
}

func (d Distribution) withDefaults() Distribution {
	if d.CapacityUnits == 0 {
		d.CapacityUnits = 1
	}
	if len(d.AllowedPresences) == 0 {
		d.AllowedPresences = []string{PresenceAvailable, PresenceBusy}
	}
	if d.OfferTimeout == 0 {
		d.OfferTimeout = Duration(DefaultOfferTimeout)
	}
	if d.BlockCapacityDuringWrapUp.Mode == "" {
		d.BlockCapacityDuringWrapUp.Mode = WrapUpAlways
	}
	return d
}
