// Package routing holds Parley's routing and distribution rules as pure
// functions over data: which queue a conversation goes to (routing rules,
// operating hours, overflow), which agent gets it (Match), and what an
// agent's presence is. Nothing here does I/O or reads the clock: the store
// calls it inside its transactions, the workflows with their own time.
package routing

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Agent presences. An agent (or an admin) chooses one of the first five;
// the system sets Inactive after a missed offer, when the workstream says so.
const (
	PresenceAvailable    = "available"
	PresenceBusy         = "busy"
	PresenceDoNotDisturb = "do_not_disturb"
	PresenceAway         = "away"
	PresenceOffline      = "offline"
	PresenceInactive     = "inactive"
)

// Distribution modes of a workstream (fixed once set).
const (
	ModePush = "push" // Parley offers each conversation to one agent at a time
	ModePick = "pick" // agents list their queues and pick
)

// Assignment methods of a queue.
const (
	// MethodHighestCapacity: the agent with the most free units; ties by
	// round robin (earliest last offer).
	MethodHighestCapacity = "highest_capacity"
	// MethodRoundRobin: the agent offered work least recently; ties by
	// earliest last assignment.
	MethodRoundRobin = "round_robin"
)

// Overflow actions.
const (
	ActionQueue    = "queue"    // queue anyway
	ActionEnd      = "end"      // end the conversation, with a message
	ActionTransfer = "transfer" // go to another queue
)

// Wrap-up capacity blocking.
const (
	WrapUpAlways   = "always"   // until the conversation closes
	WrapUpNever    = "never"    // released when the agent ends it
	WrapUpDuration = "duration" // for Duration, then released
)

// Duration is a time.Duration written as Go writes it ("2m0s"); JSON
// accepts "90s", "2m" and so on.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90s\" or \"2m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"90s\" or \"2m\"", s)
	}
	*d = Duration(v)
	return nil
}

// D is the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Distribution is how a workstream's conversations reach agents. A
// workstream without one has routing off: admins assign by hand.
type Distribution struct {
	Mode             string   `json:"mode"`
	CapacityUnits    int      `json:"capacity_units"`
	AllowedPresences []string `json:"allowed_presences"`
	KeepSameAgent    KeepSame `json:"keep_same_agent"`
	// BlockCapacityDuringWrapUp: WrapUpAlways, WrapUpNever or WrapUpDuration.
	BlockCapacityDuringWrapUp WrapUpBlock `json:"block_capacity_during_wrap_up"`
	OfferTimeout              Duration    `json:"offer_timeout"`
	// MissedOfferPresence, when set (PresenceInactive), is the presence an
	// agent gets when an offer to it times out.
	MissedOfferPresence string `json:"missed_offer_presence,omitempty"`
	FallbackQueueID     string `json:"fallback_queue"`
	Rules               []Rule `json:"routing_rules"`
}

// KeepSame sends a returning customer to its last agent first, waiting at
// most Wait for that agent to be available with capacity.
type KeepSame struct {
	Enabled bool     `json:"enabled"`
	Wait    Duration `json:"wait"`
}

// WrapUpBlock says how long a conversation in wrap-up holds capacity.
type WrapUpBlock struct {
	Mode     string   `json:"mode"`               // WrapUpAlways | WrapUpNever | WrapUpDuration
	Duration Duration `json:"duration,omitempty"` // WrapUpDuration: 30s to 60m
}

// DefaultOfferTimeout is Dynamics' default countdown.
const DefaultOfferTimeout = 120 * time.Second

// Rule routes the conversations whose context matches every condition to
// QueueID. Rules are tried in order; the first whose queue is not
// overflowing wins.
type Rule struct {
	Name       string      `json:"name"`
	Conditions []Condition `json:"conditions"`
	QueueID    string      `json:"queue"`
}

