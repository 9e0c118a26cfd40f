package store

import (
	"fmt"
	"time"

	"parley/routing"
)

// The routing ledger: queued conversations (queue_items), what each
// conversation holds of an agent's capacity (capacity_holds) and the
// assignments made. Every change is one transaction that also appends its
// live events, so the invariants hold whatever the callers race:
//   - capacity_holds' primary key: a conversation holds at most one agent
//     (an offer or an assignment), never two;
//   - a hold is inserted only when the agent's held units plus its own fit
//     its capacity (unless a supervisor forces it);
//   - queue_items' primary key: a conversation waits in one queue at most;
//   - a conversation is queued (a queue item, with at most an offer hold
//     whose offer_id the item names) or held (an active or wrap-up hold, no
//     queue item), never both: every function that moves it keeps it so;
//   - ledger transactions are serialized (ledgerTx, store/ledger_tx.go: an
//     advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so that no two
//     of them, in any processes, both read an agent's free capacity and take it.
//
// Each change also records its conversation events (queued, transfer,
// offered, accepted, assigned: conversation_events.go) in its transaction,
// for supervisors' metrics (queue_metrics.go).
//
// Functions: RouteAndEnqueue (ledger_route.go); DistributeRound,
// AcceptOffer, DeclineOffer (ledger_offers.go); ClaimConversation,
// ReleaseConversation, HoldForWrapUp (ledger_claims.go);
// QueuedConversations, AgentLoads (ledger_read.go).

// Route asks for a conversation to be routed and queued.
type Route struct {
	ConversationID string
	WorkflowID     string
	PageRef        string
	// RouteID identifies the workflow's routing attempt: a retried call
	// with the same id returns what the first one did.
	RouteID      string
	Context      routing.Context
	Distribution routing.Distribution // the workstream's, with its rules
	// QueueID, when set, skips the rules (a transfer to a queue); its
	// before-queueing overflow still applies.
	QueueID string
	// PreferredAgentID, until PreferredUntil: keep the same agent.
	PreferredAgentID string
	PreferredUntil   time.Time
	// WaitingSince orders the queue (FIFO): when the customer started to wait.
	WaitingSince time.Time
	Priority     int
	Note         string
	Now          time.Time
}

// Route outcomes.
const (
	RouteQueued = "queued"
	RouteEnded  = "ended" // an overflow rule ended the conversation
)

// RouteResult is where a conversation went, and why.
type RouteResult struct {
	Outcome       string
	QueueID       string
	QueueName     string
	Position      int // 1-based, among the queue's waiting conversations
	Waiting       int // waiting in the queue, this one included
	EstimatedWait time.Duration
	// Trigger is the overflow rule that applied (routing.Trigger*), if any.
	Trigger string
	// OutOfHours: the chosen queue was closed (its rule may still queue it).
	OutOfHours bool
	// Reason says in plain words what happened ("no rule matched: fallback
	// queue Billing", "Sales is out of hours: transferred to Night").
	Reason string
	// WhileQueued is the chosen queue's while-queued overflow, if any.
	WhileQueued *routing.MaxWait
}

// OfferMade is an offer a distribution round made.
type OfferMade struct {
	OfferID        string
	ConversationID string
	WorkflowID     string
	AgentID        string
	AgentName      string
	QueueID        string
	QueueName      string
	ExpiresAt      time.Time
	// MadeAfterEvent is the last event id when the round committed: the
	// offer is announced later (AnnounceOffers), and this places it among
	// the ledger's events. 0 when unknown (a retried round).
	MadeAfterEvent int64
}

// Assignment is a conversation given to an agent.
type Assignment struct {
	ConversationID string
	AgentID        string
	AgentName      string
	QueueID        string
	QueueName      string
	How            string // accept | pick | assign | transfer
	Waited         time.Duration
	Note           string // a transfer's note
	Forced         bool
	// WithdrawnOfferID is the open offer (to any agent) this claim withdrew.
	WithdrawnOfferID string
}

// CapacityError says why an agent cannot take a conversation.
type CapacityError struct {
	AgentID  string
	Presence string // effective
	Used     int
	Capacity int
	Units    int
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("agent %s has %d of %d capacity units in use (presence %s): %d more do not fit", e.AgentID, e.Used, e.Capacity, e.Presence, e.Units)
}

// ErrOfferGone: the offer was accepted, declined, withdrawn or timed out.
var ErrOfferGone = fmt.Errorf("%w: the offer is no longer open", ErrConflict)

// Why an offer ends without being accepted.
const (
	DeclineRejected  = "rejected"
	DeclineTimedOut  = "timed_out"
	DeclineWithdrawn = "withdrawn" // the conversation moved on
)

// Decline ends an offer without assignment.
type Decline struct {
	ConversationID string
	OfferID        string
	AgentID        string
	Why            string
	// SetInactive: a missed offer sets the agent's presence to inactive.
	SetInactive bool
	Now         time.Time
}

// Claim gives a conversation to an agent directly.
type Claim struct {
	ConversationID string
	WorkflowID     string
	AgentID        string
	How            string // pick (must be queued) | assign | transfer
	Units          int
	// Force lets a supervisor exceed the agent's capacity.
	Force bool
	Note  string
	Now   time.Time
}

// Released is what a release gave back.
type Released struct {
	AgentID string // whose capacity was freed ('' none)
	Units   int
	// OfferID is an offer withdrawn by the release, if any.
	OfferID string
	// QueueID is the queue the conversation left, if any.
	QueueID string
}

// QueuedConversation is a conversation waiting in a queue.
type QueuedConversation struct {
	ConversationID string
	QueueID        string
	QueueName      string // "" once the queue is deleted
	Position       int
	Priority       int
	WaitingSince   time.Time
	EnqueuedAt     time.Time
	Mode           string
	OfferedTo      string // agent id while offered
	OfferExpiresAt time.Time
	Note           string
}

// AgentLoad is an agent's capacity and what it holds.
type AgentLoad struct {
	AgentID   string
	Capacity  int
	Used      int
	Presence  string // effective
	Holds     int
	Forced    bool // a forced hold puts it over capacity
	QueueIDs  []string
	AgentName string
}
