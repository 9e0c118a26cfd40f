package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/secrets"
)

// Page is a Facebook page connected in an account.
type Page struct {
	ID        string
	AccountID string
	Name      string
	PageID    string // Facebook's page id
	TokenHint string
	// CallbackKey (in the webhook URL) and VerifyToken (for Meta's
	// handshake) are empty when another account owns the Facebook page;
	// DuplicateOfAccountID then names that account.
	CallbackKey          string
	VerifyToken          string
	DuplicateOfAccountID string
	WebhookVerifiedAt    *time.Time
	TokenCheckedAt       *time.Time
	TokenExpiresAt       *time.Time
	SubscribedAt         *time.Time
	// TokenValid and TokenError are the last debug_token result; nil when
	// the token has not been checked yet.
	TokenValid *bool
	TokenError string
	// LastError is any other provisioning failure (Graph API unreachable,
	// subscription refused).
	LastError     string
	LastWebhookAt *time.Time
	// AccountWebhookVerifiedAt is when Meta verified the account's webhook
	// (one callback URL per app, for every page of the account).
	AccountWebhookVerifiedAt *time.Time
	// Flag is a Send API refusal caused by the page itself; nil when none.
	Flag *PageFlag
	// ThreadLookup says whether the token may read the thread's messages
	// (pages_read_engagement and pages_manage_metadata); nil until checked.
	ThreadLookup *bool
	// Health is what the periodic health check found (expiring,
	// unsubscribed, silent), "" when nothing; AlertedState is the
	// provisioning state last alerted. SilenceAfter: this page's silence
	// threshold (0: the default).
	HealthState     string
	HealthReason    string
	HealthCheckedAt *time.Time
	AlertedState    string
	SilenceAfter    time.Duration
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DeletedAt       *time.Time
}

// PageFlag is a Send API refusal that concerns the page, not one message.
type PageFlag struct {
	Code    int
	Subcode int
	Class   string // messenger.ErrorClass
	Reason  string
	At      time.Time
}

// NewPage is the input of CreatePage.
type NewPage struct {
	AccountID   string
	Name        string
	PageID      string // Facebook's page id
	AccessToken string
}

// TokenCheck is the result of checking a page access token (debug_token).
type TokenCheck struct {
	At        time.Time
	Valid     bool
	Error     string
	ExpiresAt *time.Time
	// Scopes are the token's permissions, when known.
	Scopes []string
}

// Provisioning states, derived by Page.Provisioning.
const (
	ProvisioningDuplicate            = "duplicate"
	ProvisioningTokenInvalid         = "token_invalid"
	ProvisioningFlagged              = "flagged"
	ProvisioningError                = "error"
	ProvisioningAwaitingVerification = "awaiting_verification"
	// Found by the periodic health check (issue 10):
	ProvisioningUnsubscribed = "unsubscribed" // Meta dropped the app's subscription and re-subscribing failed
	ProvisioningExpiring     = "expiring"     // the token or its data access expires soon
	ProvisioningSilent       = "silent"       // no webhook for longer than the page's threshold, while it used to be busy
	ProvisioningRunning      = "running"
)

// Provisioning derives where the page stands, and why, from its recorded
// facts. The first problem wins, in the order of the constants above.
func (p Page) Provisioning() (state, reason string) {
	switch {
	case p.DuplicateOfAccountID != "" || p.CallbackKey == "":
		return ProvisioningDuplicate, fmt.Sprintf("Facebook page %s is already connected in account %s, which receives its webhooks", p.PageID, p.DuplicateOfAccountID)
	case p.TokenValid != nil && !*p.TokenValid:
		reason := p.TokenError
		if reason == "" {
			reason = "the page access token is not valid"
		}
		return ProvisioningTokenInvalid, reason
	case p.Flag != nil:
		return ProvisioningFlagged, fmt.Sprintf("Meta refused to send for this page (code %d, subcode %d, %s) at %s: %s; fix it with Meta, then check the page again (POST /pages/{id}/check)",
			p.Flag.Code, p.Flag.Subcode, p.Flag.Class, p.Flag.At.UTC().Format(time.RFC3339), p.Flag.Reason)
	case p.LastError != "":
		return ProvisioningError, p.LastError
	case p.webhookVerified() == nil || p.TokenValid == nil || p.SubscribedAt == nil:
		var waits []string
		if p.webhookVerified() == nil {
			waits = append(waits, "Meta has not verified the account's webhook (callback URL and verify token) yet")
		}
		if p.TokenValid == nil {
			waits = append(waits, "the page access token has not been checked yet")
		}
		if p.SubscribedAt == nil && p.TokenValid != nil {
			waits = append(waits, "the app is not subscribed to the page's webhooks yet")
		}
		return ProvisioningAwaitingVerification, strings.Join(waits, "; ")
	case p.HealthState != "":
		return p.HealthState, p.HealthReason
	}
	return ProvisioningRunning, ""
}

