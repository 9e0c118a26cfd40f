package store

import (
	"context"
	"fmt"
	"time"
)

// The health states a check may record on a page (see Page.Provisioning).
var healthStates = map[string]bool{"": true, ProvisioningUnsubscribed: true, ProvisioningExpiring: true, ProvisioningSilent: true}

// Bounds of a page's own silence threshold.
const (
	MinSilenceAfter = 10 * time.Minute
	MaxSilenceAfter = 30 * 24 * time.Hour
)

// RecordPageHealth records what the periodic health check found: state ""
// (nothing), expiring, unsubscribed or silent, with the reason.
func (s *Store) RecordPageHealth(ctx context.Context, id, state, reason string, at time.Time) (_ Page, err error) {
	defer wrap(&err, "store.RecordPageHealth(%s)", id)
	if !healthStates[state] {
		return Page{}, invalidf("unknown page health state %q", state)
	}
	if state == "" {
		reason = ""
	}
	if err := execOne(ctx, s.db, `UPDATE pages SET health_state = ?, health_reason = ?, health_checked_at = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`, state, reason, s.timestamp(at), s.timestamp(s.clock()), id); err != nil {
		return Page{}, err
	}
	return s.GetPage(ctx, id)
}

// MarkPageAlerted records the provisioning state last alerted, so that an
// alert goes once per change.
func (s *Store) MarkPageAlerted(ctx context.Context, id, state string) (err error) {
	defer wrap(&err, "store.MarkPageAlerted(%s)", id)
	return execOne(ctx, s.db, `UPDATE pages SET alerted_state = ? WHERE id = ? AND deleted_at IS NULL`, state, id)
}

// SetPageSilenceAfter sets the page's silence threshold; 0 restores the
// default. It returns a *FieldError (ErrInvalid) out of bounds.
func (s *Store) SetPageSilenceAfter(ctx context.Context, id string, d time.Duration) (_ Page, err error) {
	defer wrap(&err, "store.SetPageSilenceAfter(%s)", id)
	if d != 0 && (d < MinSilenceAfter || d > MaxSilenceAfter) {
		return Page{}, fieldErrorf("silence_threshold", "the silence threshold must be 0 (the default) or between %s and %s", MinSilenceAfter, MaxSilenceAfter)
	}
	if err := execOne(ctx, s.db, `UPDATE pages SET silence_after_seconds = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`,
		int64(d/time.Second), s.timestamp(s.clock()), id); err != nil {
		return Page{}, err
	}
	return s.GetPage(ctx, id)
}

// ConversationsStarted counts the page's conversations started in
// [from, to): how busy the page was.
func (s *Store) ConversationsStarted(ctx context.Context, pageRef string, from, to time.Time) (_ int, err error) {
	defer wrap(&err, "store.ConversationsStarted(%s)", pageRef)
	var n int
	if err := get(ctx, s.db, &n, `SELECT COUNT(*) FROM conversations WHERE page_ref = ? AND started_at >= ? AND started_at < ?`,
		pageRef, s.timestamp(from), s.timestamp(to)); err != nil {
		return 0, fmt.Errorf("count conversations: %w", err)
	}
	return n, nil
}
