package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"parley/messenger"
	"parley/store"
)

// Activity names of what happens outside an open conversation.
const (
	UnrecordedEventsName          = "UnrecordedEvents"
	RecordOutsideConversationName = "RecordOutsideConversation"
)

// UnrecordedInput asks which of a customer's events are not recorded yet.
type UnrecordedInput struct {
	FacebookPageID string   `json:"facebook_page_id"`
	PSID           string   `json:"psid"`
	DedupeKeys     []string `json:"dedupe_keys"`
}

// UnrecordedEvents returns the dedupe keys the store has not recorded for
// the customer: Meta's retries of recorded messages open nothing.
func (a *Conversations) UnrecordedEvents(ctx context.Context, in UnrecordedInput) ([]string, error) {
	return a.Store.UnrecordedDedupeKeys(ctx, in.FacebookPageID, in.PSID, in.DedupeKeys)
}

// OutsideInput is a customer's events that open no conversation.
type OutsideInput struct {
	PageRef        string            `json:"page_ref"`
	AccountID      string            `json:"account_id"`
	FacebookPageID string            `json:"facebook_page_id"`
	PSID           string            `json:"psid"`
	WorkflowID     string            `json:"workflow_id"`
	Events         []messenger.Event `json:"events"`
}

// RecordOutsideConversation stores events that open no conversation in the
// customer's transcript, as the gateway does when no conversation runs.
func (a *Conversations) RecordOutsideConversation(ctx context.Context, in OutsideInput) error {
	return RecordOutside(ctx, a.Store, a.log(), in)
}

// ClosedWithoutCustomer is the reason of a conversation created only to
// hold what the page wrote from outside Parley.
const ClosedWithoutCustomer = "the page wrote to the customer from outside Parley (Meta's Page Inbox or another app); no customer message came, so no agent had work"

// RecordOutside stores events that arrive when no conversation runs for
// the customer (and receipts, which never go to one), without creating work
// for agents: receipts update the statuses of the messages they concern; echoes of Parley's messages
// confirm them; the rest (Page Inbox messages, reactions, edits...) is
// appended to the customer's latest conversation. A Page Inbox message for
// a customer with no conversation at all gets a closed conversation that
// holds it; other events with nothing to attach to are logged and dropped.
func RecordOutside(ctx context.Context, st *store.Store, log *slog.Logger, in OutsideInput) error {
	var rows []store.Message
	pageWrote := false
	for _, e := range in.Events {
		switch e.Kind {
		case messenger.KindDelivery, messenger.KindRead:
			kind := store.ReceiptDelivery
			if e.Kind == messenger.KindRead {
				kind = store.ReceiptRead
			}
			if _, err := st.ApplyReceipt(ctx, in.FacebookPageID, in.PSID, kind, watermarkTime(e.Watermark), e.MIDs); err != nil {
				return fmt.Errorf("apply %s receipt: %w", e.Kind, err)
			}
			continue
		case messenger.KindEcho:
			if id, ok := MessageIDFromMetadata(e.Metadata); ok {
				if err := confirmEcho(ctx, st, log, id, e); err != nil {
					return err
				}
				continue
			}
			pageWrote = true
		}
		m, err := outsideRow(in, e)
		if err != nil {
			return err
		}
		rows = append(rows, m)
	}
	if len(rows) == 0 {
		return nil
	}
	latest, err := st.LatestConversation(ctx, in.FacebookPageID, in.PSID)
	switch {
	case errors.Is(err, store.ErrNotFound) && pageWrote:
		latest, err = closedHolder(ctx, st, in)
		if err != nil {
			return err
		}
	case errors.Is(err, store.ErrNotFound):
		log.WarnContext(ctx, "events for a customer with no conversation dropped", "facebook_page_id", in.FacebookPageID, "psid", in.PSID, "events", len(rows))
		return nil
	case err != nil:
		return fmt.Errorf("latest conversation of %s/%s: %w", in.FacebookPageID, in.PSID, err)
	}
	if _, err := st.AppendMessages(ctx, latest.ID, rows); err != nil {
		return fmt.Errorf("record %d events outside a conversation: %w", len(rows), err)
	}
	return nil
}

// watermarkTime is Meta's watermark (ms); zero stays zero (mids only).
func watermarkTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func confirmEcho(ctx context.Context, st *store.Store, log *slog.Logger, id string, e messenger.Event) error {
	err := st.ConfirmEcho(ctx, id, e.MID, time.UnixMilli(e.Timestamp).UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		log.WarnContext(ctx, "echo of an unknown Parley message", "message", id, "mid", e.MID)
		return nil
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInvalid):
		log.WarnContext(ctx, "echo cannot confirm the message", "message", id, "mid", e.MID, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("confirm message %s from its echo: %w", id, err)
	}
	return nil
}

// closedHolder creates the closed conversation that holds a Page Inbox
// message for a customer who never wrote.
func closedHolder(ctx context.Context, st *store.Store, in OutsideInput) (store.Conversation, error) {
	now := time.Now().UTC()
	c := store.Conversation{
		ID:      uuid.NewSHA1(messageNamespace, []byte("outside/"+in.FacebookPageID+"/"+in.PSID)).String(),
		PageRef: in.PageRef, AccountID: in.AccountID, FacebookPageID: in.FacebookPageID, PSID: in.PSID,
		WorkflowID: in.WorkflowID, State: "closed", StartedAt: now, UpdatedAt: now, ClosedAt: &now,
		ClosedReason: ClosedWithoutCustomer,
	}
	if err := st.UpsertConversation(ctx, c); err != nil {
		return c, fmt.Errorf("conversation holding the page's message: %w", err)
	}
	return c, nil
}

// outsideRow is the transcript row of an event, as the workflow writes it.
func outsideRow(in OutsideInput, e messenger.Event) (store.Message, error) {
	t := TranscriptEntry{
		Kind: string(e.Kind), MID: e.MID, DedupeKey: e.DedupeKey(), Text: e.Text, Event: e,
		At: time.UnixMilli(e.Timestamp).UTC(), Direction: "in", Sender: "customer",
	}
	switch e.Kind {
	case messenger.KindEcho:
		t.Kind, t.Direction, t.Sender = string(messenger.KindMessage), "out", "page"
	case messenger.KindPostback:
		if t.Text == "" {
			t.Text = e.PostbackTitle
		}
	}
	rin := RecordTranscriptInput{FacebookPageID: in.FacebookPageID, PSID: in.PSID}
	return messageRow(rin, t)
}
