package routing

import (
	"strconv"
	"time"
)

// This file is the contract other packages build on; the bodies live in
// rules.go, hours.go, overflow.go, distribution.go and match.go.

// ChoosablePresences are the presences an agent or an admin may set.
func ChoosablePresences() []string {
	return []string{PresenceAvailable, PresenceBusy, PresenceDoNotDisturb, PresenceAway, PresenceOffline}
}

// EffectivePresence is the presence shown and used for distribution: an
// agent that chose available follows its load (free: available, partly
// used: busy, full: do_not_disturb); any other choice stays as chosen.
func EffectivePresence(chosen string, used, capacity int) string {
	if chosen != PresenceAvailable {
		return chosen
	}
	switch {
	case used >= capacity:
		return PresenceDoNotDisturb
	case used > 0:
		return PresenceBusy
	}
	return PresenceAvailable
}

// QueueInfo is a queue as Match sees it.
type QueueInfo struct {
	ID       string
	Priority int // lower first
	Method   string
	AgentIDs []string // members
}

// AgentInfo is an agent as Match sees it.
type AgentInfo struct {
	ID             string
	Presence       string // as chosen (EffectivePresence applies the load)
	Capacity       int
	Used           int // units held (offers included)
	LastOfferedAt  time.Time
	LastAssignedAt time.Time
}

// Item is a queued conversation as Match sees it.
type Item struct {
	ConversationID   string
	QueueID          string
	Mode             string // pick items are never offered
	Units            int
	Priority         int // higher first within a queue
	WaitingSince     time.Time
	AllowedPresences []string
	PreferredAgentID string
	PreferredUntil   time.Time
	Declined         []string // agents who rejected or missed it
	Offered          bool     // already offered to someone: skip
}

// Offer is Match's decision: offer ConversationID to AgentID.
type Offer struct {
	ConversationID string
	AgentID        string
	QueueID        string
}

// Match decides the offers to make now. Items are served in order of
// their queue's priority (lower first), then their own priority (higher
// first), then how long the customer has waited (FIFO), then id. Each gets
// the best eligible agent by its queue's method: a member of the queue
// whose effective presence is allowed, with enough free units, that has not
// declined it (unless every member has), and, while the item's keep-same-
// agent wait lasts, only its preferred agent. Units taken by one offer
// count for the next decisions.
//
// Also: items already offered, in pick mode, of an unknown queue or
// without a conversation id are skipped; a conversation gets at most one
// offer; Units below 1 count as 1; an unknown method is highest_capacity.
// The preference is dropped, before its time, when the preferred agent is
// not a member of the queue or has declined the item. The offers come in
// the order they were decided.
func Match(now time.Time, queues []QueueInfo, agents []AgentInfo, items []Item) []Offer {
	return match(now, queues, agents, items)
}

// RuleError names the rule and field an invalid rule set is refused for.
type RuleError struct {
	Index   int    // 0-based index in the list
	Field   string // JSON path inside the rule, e.g. "conditions[1].operator"
	Message string
}

func (e *RuleError) Error() string {
	if e.Field == "" {
		return "routing rule " + strconv.Itoa(e.Index) + ": " + e.Message
	}
	return "routing rule " + strconv.Itoa(e.Index) + ": " + e.Field + ": " + e.Message
}

// ValidateRules checks a rule set; queueExists tells whether a queue id
// names a live queue. The error is a *RuleError (for more than MaxRules
// rules, Index is MaxRules and Field is empty).
func ValidateRules(rules []Rule, queueExists func(id string) bool) error {
	return validateRules(rules, queueExists)
}

// Candidates returns, in rule order, the queue of every rule that matches
// c (a queue may appear once). The caller takes the first that is not
// overflowing, else the fallback queue.
func Candidates(rules []Rule, c Context) []string {
	return candidates(rules, c)
}

// Validate checks a queue's operating hours. The error is a *FieldError
// whose Field starts with "operating_hours.".
func (h OperatingHours) Validate() error { return h.validate() }

// OpenAt tells whether the queue is open at t (always, without periods,
// unless t falls on a holiday).
func (h OperatingHours) OpenAt(t time.Time) bool { return h.openAt(t) }

// Validate checks a queue's overflow rules; queueExists as for rules. The
// error is a *FieldError whose Field starts with "overflow.".
func (o Overflow) Validate(queueExists func(id string) bool) error { return o.validate(queueExists) }

// Overflow triggers.
const (
	TriggerOutOfHours    = "out_of_hours"
	TriggerMaxWaiting    = "max_waiting"
	TriggerEstimatedWait = "max_estimated_wait"
)

// BeforeQueueing applies the before-queueing rules in order: out of hours,
// more than N waiting, estimated wait over T. It returns the first that
// fires and its action; ok is false when none fires.
func (o Overflow) BeforeQueueing(open bool, waiting int, estimated time.Duration) (trigger string, action OverflowAction, ok bool) {
	return o.beforeQueueing(open, waiting, estimated)
}

// Overflowing tells whether a routing rule should skip the queue: more
// than N waiting, or the estimated wait over T (out of hours is not
// overflowing: the queue's out-of-hours rule applies once chosen). A rule
// whose action is to queue anyway does not make the queue overflow.
func (o Overflow) Overflowing(waiting int, estimated time.Duration) bool {
	return o.overflowing(waiting, estimated)
}

// Validate checks a workstream's distribution, defaults applied
// (WithDefaults); queueExists as for rules. The error is a *FieldError
// whose Field is relative to the distribution ("offer_timeout",
// "routing_rules[2].conditions[0].operator"); for a rule, its Err is the
// *RuleError.
func (d Distribution) Validate(queueExists func(id string) bool) error {
	return d.validate(queueExists)
}

// WithDefaults fills what an admin left out: capacity 1, allowed presences
// available and busy, offer time-out 120 s, wrap-up blocking always.
func (d Distribution) WithDefaults() Distribution { return d.withDefaults() }
