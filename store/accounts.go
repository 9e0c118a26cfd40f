package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/secrets"
)

// ChannelFacebook is the only channel: Facebook Messenger.
const ChannelFacebook = "facebook"

// Account is a Meta app (id and secret) through which Parley serves pages.
// The app secret never leaves the store except through AccountAppSecret.
type Account struct {
	ID            string
	Name          string
	Channel       string
	AppID         string
	AppSecretHint string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	DeletedAt     *time.Time
}

// NewAccount is the input of CreateAccount.
type NewAccount struct {
	Name      string
	AppID     string
	AppSecret string
}

// AccountUpdate changes the non-nil fields of an account.
type AccountUpdate struct {
	Name      *string
	AppID     *string
	AppSecret *string
}

type accountRow struct {
	ID              string       `db:"id"`
	Name            string       `db:"name"`
	Channel         string       `db:"channel"`
	AppID           string       `db:"app_id"`
	AppSecretSealed string       `db:"app_secret_sealed"`
	AppSecretHint   string       `db:"app_secret_hint"`
	CreatedAt       time.Time    `db:"created_at"`
	UpdatedAt       time.Time    `db:"updated_at"`
	DeletedAt       sql.NullTime `db:"deleted_at"`
}

const accountColumns = `id, name, channel, app_id, app_secret_sealed, app_secret_hint, created_at, updated_at, deleted_at`

func (r accountRow) account() Account {
	return Account{
		ID:            r.ID,
		Name:          r.Name,
		Channel:       r.Channel,
		AppID:         r.AppID,
		AppSecretHint: r.AppSecretHint,
		CreatedAt:     r.CreatedAt.UTC(),
		UpdatedAt:     r.UpdatedAt.UTC(),
		DeletedAt:     timePtr(r.DeletedAt),
	}
}

func appSecretAAD(accountID string) string { return "accounts/" + accountID + "/app_secret" }

// CreateAccount stores a new account, its app secret sealed.
func (s *Store) CreateAccount(ctx context.Context, a NewAccount) (_ Account, err error) {
	defer wrap(&err, "store.CreateAccount")
	if a.Name == "" || a.AppID == "" || a.AppSecret == "" {
		return Account{}, invalidf("name, app id and app secret are required")
	}
	id, err := newID()
	if err != nil {
		return Account{}, err
	}
	sealed, err := s.seal(a.AppSecret, appSecretAAD(id))
	if err != nil {
		return Account{}, err
	}
	now := s.clock()
	if _, err := exec(ctx, s.db, `
		INSERT INTO accounts (id, name, channel, app_id, app_secret_sealed, app_secret_hint, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, a.Name, ChannelFacebook, a.AppID, sealed, secrets.Hint(a.AppSecret), s.timestamp(now), s.timestamp(now)); err != nil {
		return Account{}, err
	}
	return s.GetAccount(ctx, id)
}

// GetAccount returns a live account.
func (s *Store) GetAccount(ctx context.Context, id string) (_ Account, err error) {
	defer wrap(&err, "store.GetAccount(%q)", id)
	r, err := getAccount(ctx, s.db, id)
	if err != nil {
		return Account{}, err
	}
	return r.account(), nil
}

func getAccount(ctx context.Context, q querier, id string) (accountRow, error) {
	var r accountRow
	err := get(ctx, q, &r, `SELECT `+accountColumns+` FROM accounts WHERE id = ? AND deleted_at IS NULL`, id)
	return r, err
}

// ListAccounts returns the live accounts, oldest first.
func (s *Store) ListAccounts(ctx context.Context) (_ []Account, err error) {
	defer wrap(&err, "store.ListAccounts")
	var rows []accountRow
	if err := list(ctx, s.db, &rows, `SELECT `+accountColumns+` FROM accounts WHERE deleted_at IS NULL ORDER BY created_at, id`); err != nil {
		return nil, err
	}
	out := make([]Account, len(rows))
	for i, r := range rows {
		out[i] = r.account()
	}
	return out, nil
}

// UpdateAccount changes the fields of u that are not nil.
func (s *Store) UpdateAccount(ctx context.Context, id string, u AccountUpdate) (_ Account, err error) {
	defer wrap(&err, "store.UpdateAccount(%q)", id)
	if (u.Name != nil && *u.Name == "") || (u.AppID != nil && *u.AppID == "") || (u.AppSecret != nil && *u.AppSecret == "") {
		return Account{}, invalidf("name, app id and app secret cannot be empty")
	}
	var out Account
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		r, err := getAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.Name != nil {
			r.Name = *u.Name
		}
		if u.AppID != nil {
			r.AppID = *u.AppID
		}
		if u.AppSecret != nil {
			if r.AppSecretSealed, err = s.seal(*u.AppSecret, appSecretAAD(id)); err != nil {
				return err
			}
			r.AppSecretHint = secrets.Hint(*u.AppSecret)
		}
		r.UpdatedAt = s.clock()
		if err := execOne(ctx, tx, `
			UPDATE accounts SET name = ?, app_id = ?, app_secret_sealed = ?, app_secret_hint = ?, updated_at = ?
			WHERE id = ? AND deleted_at IS NULL`,
			r.Name, r.AppID, r.AppSecretSealed, r.AppSecretHint, s.timestamp(r.UpdatedAt), id); err != nil {
			return err
		}
		out = r.account()
		return nil
	})
	return out, err
}

// DeleteAccount soft-deletes an account and its pages, whose webhooks then
// stop being accepted. History (conversations, messages) is kept.
func (s *Store) DeleteAccount(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.DeleteAccount(%q)", id)
	now := s.timestamp(s.clock())
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := execOne(ctx, tx, `UPDATE accounts SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, now, now, id); err != nil {
			return err
		}
		_, err := exec(ctx, tx, `UPDATE pages SET deleted_at = ?, updated_at = ? WHERE account_id = ? AND deleted_at IS NULL`, now, now, id)
		return err
	})
}

// AccountAppSecret returns the decrypted app secret of a live account.
func (s *Store) AccountAppSecret(ctx context.Context, accountID string) (_ string, err error) {
	defer wrap(&err, "store.AccountAppSecret(%q)", accountID)
	var sealed string
	if err := get(ctx, s.db, &sealed, `SELECT app_secret_sealed FROM accounts WHERE id = ? AND deleted_at IS NULL`, accountID); err != nil {
		return "", err
	}
	return s.open(sealed, appSecretAAD(accountID))
}
