package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	recorded, err := a.Store.RecordedDedupeKeys(ctx, in.FacebookPageID, in.PSID, in.DedupeKeys)
	if err != nil {
		return nil, fmt.Errorf("recorded events of %s/%s: %w", in.FacebookPageID, in.PSID, err)
	}
	seen := make(map[string]bool, len(recorded))
	for _, k := range recorded {
		seen[k] = true
	}
	var out []string
	for _, k := range in.DedupeKeys {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out, nil
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
	for _, e := range in.Events {
		switch e.Kind {
		case messenger.KindDelivery, messenger.KindRead:
			status := "delivered"
			if e.Kind == messenger.KindRead {
				status = "read"
			}
			if _, err := a.Store.ApplyWatermark(ctx, in.FacebookPageID, in.PSID, status, time.UnixMilli(e.Watermark).UTC()); err != nil {
				return fmt.Errorf("apply %s watermark: %w", e.Kind, err)
			}
		case messenger.KindEcho:
			if id, ok := MessageIDFromMetadata(e.Metadata); ok {
				err := a.Store.MarkMessageSent(ctx, id, e.MID, time.UnixMilli(e.Timestamp).UTC())
				if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("confirm message %s: %w", id, err)
				}
			}
		}
	}
	return nil
}
