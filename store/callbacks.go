package store

import "context"

// CallbackPage resolves a webhook URL key to its page, even a deleted one,
// as long as its account is live: Meta has one callback URL per app, and
// the URL an admin pasted (one page's) carries every page of the account.
// A deleted account's callback is ErrNotFound.
func (s *Store) CallbackPage(ctx context.Context, key string) (_ Page, err error) {
	// The key is a credential: keep it out of error messages.
	defer wrap(&err, "store.CallbackPage")
	if key == "" {
		return Page{}, ErrNotFound
	}
	var r pageRow
	if err := get(ctx, s.db, &r, `SELECT `+pageColumns+` FROM pages
		WHERE callback_key = ? AND account_id IN (SELECT id FROM accounts WHERE deleted_at IS NULL)`, key); err != nil {
		return Page{}, err
	}
	return r.page(), nil
}
