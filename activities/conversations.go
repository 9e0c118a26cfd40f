// Package activities holds the side of Parley's workflows that touches the
// world: the database and Meta's Graph API. Activities are idempotent because
// Temporal retries them.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"parley/blobs"
	"parley/messenger"
	"parley/store"
)

// Activity names: part of recorded histories, never rename them.
const (
	OpenConversationName = "OpenConversation"
	RecordTranscriptName = "RecordTranscript"
	SaveConversationName = "SaveConversation"
)

// RecordTranscriptInput is the conversation as the workflow knows it, plus the
// new transcript entries and watermarks to persist.
type RecordTranscriptInput struct {
	ConversationID         string     `json:"conversation_id"`
	PageRef                string     `json:"page_ref"`
	AccountID              string     `json:"account_id"`
	FacebookPageID         string     `json:"facebook_page_id"`
	PSID                   string     `json:"psid"`
	WorkflowID             string     `json:"workflow_id"`
	State                  string     `json:"state"`
	StartedAt              time.Time  `json:"started_at"`
	MessageCount           int        `json:"message_count"`
	LastCustomerMessageAt  *time.Time `json:"last_customer_message_at,omitempty"`
	PreviousConversationID string     `json:"previous_conversation_id,omitempty"`
	AgentID                string     `json:"agent_id,omitempty"`
	ClosedAt               *time.Time `json:"closed_at,omitempty"`
	ClosedReason           string     `json:"closed_reason,omitempty"`
	// Revision orders saves of the conversation: the highest wins.
	Revision int64 `json:"revision,omitempty"`
	// ThreadOwner is the app controlling the Messenger thread when it is
	// not Parley, since ThreadOwnerSince (handover protocol).
	ThreadOwner      string     `json:"thread_owner,omitempty"`
	ThreadOwnerSince *time.Time `json:"thread_owner_since,omitempty"`
	// ThreadChanged: the owner changed since the last save; the agent and
	// the queue's supervisors are told (conversation.thread).
	ThreadChanged bool `json:"thread_changed,omitempty"`
	// ThreadRequestedBy is the app that asked Parley for the thread
	// (request_thread_control), while Parley still has it.
	ThreadRequestedBy string `json:"thread_requested_by,omitempty"`
	// QueueID is the queue an open conversation waits in (live events).
	QueueID    string            `json:"queue_id,omitempty"`
	Entries    []TranscriptEntry `json:"entries,omitempty"`
	Watermarks []Watermark       `json:"watermarks,omitempty"`
	// Echoes are Meta's echoes of Parley's own messages: they confirm them
	// with Meta's id and time.
	Echoes []Echo `json:"echoes,omitempty"`
}

// Echo is Meta's echo of a message Parley sent.
type Echo struct {
	MessageID string    `json:"message_id"`
	MID       string    `json:"mid"`
	At        time.Time `json:"at"` // Meta's timestamp
}

// TranscriptEntry is one line of the transcript, in the workflow's order.
type TranscriptEntry struct {
	Seq       int64           `json:"seq"`
	Kind      string          `json:"kind"`
	Direction string          `json:"direction"` // in | out
	Sender    string          `json:"sender"`    // customer | page | agent | system
	MID       string          `json:"mid,omitempty"`
	DedupeKey string          `json:"dedupe_key"`
	Text      string          `json:"text,omitempty"`
	At        time.Time       `json:"at"`
	Event     messenger.Event `json:"event"`
	// Outbound messages Parley sends.
	Status         string `json:"status,omitempty"` // empty: received (in) or sent (echo)
	MessagingType  string `json:"messaging_type,omitempty"`
	Tag            string `json:"tag,omitempty"`
	AgentID        string `json:"agent_id,omitempty"`
	AttachmentType string `json:"attachment_type,omitempty"`
	AttachmentURL  string `json:"attachment_url,omitempty"`
	ErrorReason    string `json:"error_reason,omitempty"`
	// File is a file an agent sends, already in the blob store.
	File *OutFile `json:"file,omitempty"`
}