// Condition operators.
const (
	OpEquals   = "equals"   // case-insensitive equality
	OpContains = "contains" // case-insensitive substring
	OpMatches  = "matches"  // RE2 regular expression (never code)
	OpIn       = "in"       // case-insensitive equality with one of Values
	OpExists   = "exists"   // the field is known and not empty
)

// Condition fields over a conversation's context.
const (
	FieldPage         = "page"          // Parley's page id
	FieldLocale       = "locale"        // the customer's locale, once known
	FieldCustomerName = "customer_name" // once known
	FieldPSID         = "psid"
	FieldFirstMessage = "first_message" // the text of the conversation's first message
	FieldReferralRef  = "referral.ref"
	FieldReferralSrc  = "referral.source"
	// FieldSurveyTimedOut is "true" when the pre-conversation survey timed out.
	FieldSurveyTimedOut = "survey_timed_out"
	// FieldSurveyPrefix + question id: a pre-conversation survey answer.
	FieldSurveyPrefix = "survey."
)

// QuestionIDRule says what a pre-survey question id may be: the same rule
// for the survey's settings and for rules' fields, so a rule can name any
// question.
const QuestionIDRule = "1 to 40 lowercase letters, digits, _ or -"

var questionID = regexp.MustCompile(`^[a-z0-9_-]{1,40}$`)

// ValidQuestionID says whether id follows QuestionIDRule.
func ValidQuestionID(id string) bool { return questionID.MatchString(id) }

// Condition is one test over one field of the context.
type Condition struct {
	Field    string   `json:"field"`
	Operator string   `json:"operator"`
	Value    string   `json:"value,omitempty"`  // equals, contains, matches
	Values   []string `json:"values,omitempty"` // in
}

// Context is what routing rules see of a conversation. Unknown fields are "".
type Context struct {
	PageRef        string            `json:"page"`
	Locale         string            `json:"locale,omitempty"`
	CustomerName   string            `json:"customer_name,omitempty"`
	PSID           string            `json:"psid"`
	FirstMessage   string            `json:"first_message,omitempty"`
	ReferralRef    string            `json:"referral_ref,omitempty"`
	ReferralSource string            `json:"referral_source,omitempty"`
	Survey         map[string]string `json:"survey,omitempty"`
	SurveyTimedOut bool              `json:"survey_timed_out,omitempty"`
}

// OperatingHours are a queue's opening hours in its time zone. No periods
// means open around the clock (holidays still apply).
type OperatingHours struct {
	TimeZone string   `json:"time_zone"` // IANA, e.g. "Europe/Paris"
	Periods  []Period `json:"periods"`
	Holidays []string `json:"holidays"` // dates "2026-12-25", closed all day
}

// Period is one opening span on a weekday, local time "09:00" to "17:30".
// An end before its start runs past midnight.
type Period struct {
	Day   string `json:"day"` // monday .. sunday
	Start string `json:"start"`
	End   string `json:"end"`
}

// Overflow is a queue's overflow handling.
type Overflow struct {
	// Before queueing, checked in this order.
	OutOfHours       *OverflowAction `json:"out_of_hours,omitempty"`
	MaxWaiting       *MaxWaiting     `json:"max_waiting,omitempty"`
	MaxEstimatedWait *MaxWait        `json:"max_estimated_wait,omitempty"`
	// While queued: waited more than After.
	WhileQueued *MaxWait `json:"while_queued,omitempty"`
}

// OverflowAction is what to do: ActionEnd, ActionTransfer (to QueueID) or
// ActionQueue.
type OverflowAction struct {
	Action  string `json:"action"`
	QueueID string `json:"queue,omitempty"`
}

// MaxWaiting: more than Count conversations waiting.
type MaxWaiting struct {
	Count int `json:"count"`
	OverflowAction
}

// MaxWait: a wait (estimated, or waited) over After. While queued, the
// action is ActionEnd or ActionTransfer.
type MaxWait struct {
	After Duration `json:"after"`
	OverflowAction
}