type pageRow struct {
	ID                   string         `db:"id"`
	AccountID            string         `db:"account_id"`
	Name                 string         `db:"name"`
	PageID               string         `db:"page_id"`
	AccessTokenSealed    string         `db:"access_token_sealed"`
	TokenHint            string         `db:"token_hint"`
	CallbackKey          sql.NullString `db:"callback_key"`
	VerifyToken          sql.NullString `db:"verify_token"`
	DuplicateOfAccountID sql.NullString `db:"duplicate_of_account_id"`
	WebhookVerifiedAt    sql.NullTime   `db:"webhook_verified_at"`
	TokenCheckedAt       sql.NullTime   `db:"token_checked_at"`
	TokenValid           sql.NullBool   `db:"token_valid"`
	TokenError           string         `db:"token_error"`
	TokenExpiresAt       sql.NullTime   `db:"token_expires_at"`
	SubscribedAt         sql.NullTime   `db:"subscribed_at"`
	LastError            string         `db:"last_error"`
	LastWebhookAt        sql.NullTime   `db:"last_webhook_at"`
	AccountVerifiedAt    sql.NullTime   `db:"account_webhook_verified_at"`
	FlagCode             int            `db:"flag_code"`
	FlagSubcode          int            `db:"flag_subcode"`
	FlagClass            string         `db:"flag_class"`
	FlagReason           string         `db:"flag_reason"`
	FlaggedAt            sql.NullTime   `db:"flagged_at"`
	ThreadLookup         sql.NullBool   `db:"thread_lookup"`
	HealthState          string         `db:"health_state"`
	HealthReason         string         `db:"health_reason"`
	HealthCheckedAt      sql.NullTime   `db:"health_checked_at"`
	AlertedState         string         `db:"alerted_state"`
	SilenceAfterSeconds  int64          `db:"silence_after_seconds"`
	CreatedAt            time.Time      `db:"created_at"`
	UpdatedAt            time.Time      `db:"updated_at"`
	DeletedAt            sql.NullTime   `db:"deleted_at"`
}

const pageColumns = `id, account_id, name, page_id, access_token_sealed, token_hint,
	callback_key, verify_token, duplicate_of_account_id,
	webhook_verified_at, token_checked_at, token_valid, token_error, token_expires_at,
	subscribed_at, last_error, last_webhook_at, created_at, updated_at, deleted_at,
	(SELECT webhook_verified_at FROM accounts WHERE accounts.id = pages.account_id) AS account_webhook_verified_at,
	flag_code, flag_subcode, flag_class, flag_reason, flagged_at, thread_lookup,
	health_state, health_reason, health_checked_at, alerted_state, silence_after_seconds`

// webhookVerified is when the account's webhook (or, before accounts
// recorded it, this page's) was verified.
func (p Page) webhookVerified() *time.Time {
	if p.AccountWebhookVerifiedAt != nil {
		return p.AccountWebhookVerifiedAt
	}
	return p.WebhookVerifiedAt
}

func (r pageRow) page() Page {
	p := Page{
		ID:                   r.ID,
		AccountID:            r.AccountID,
		Name:                 r.Name,
		PageID:               r.PageID,
		TokenHint:            r.TokenHint,
		CallbackKey:          r.CallbackKey.String,
		VerifyToken:          r.VerifyToken.String,
		DuplicateOfAccountID: r.DuplicateOfAccountID.String,
		WebhookVerifiedAt:    timePtr(r.WebhookVerifiedAt),
		TokenCheckedAt:       timePtr(r.TokenCheckedAt),
		TokenExpiresAt:       timePtr(r.TokenExpiresAt),
		SubscribedAt:         timePtr(r.SubscribedAt),
		TokenError:           r.TokenError,
		LastError:            r.LastError,
		LastWebhookAt:        timePtr(r.LastWebhookAt),
		HealthState:          r.HealthState,
		HealthReason:         r.HealthReason,
		HealthCheckedAt:      timePtr(r.HealthCheckedAt),
		AlertedState:         r.AlertedState,
		SilenceAfter:         time.Duration(r.SilenceAfterSeconds) * time.Second,
		CreatedAt:            r.CreatedAt.UTC(),
		UpdatedAt:            r.UpdatedAt.UTC(),
		DeletedAt:            timePtr(r.DeletedAt),
	}
	if r.TokenValid.Valid {
		v := r.TokenValid.Bool
		p.TokenValid = &v
	}
	p.AccountWebhookVerifiedAt = timePtr(r.AccountVerifiedAt)
	if r.FlaggedAt.Valid {
		p.Flag = &PageFlag{Code: r.FlagCode, Subcode: r.FlagSubcode, Class: r.FlagClass, Reason: r.FlagReason, At: r.FlaggedAt.Time.UTC()}
	}
	if r.ThreadLookup.Valid {
		v := r.ThreadLookup.Bool
		p.ThreadLookup = &v
	}
	return p
}