// OutFile is a file an agent sends: kept in the blob store, sent to Meta
// by attachment_id.
type OutFile struct {
	Type        string `json:"type"` // image | audio | video | file
	BlobKey     string `json:"blob_key"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type"`
	Filename    string `json:"filename,omitempty"`
	Size        int64  `json:"size"`
}

// Watermark is a delivery or read watermark from Meta.
type Watermark struct {
	Kind string    `json:"kind"` // delivery | read
	At   time.Time `json:"at"`
}

// OpenConversationResult links a new conversation to the customer's previous one.
type OpenConversationResult struct {
	PreviousConversationID string `json:"previous_conversation_id,omitempty"`
	// PreviousAgentID is the agent of the previous conversation (keep same agent).
	PreviousAgentID string `json:"previous_agent_id,omitempty"`
}

// Conversations persists conversations and their transcripts.
type Conversations struct {
	Store *store.Store
	Blobs *blobs.Store
	Log   *slog.Logger
}

func (a *Conversations) log() *slog.Logger { return orDefault(a.Log) }

// OpenConversation creates the conversation's row (idempotently) and finds
// the customer's previous conversation, if any.
func (a *Conversations) OpenConversation(ctx context.Context, in RecordTranscriptInput) (OpenConversationResult, error) {
	var res OpenConversationResult
	prev, err := a.Store.LatestConversation(ctx, in.FacebookPageID, in.PSID)
	switch {
	case err == nil && prev.ID != in.ConversationID:
		res.PreviousConversationID, res.PreviousAgentID = prev.ID, prev.AgentID
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return res, fmt.Errorf("previous conversation: %w", err)
	}
	in.PreviousConversationID = res.PreviousConversationID
	if err := a.Store.UpsertConversation(ctx, conversationRow(in)); err != nil {
		return res, fmt.Errorf("open conversation %s: %w", in.ConversationID, err)
	}
	return res, a.announceThread(ctx, in)
}

// RecordTranscript stores new transcript entries (Meta's retries are skipped
// by their dedupe key) and applies delivery and read watermarks. The
// workstream's customer-attachment setting applies here, when the message
// arrives: with it off the agent gets no file, but a note saying one came.
func (a *Conversations) RecordTranscript(ctx context.Context, in RecordTranscriptInput) error {
	if len(in.Entries) == 0 {
		if err := a.Store.UpsertConversation(ctx, conversationRow(in)); err != nil {
			return fmt.Errorf("update conversation %s: %w", in.ConversationID, err)
		}
		if err := a.announceThread(ctx, in); err != nil {
			return err
		}
	} else {
		customerFiles, err := a.customerAttachmentsAllowed(ctx, in.PageRef, in.Entries)
		if err != nil {
			return err
		}
		rows := make([]store.Message, 0, len(in.Entries))
		var files []store.Attachment
		for _, e := range in.Entries {
			if e.Direction == "in" && len(e.Event.Attachments) > 0 {
				// Meta's links are kept nowhere: the files, when the
				// workstream takes them, are downloaded into the blob store.
				id := MessageID(in.ConversationID, e.Seq)
				files = append(files, inboundRows(in, id, InboundAttachments(e.Event), customerFiles)...)
				if !customerFiles {
					e.ErrorReason = "the customer sent an attachment; attachments from customers are off for this workstream, so it was not kept"
				}
			}
			if f := e.File; f != nil {
				id := MessageID(in.ConversationID, e.Seq)
				files = append(files, store.Attachment{
					ID: AttachmentID(id, 0), MessageID: id, ConversationID: in.ConversationID,
					FacebookPageID: in.FacebookPageID, PSID: in.PSID, Direction: store.DirectionOut, Type: f.Type,
					Status: store.AttachmentKept, ContentType: f.ContentType, Size: f.Size, SHA256: f.SHA256,
					BlobKey: f.BlobKey, Filename: f.Filename,
				})
			}
			m, err := messageRow(in, e)
			if err != nil {
				return err
			}
			rows = append(rows, m)
		}
		// One transaction: the conversation, its messages, their files and
		// the live events, committed together.
		if _, err := a.Store.RecordMessages(ctx, conversationRow(in), rows, files, append(threadEvents(in), messageEvents(in, rows)...)); err != nil {
			return fmt.Errorf("record %d messages of conversation %s: %w", len(rows), in.ConversationID, err)
		}
	}
	for _, e := range in.Echoes {
		if err := confirmEcho(ctx, a.Store, a.log(), e.MessageID, messenger.Event{MID: e.MID, Timestamp: e.At.UnixMilli()}); err != nil {
			return err
		}
	}
	for _, w := range in.Watermarks {
		status := "delivered"
		if w.Kind == string(messenger.KindRead) {
			status = "read"
		}
		if _, err := a.Store.ApplyWatermark(ctx, in.FacebookPageID, in.PSID, status, w.At); err != nil {
			return fmt.Errorf("apply %s watermark: %w", w.Kind, err)
		}
	}
	return nil
}

