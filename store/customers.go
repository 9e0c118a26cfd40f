package store

import (
	"context"
	"database/sql"
	"time"
)

// Profile statuses: whether the customer's name is known.
const (
	// ProfileUnknown: never fetched yet.
	ProfileUnknown = "unknown"
	// ProfileKnown: Meta gave the name (it may be refreshed later).
	ProfileKnown = "known"
	// ProfileUnavailable: Meta refused or failed; the PSID is the identity
	// until a later attempt succeeds.
	ProfileUnavailable = "unavailable"
)

// Customer is a person writing to a page: a page and a PSID, with the
// profile Meta gave, if it did. Never a placeholder name: an unknown name
// is empty, with the status saying why.
type Customer struct {
	PageRef    string
	PSID       string
	FirstName  string
	LastName   string
	PictureURL string
	// ProfileStatus is ProfileUnknown, ProfileKnown or ProfileUnavailable.
	ProfileStatus string
	// ProfileError is why the last fetch failed ("" after a success).
	ProfileError    string
	ProfileAttempts int // failed attempts since the last success
	// ProfileFetchedAt is the last success (zero: never).
	ProfileFetchedAt time.Time
	// NextProfileAttemptAt is when a failed fetch may be tried again.
	NextProfileAttemptAt time.Time
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

type customerRow struct {
	PageRef              string       `db:"page_ref"`
	PSID                 string       `db:"psid"`
	FirstName            string       `db:"first_name"`
	LastName             string       `db:"last_name"`
	PictureURL           string       `db:"picture_url"`
	ProfileStatus        string       `db:"profile_status"`
	ProfileError         string       `db:"profile_error"`
	ProfileAttempts      int          `db:"profile_attempts"`
	ProfileFetchedAt     sql.NullTime `db:"profile_fetched_at"`
	NextProfileAttemptAt sql.NullTime `db:"next_profile_attempt_at"`
	CreatedAt            time.Time    `db:"created_at"`
	UpdatedAt            time.Time    `db:"updated_at"`
}

const customerColumns = `page_ref, psid, first_name, last_name, picture_url, profile_status, profile_error, profile_attempts,
	profile_fetched_at, next_profile_attempt_at, created_at, updated_at`

func (r customerRow) customer() Customer {
	c := Customer{PageRef: r.PageRef, PSID: r.PSID, FirstName: r.FirstName, LastName: r.LastName, PictureURL: r.PictureURL,
		ProfileStatus: r.ProfileStatus, ProfileError: r.ProfileError, ProfileAttempts: r.ProfileAttempts,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.ProfileFetchedAt.Valid {
		c.ProfileFetchedAt = r.ProfileFetchedAt.Time.UTC()
	}
	if r.NextProfileAttemptAt.Valid {
		c.NextProfileAttemptAt = r.NextProfileAttemptAt.Time.UTC()
	}
	return c
}

// GetCustomer returns the customer of a page and PSID; ErrNotFound if
// Parley never fetched (or tried to fetch) its profile.
func (s *Store) GetCustomer(ctx context.Context, pageRef, psid string) (_ Customer, err error) {
	defer wrap(&err, "store.GetCustomer(%s, %s)", pageRef, psid)
	var r customerRow
	if err := get(ctx, s.db, &r, `SELECT `+customerColumns+` FROM customers WHERE page_ref = ? AND psid = ?`, pageRef, psid); err != nil {
		return Customer{}, err
	}
	return r.customer(), nil
}

// ProfileFetched is what Meta's user profile API gave.
type ProfileFetched struct {
	FirstName, LastName, PictureURL string
	At                              time.Time
}

// SaveProfile records a successful fetch: the name is known.
func (s *Store) SaveProfile(ctx context.Context, pageRef, psid string, p ProfileFetched) (_ Customer, err error) {
	defer wrap(&err, "store.SaveProfile(%s, %s)", pageRef, psid)
	if pageRef == "" || psid == "" {
		return Customer{}, invalidf("a page and a PSID are required")
	}
	at := s.timestamp(p.At)
	if _, err := exec(ctx, s.db, `INSERT INTO customers (page_ref, psid, first_name, last_name, picture_url, profile_status,
			profile_error, profile_attempts, profile_fetched_at, next_profile_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'known', '', 0, ?, NULL, ?, ?)
		ON CONFLICT (page_ref, psid) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
			picture_url = excluded.picture_url, profile_status = 'known', profile_error = '', profile_attempts = 0,
			profile_fetched_at = excluded.profile_fetched_at, next_profile_attempt_at = NULL, updated_at = excluded.updated_at`,
		pageRef, psid, p.FirstName, p.LastName, p.PictureURL, at, at, at); err != nil {
		return Customer{}, err
	}
	return s.GetCustomer(ctx, pageRef, psid)
}

// SaveProfileFailure records a failed fetch and when to try again. A name
// known from an earlier fetch stays (a failed refresh forgets nothing).
func (s *Store) SaveProfileFailure(ctx context.Context, pageRef, psid, reason string, at, next time.Time) (_ Customer, err error) {
	defer wrap(&err, "store.SaveProfileFailure(%s, %s)", pageRef, psid)
	if pageRef == "" || psid == "" {
		return Customer{}, invalidf("a page and a PSID are required")
	}
	now := s.timestamp(at)
	if _, err := exec(ctx, s.db, `INSERT INTO customers (page_ref, psid, profile_status, profile_error, profile_attempts,
			next_profile_attempt_at, created_at, updated_at)
		VALUES (?, ?, 'unavailable', ?, 1, ?, ?, ?)
		ON CONFLICT (page_ref, psid) DO UPDATE SET
			profile_status = CASE WHEN customers.profile_status = 'known' THEN 'known' ELSE 'unavailable' END,
			profile_error = excluded.profile_error, profile_attempts = customers.profile_attempts + 1,
			next_profile_attempt_at = excluded.next_profile_attempt_at, updated_at = excluded.updated_at`,
		pageRef, psid, reason, s.timestamp(next), now, now); err != nil {
		return Customer{}, err
	}
	return s.GetCustomer(ctx, pageRef, psid)
}