func pageTokenAAD(pageID string) string { return "pages/" + pageID + "/access_token" }

// createPageAttempts bounds the retries of CreatePage after losing a race
// for the same Facebook page; each retry sees the winner's row.
const createPageAttempts = 5

// CreatePage connects a Facebook page in an account. It returns ErrNotFound
// if the account does not exist (or is deleted) and ErrConflict if the
// account already has this Facebook page. If another account owns the
// Facebook page, the page is saved as a duplicate: without callback key and
// verify token, DuplicateOfAccountID naming the owner.
func (s *Store) CreatePage(ctx context.Context, np NewPage) (_ Page, err error) {
	defer wrap(&err, "store.CreatePage")
	if np.PageID == "" || np.AccessToken == "" {
		return Page{}, invalidf("page id and access token are required")
	}
	id, err := newID()
	if err != nil {
		return Page{}, err
	}
	sealed, err := s.seal(np.AccessToken, pageTokenAAD(id))
	if err != nil {
		return Page{}, err
	}
	callbackKey, err := randomToken(32)
	if err != nil {
		return Page{}, err
	}
	verifyToken, err := randomToken(24)
	if err != nil {
		return Page{}, err
	}
	now := s.clock()
	r := pageRow{
		ID:                id,
		AccountID:         np.AccountID,
		Name:              np.Name,
		PageID:            np.PageID,
		AccessTokenSealed: sealed,
		TokenHint:         secrets.Hint(np.AccessToken),
		CreatedAt:         now,
		UpdatedAt:         now,
	}
	for attempt := 1; ; attempt++ {
		err = s.inTx(ctx, func(tx *sqlx.Tx) error {
			return s.insertPage(ctx, tx, &r, callbackKey, verifyToken)
		})
		if err == nil {
			return r.page(), nil
		}
		if !isUniqueViolation(err) {
			return Page{}, err
		}
		if attempt == createPageAttempts {
			return Page{}, fmt.Errorf("%w: Facebook page %s: %w", ErrConflict, np.PageID, err)
		}
	}
}