// SaveConversation writes the conversation's state (transitions) with the
// conversation events of wrap-up (ended) and closed (and abandoned, when
// no agent took it from its last queue) for supervisors' metrics, and
// tells its agent and its queue's supervisors (live events).
func (a *Conversations) SaveConversation(ctx context.Context, in RecordTranscriptInput) error {
	if err := a.Store.SaveConversationState(ctx, conversationRow(in), time.Time{}); err != nil {
		return fmt.Errorf("save conversation %s: %w", in.ConversationID, err)
	}
	ev := store.NewEvent{
		Type: store.EventConversationState, AgentID: in.AgentID, QueueID: in.QueueID, ConversationID: in.ConversationID,
		Data: map[string]any{
			"conversation_id": in.ConversationID, "state": in.State, "agent_id": in.AgentID,
			"queue_id": in.QueueID, "closed_reason": in.ClosedReason,
		},
		DedupeKey: fmt.Sprintf("state/%s/%d", in.ConversationID, in.Revision),
	}
	if err := a.Store.AppendEvents(ctx, append(threadEvents(in), ev)...); err != nil {
		return fmt.Errorf("live event of conversation %s: %w", in.ConversationID, err)
	}
	return nil
}

// ThreadOwnerName names who controls a conversation's Messenger thread, as
// the REST API and live events show it: "parley", another app's id, or
// "another app" (Meta did not say which).
func ThreadOwnerName(owner string) string {
	if owner == "" {
		return "parley"
	}
	return owner
}

// threadEvents tell the conversation's agent and its queue's supervisors
// that the thread changed hands (while another app has it, their replies
// are refused), or that another app asks for it (requested_by).
func threadEvents(in RecordTranscriptInput) []store.NewEvent {
	if !in.ThreadChanged {
		return nil
	}
	data := map[string]any{"conversation_id": in.ConversationID, "thread_owner": ThreadOwnerName(in.ThreadOwner), "thread_owner_since": nil, "requested_by": nil}
	if in.ThreadOwnerSince != nil {
		data["thread_owner_since"] = in.ThreadOwnerSince.UTC()
	}
	if in.ThreadRequestedBy != "" {
		data["requested_by"] = in.ThreadRequestedBy
	}
	return []store.NewEvent{{
		Type: store.EventConversationThread, AgentID: in.AgentID, QueueID: in.QueueID, ConversationID: in.ConversationID,
		Data: data, DedupeKey: fmt.Sprintf("thread/%s/%d", in.ConversationID, in.Revision),
	}}
}

// announceThread appends the thread's live event, if the save announces a
// change, where no other write of the save carries it.
func (a *Conversations) announceThread(ctx context.Context, in RecordTranscriptInput) error {
	evs := threadEvents(in)
	if len(evs) == 0 {
		return nil
	}
	if err := a.Store.AppendEvents(ctx, evs...); err != nil {
		return fmt.Errorf("live event of conversation %s: %w", in.ConversationID, err)
	}
	return nil
}

// messageEvents tell an assigned agent of its customer's new messages.
func messageEvents(in RecordTranscriptInput, rows []store.Message) []store.NewEvent {
	if in.AgentID == "" {
		return nil
	}
	var evs []store.NewEvent
	for _, m := range rows {
		if m.Direction != "in" || m.Sender != "customer" {
			continue
		}
		evs = append(evs, store.NewEvent{
			Type: store.EventConversationMessage, AgentID: in.AgentID, ConversationID: in.ConversationID,
			Data: map[string]any{
				"conversation_id": in.ConversationID, "message_id": m.ID, "kind": m.Kind, "text": m.Text, "sent_at": m.SentAt,
			},
			DedupeKey: "msg/" + m.ID,
		})
	}
	return evs
}

