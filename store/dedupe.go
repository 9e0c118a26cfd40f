package store

import (
	"context"
)

// RecordedDedupeKeys returns which of keys are already recorded in the
// customer's transcript (Meta's retries of recorded events).
func (s *Store) RecordedDedupeKeys(ctx context.Context, fbPageID, psid string, keys []string) (_ []string, err error) {
	defer wrap(&err, "store.RecordedDedupeKeys(%q, %q)", fbPageID, psid)
	if len(keys) == 0 {
		return nil, nil
	}
	args := []any{fbPageID, psid}
	for _, k := range keys {
		args = append(args, k)
	}
	var out []string
	err = list(ctx, s.db, &out, `
		SELECT dedupe_key FROM messages
		WHERE facebook_page_id = ? AND psid = ? AND dedupe_key IN (`+placeholders(len(keys))+`)`, args...)
	return out, err
}

// MIDsRecorded returns which of Meta's message ids are already held by a
// message of the customer's transcript: a lookup on Meta's side must not
// take another message's mid for the one it looks for.
func (s *Store) MIDsRecorded(ctx context.Context, fbPageID, psid string, mids []string) (_ []string, err error) {
	defer wrap(&err, "store.MIDsRecorded(%q, %q)", fbPageID, psid)
	if len(mids) == 0 {
		return nil, nil
	}
	args := []any{fbPageID, psid}
	for _, m := range mids {
		args = append(args, m)
	}
	var out []string
	err = list(ctx, s.db, &out, `
		SELECT mid FROM messages
		WHERE facebook_page_id = ? AND psid = ? AND mid IN (`+placeholders(len(mids))+`)`, args...)
	return out, err
}