// insertPage decides whether the page owns its Facebook page, then inserts
// it. A concurrent CreatePage for the same Facebook page may insert between
// the check and the insert: the partial unique indexes then fail this one,
// and the caller retries.
func (s *Store) insertPage(ctx context.Context, tx *sqlx.Tx, r *pageRow, callbackKey, verifyToken string) error {
	// On PostgreSQL, FOR SHARE stops a concurrent DeleteAccount until we
	// commit, so it cannot miss this page. SQLite transactions are
	// immediate: they already exclude every other writer.
	lockAccount := `SELECT id FROM accounts WHERE id = ? AND deleted_at IS NULL`
	if s.dialect == DialectPostgres {
		lockAccount += ` FOR SHARE`
	}
	var accountID string
	if err := get(ctx, tx, &accountID, lockAccount, r.AccountID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("account %s: %w", r.AccountID, ErrNotFound)
		}
		return err
	}
	var mine int
	if err := get(ctx, tx, &mine, `SELECT COUNT(*) FROM pages WHERE account_id = ? AND page_id = ? AND deleted_at IS NULL`, r.AccountID, r.PageID); err != nil {
		return err
	}
	if mine > 0 {
		return fmt.Errorf("%w: account %s already has Facebook page %s", ErrConflict, r.AccountID, r.PageID)
	}
	var owner string
	err := get(ctx, tx, &owner, `SELECT account_id FROM pages WHERE page_id = ? AND deleted_at IS NULL AND callback_key IS NOT NULL`, r.PageID)
	switch {
	case errors.Is(err, ErrNotFound):
		r.CallbackKey = nullString(callbackKey)
		r.VerifyToken = nullString(verifyToken)
		r.DuplicateOfAccountID = sql.NullString{}
	case err != nil:
		return err
	default:
		r.CallbackKey = sql.NullString{}
		r.VerifyToken = sql.NullString{}
		r.DuplicateOfAccountID = nullString(owner)
	}
	_, err = exec(ctx, tx, `
		INSERT INTO pages (id, account_id, name, page_id, access_token_sealed, token_hint,
			callback_key, verify_token, duplicate_of_account_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.AccountID, r.Name, r.PageID, r.AccessTokenSealed, r.TokenHint,
		r.CallbackKey, r.VerifyToken, r.DuplicateOfAccountID, s.timestamp(r.CreatedAt), s.timestamp(r.UpdatedAt))
	return err
}

// GetPage returns a live page.
func (s *Store) GetPage(ctx context.Context, id string) (_ Page, err error) {
	defer wrap(&err, "store.GetPage(%q)", id)
	return getPage(ctx, s.db, `id = ?`, id)
}

// getPage returns the live page matching where.
func getPage(ctx context.Context, q querier, where string, args ...any) (Page, error) {
	var r pageRow
	if err := get(ctx, q, &r, `SELECT `+pageColumns+` FROM pages WHERE deleted_at IS NULL AND `+where, args...); err != nil {
		return Page{}, err
	}
	return r.page(), nil
}

// ListPages returns the live pages of an account ("" for every account),
// oldest first.
func (s *Store) ListPages(ctx context.Context, accountID string) (_ []Page, err error) {
	defer wrap(&err, "store.ListPages(%q)", accountID)
	query := `SELECT ` + pageColumns + ` FROM pages WHERE deleted_at IS NULL`
	var args []any
	if accountID != "" {
		query += ` AND account_id = ?`
		args = append(args, accountID)
	}
	var rows []pageRow
	if err := list(ctx, s.db, &rows, query+` ORDER BY created_at, id`, args...); err != nil {
		return nil, err
	}
	out := make([]Page, len(rows))
	for i, r := range rows {
		out[i] = r.page()
	}
	return out, nil
}

// PageByCallbackKey resolves a webhook URL to its live page.
func (s *Store) PageByCallbackKey(ctx context.Context, key string) (_ Page, err error) {
	// The key is a credential: keep it out of error messages.
	defer wrap(&err, "store.PageByCallbackKey")
	if key == "" {
		return Page{}, ErrNotFound
	}
	return getPage(ctx, s.db, `callback_key = ?`, key)
}

// PageByFacebookID returns the account's live page for a Facebook page id,
// owner or duplicate.
func (s *Store) PageByFacebookID(ctx context.Context, accountID, fbPageID string) (_ Page, err error) {
	defer wrap(&err, "store.PageByFacebookID(%q, %q)", accountID, fbPageID)
	return getPage(ctx, s.db, `account_id = ? AND page_id = ?`, accountID, fbPageID)
}

// OwnerPageByFacebookID returns the live page that owns a Facebook page id
// (the one with a callback key), whatever its account.
func (s *Store) OwnerPageByFacebookID(ctx context.Context, fbPageID string) (_ Page, err error) {
	defer wrap(&err, "store.OwnerPageByFacebookID(%q)", fbPageID)
	return getPage(ctx, s.db, `page_id = ? AND callback_key IS NOT NULL`, fbPageID)
}

// DeletePage soft-deletes a page: its callback URL stops working at once.
// Duplicates of it in other accounts stay duplicates.
func (s *Store) DeletePage(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.DeletePage(%q)", id)
	now := s.timestamp(s.clock())
	return execOne(ctx, s.db, `UPDATE pages SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, now, now, id)
}

// RotatePageToken replaces the page access token; the new one has not been
// checked yet.
func (s *Store) RotatePageToken(ctx context.Context, id, token string) (_ Page, err error) {
	defer wrap(&err, "store.RotatePageToken(%q)", id)
	if token == "" {
		return Page{}, invalidf("access token is required")
	}
	sealed, err := s.seal(token, pageTokenAAD(id))
	if err != nil {
		return Page{}, err
	}
	return s.updatePage(ctx, id, `access_token_sealed = ?, token_hint = ?,
		token_valid = NULL, token_error = '', token_checked_at = NULL, token_expires_at = NULL,
		thread_lookup = NULL, flag_code = 0, flag_subcode = 0, flag_class = '', flag_reason = '', flagged_at = NULL`,
		sealed, secrets.Hint(token))
}

// PageAccessToken returns the decrypted access token of a live page.
func (s *Store) PageAccessToken(ctx context.Context, id string) (_ string, err error) {
	defer wrap(&err, "store.PageAccessToken(%q)", id)
	var sealed string
	if err := get(ctx, s.db, &sealed, `SELECT access_token_sealed FROM pages WHERE id = ? AND deleted_at IS NULL`, id); err != nil {
		return "", err
	}
	return s.open(sealed, pageTokenAAD(id))
}

