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