func (a *Conversations) customerAttachmentsAllowed(ctx context.Context, pageRef string, entries []TranscriptEntry) (bool, error) {
	files := false
	for _, e := range entries {
		files = files || (e.Direction == "in" && len(e.Event.Attachments) > 0)
	}
	if !files {
		return true, nil
	}
	w, err := a.Store.EffectiveWorkstream(ctx, pageRef)
	if err != nil {
		return false, fmt.Errorf("workstream of page %s: %w", pageRef, err)
	}
	return w.CustomerAttachments, nil
}

func conversationRow(in RecordTranscriptInput) store.Conversation {
	return store.Conversation{
		ID:                     in.ConversationID,
		PageRef:                in.PageRef,
		AccountID:              in.AccountID,
		FacebookPageID:         in.FacebookPageID,
		PSID:                   in.PSID,
		WorkflowID:             in.WorkflowID,
		State:                  in.State,
		PreviousConversationID: in.PreviousConversationID,
		MessageCount:           in.MessageCount,
		LastCustomerMessageAt:  in.LastCustomerMessageAt,
		AgentID:                in.AgentID,
		ClosedAt:               in.ClosedAt,
		ClosedReason:           in.ClosedReason,
		StartedAt:              in.StartedAt,
		UpdatedAt:              time.Now().UTC(),
		Revision:               in.Revision,
		ThreadOwner:            in.ThreadOwner,
		ThreadOwnerSince:       in.ThreadOwnerSince,
		ThreadRequestedBy:      in.ThreadRequestedBy,
	}
}

// messageNamespace makes message IDs a pure function of (conversation, seq),
// so a retried activity writes the same rows.
var messageNamespace = uuid.MustParse("8f5a7d0e-3b1c-4c55-9a61-6f1d2b3c4d5e")

// MessageID is the id of the transcript entry seq of a conversation; the
// workflow knows it before the row exists (it goes to Meta in metadata).
func MessageID(conversationID string, seq int64) string {
	return uuid.NewSHA1(messageNamespace, fmt.Appendf(nil, "%s/%d", conversationID, seq)).String()
}

func messageRow(in RecordTranscriptInput, e TranscriptEntry) (store.Message, error) {
	m := store.Message{
		ID:             MessageID(in.ConversationID, e.Seq),
		ConversationID: in.ConversationID,
		Seq:            e.Seq,
		Direction:      e.Direction,
		Sender:         e.Sender,
		Kind:           e.Kind,
		MID:            e.MID,
		DedupeKey:      e.DedupeKey,
		FacebookPageID: in.FacebookPageID,
		PSID:           in.PSID,
		Text:           e.Text,
		Status:         "received",
		SentAt:         e.At,
		MessagingType:  e.MessagingType,
		Tag:            e.Tag,
		AgentID:        e.AgentID,
		ErrorReason:    e.ErrorReason,
	}
	if e.Direction == "out" {
		m.Status = "sent"
	}
	if e.Status != "" {
		m.Status = e.Status
	}
	if e.AttachmentURL != "" {
		b, err := json.Marshal([]messenger.Attachment{{Type: e.AttachmentType, URL: e.AttachmentURL}})
		if err != nil {
			return m, fmt.Errorf("encode attachment: %w", err)
		}
		m.Attachments = b
	}
	if len(e.Event.Raw) > 0 {
		m.Payload = e.Event.Raw
	}
	switch {
	case len(e.Event.Attachments) > 0 && e.Direction == "in":
		// A customer's files are rows of the attachments table; Meta's
		// links, which expire, are kept nowhere.
		raw, err := stripAttachmentURLs(m.Payload)
		if err != nil {
			return m, err
		}
		m.Payload = raw
	case len(e.Event.Attachments) > 0:
		b, err := json.Marshal(e.Event.Attachments)
		if err != nil {
			return m, fmt.Errorf("encode attachments: %w", err)
		}
		m.Attachments = b
	}
	return m, nil
}