// MarkWebhookVerified records Meta's successful verification handshake on
// the callback URL of page id (deleted or not): it verifies the webhook of
// its whole account, since Meta has one callback URL per app.
func (s *Store) MarkWebhookVerified(ctx context.Context, id string, at time.Time) (err error) {
	defer wrap(&err, "store.MarkWebhookVerified(%q)", id)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := execOne(ctx, tx, `UPDATE accounts SET webhook_verified_at = ?, updated_at = ?
			WHERE id = (SELECT account_id FROM pages WHERE id = ?) AND deleted_at IS NULL`,
			s.timestamp(at), s.timestamp(s.clock()), id); err != nil {
			return err
		}
		_, err := exec(ctx, tx, `UPDATE pages SET webhook_verified_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`,
			s.timestamp(at), s.timestamp(s.clock()), id)
		return err
	})
}

// Permissions the Conversations API needs to read a thread's messages.
var threadLookupScopes = []string{"pages_read_engagement", "pages_manage_metadata"}

// FlagPage records a Send API refusal caused by the page itself; the last
// one is shown until the page is checked again or its token rotated. A zero
// f.At means now.
func (s *Store) FlagPage(ctx context.Context, id string, f PageFlag) (err error) {
	defer wrap(&err, "store.FlagPage(%q)", id)
	if f.At.IsZero() {
		f.At = s.clock()
	}
	return s.setPage(ctx, id, `flag_code = ?, flag_subcode = ?, flag_class = ?, flag_reason = ?, flagged_at = ?`,
		f.Code, f.Subcode, f.Class, f.Reason, s.timestamp(f.At))
}

// RecordTokenCheck records the result of checking the page access token.
func (s *Store) RecordTokenCheck(ctx context.Context, id string, c TokenCheck) (_ Page, err error) {
	defer wrap(&err, "store.RecordTokenCheck(%q)", id)
	msg := c.Error
	if c.Valid {
		msg = ""
	}
	if !c.Valid || c.Scopes == nil {
		return s.updatePage(ctx, id, `token_checked_at = ?, token_valid = ?, token_error = ?, token_expires_at = ?`,
			s.timestamp(c.At), c.Valid, msg, s.nullTimestamp(c.ExpiresAt))
	}
	// A good check clears an earlier flag: the admin says it is fixed.
	lookup := true
	for _, sc := range threadLookupScopes {
		lookup = lookup && slices.Contains(c.Scopes, sc)
	}
	return s.updatePage(ctx, id, `token_checked_at = ?, token_valid = ?, token_error = ?, token_expires_at = ?,
		thread_lookup = ?, flag_code = 0, flag_subcode = 0, flag_class = '', flag_reason = '', flagged_at = NULL`,
		s.timestamp(c.At), c.Valid, msg, s.nullTimestamp(c.ExpiresAt), lookup)
}

// RecordSubscribed records that the app subscribed to the page's webhooks.
func (s *Store) RecordSubscribed(ctx context.Context, id string, at time.Time) (err error) {
	defer wrap(&err, "store.RecordSubscribed(%q)", id)
	return s.setPage(ctx, id, `subscribed_at = ?`, s.timestamp(at))
}

// SetPageError records a provisioning failure; "" clears it.
func (s *Store) SetPageError(ctx context.Context, id, msg string) (err error) {
	defer wrap(&err, "store.SetPageError(%q)", id)
	return s.setPage(ctx, id, `last_error = ?`, msg)
}

// TouchWebhook records when the page's webhooks last arrived. It runs on
// the webhook path, so it is one small UPDATE and leaves updated_at alone.
func (s *Store) TouchWebhook(ctx context.Context, id string, at time.Time) (err error) {
	defer wrap(&err, "store.TouchWebhook(%q)", id)
	return execOne(ctx, s.db, `UPDATE pages SET last_webhook_at = ? WHERE id = ? AND deleted_at IS NULL`, s.timestamp(at), id)
}

// setPage sets columns of a live page and bumps updated_at.
func (s *Store) setPage(ctx context.Context, id, set string, args ...any) error {
	args = append(args, s.timestamp(s.clock()), id)
	return execOne(ctx, s.db, `UPDATE pages SET `+set+`, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, args...)
}

// updatePage is setPage returning the updated page.
func (s *Store) updatePage(ctx context.Context, id, set string, args ...any) (Page, error) {
	var p Page
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		args = append(args, s.timestamp(s.clock()), id)
		if err := execOne(ctx, tx, `UPDATE pages SET `+set+`, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, args...); err != nil {
			return err
		}
		var err error
		p, err = getPage(ctx, tx, `id = ?`, id)
		return err
	})
	return p, err
}
