package store

import (
	"context"
	"slices"
)

// UnrecordedDedupeKeys returns, in their order, the keys that no message of
// the customer's transcript holds: Meta's retries of recorded events are
// not news.
func (s *Store) UnrecordedDedupeKeys(ctx context.Context, fbPageID, psid string, keys []string) (_ []string, err error) {
	defer wrap(&err, "store.UnrecordedDedupeKeys(%q, %q)", fbPageID, psid)
	return s.unheld(ctx, "dedupe_key", fbPageID, psid, keys)
}

// UnheldMIDs returns, in their order, the Meta message ids that no message
// of the customer's transcript holds: a lookup on Meta's side must not take
// another message's mid for the one it looks for.
func (s *Store) UnheldMIDs(ctx context.Context, fbPageID, psid string, mids []string) (_ []string, err error) {
	defer wrap(&err, "store.UnheldMIDs(%q, %q)", fbPageID, psid)
	return s.unheld(ctx, "mid", fbPageID, psid, mids)
}

// unheld filters values by column, one of the constants above.
func (s *Store) unheld(ctx context.Context, column, fbPageID, psid string, values []string) ([]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	args := []any{fbPageID, psid}
	for _, v := range values {
		args = append(args, v)
	}
	var held []string
	if err := list(ctx, s.rdb, &held, `
		SELECT `+column+` FROM messages
		WHERE facebook_page_id = ? AND psid = ? AND `+column+` IN (`+placeholders(len(values))+`)`, args...); err != nil {
		return nil, err
	}
	var out []string
	for _, v := range values {
		if !slices.Contains(held, v) {
			out = append(out, v)
		}
	}
	return out, nil
}
