package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"parley/secrets"
)

// Kinds of data keys.
const (
	// DataKeyCustomer encrypts one customer's payloads in Temporal.
	DataKeyCustomer = "customer"
	// DataKeySystem encrypts every other payload in Temporal.
	DataKeySystem = "system"
)

// DataKey is a data key that encrypts Temporal payloads (package
// payloadcodec), opened with the master key.
type DataKey struct {
	ID   string
	Kind string // DataKeyCustomer or DataKeySystem
	// FacebookPageID and PSID name the customer; both "" for the system key.
	FacebookPageID string
	PSID           string
	Key            []byte // secrets.KeySize bytes
	CreatedAt      time.Time
}

type dataKeyRow struct {
	KeyID          string    `db:"key_id"`
	Kind           string    `db:"kind"`
	FacebookPageID string    `db:"facebook_page_id"`
	PSID           string    `db:"psid"`
	WrappedKey     string    `db:"wrapped_key"`
	CreatedAt      time.Time `db:"created_at"`
}

const dataKeyColumns = `key_id, kind, facebook_page_id, psid, wrapped_key, created_at`

// dataKeyAAD binds a wrapped key to its row.
func dataKeyAAD(id string) string { return "customer_keys/" + id + "/wrapped_key" }

func (s *Store) openDataKey(r dataKeyRow) (DataKey, error) {
	enc, err := s.open(r.WrappedKey, dataKeyAAD(r.KeyID))
	if err != nil {
		return DataKey{}, fmt.Errorf("unwrap key %s: %w", r.KeyID, err)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) != secrets.KeySize {
		return DataKey{}, fmt.Errorf("unwrap key %s: not a %d-byte key", r.KeyID, secrets.KeySize)
	}
	return DataKey{ID: r.KeyID, Kind: r.Kind, FacebookPageID: r.FacebookPageID, PSID: r.PSID, Key: key, CreatedAt: r.CreatedAt.UTC()}, nil
}

// CustomerKey returns the data key of a customer (Facebook page id and
// PSID), creating it on first use.
func (s *Store) CustomerKey(ctx context.Context, facebookPageID, psid string) (_ DataKey, err error) {
	defer wrap(&err, "store.CustomerKey(%s, %s)", facebookPageID, psid)
	if facebookPageID == "" || psid == "" {
		return DataKey{}, invalidf("a Facebook page id and a PSID are required")
	}
	return s.dataKey(ctx, DataKeyCustomer, facebookPageID, psid)
}

// SystemKey returns the data key of everything that is not a customer's,
// creating it on first use.
func (s *Store) SystemKey(ctx context.Context) (_ DataKey, err error) {
	defer wrap(&err, "store.SystemKey")
	return s.dataKey(ctx, DataKeySystem, "", "")
}

// dataKey reads the key of (page, psid) or creates it: on the webhook's
// acknowledgement path for a new customer, hence one read (rdb) and one
// insert that returns its row. Processes racing to create it all insert
// theirs with ON CONFLICT DO NOTHING; the losers read the row that won.
func (s *Store) dataKey(ctx context.Context, kind, facebookPageID, psid string) (DataKey, error) {
	const byOwner = `SELECT ` + dataKeyColumns + ` FROM customer_keys WHERE facebook_page_id = ? AND psid = ?`
	var r dataKeyRow
	err := get(ctx, s.rdb, &r, byOwner, facebookPageID, psid)
	if err == nil {
		return s.openDataKey(r)
	}
	if !errors.Is(err, ErrNotFound) {
		return DataKey{}, err
	}
	id, err := newID()
	if err != nil {
		return DataKey{}, err
	}
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		return DataKey{}, fmt.Errorf("generate key: %w", err)
	}
	wrapped, err := s.seal(base64.StdEncoding.EncodeToString(key), dataKeyAAD(id))
	if err != nil {
		return DataKey{}, fmt.Errorf("wrap key: %w", err)
	}
	err = get(ctx, s.db, &r, `INSERT INTO customer_keys (`+dataKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (facebook_page_id, psid) DO NOTHING RETURNING `+dataKeyColumns,
		id, kind, facebookPageID, psid, wrapped, s.timestamp(s.clock()))
	if errors.Is(err, ErrNotFound) {
		// Another process created it first; read it from the writer, which
		// has seen that commit.
		err = get(ctx, s.db, &r, byOwner, facebookPageID, psid)
	}
	if err != nil {
		return DataKey{}, err
	}
	return s.openDataKey(r)
}

// KeyByID returns a data key by its id; ErrNotFound when it was erased (or
// never existed in this database).
func (s *Store) KeyByID(ctx context.Context, id string) (_ DataKey, err error) {
	defer wrap(&err, "store.KeyByID(%s)", id)
	var r dataKeyRow
	if err := get(ctx, s.rdb, &r, `SELECT `+dataKeyColumns+` FROM customer_keys WHERE key_id = ?`, id); err != nil {
		return DataKey{}, err
	}
	return s.openDataKey(r)
}

// EraseCustomerKey deletes a customer's data key and returns the ids of the
// keys erased (none when the customer had none): every payload encrypted
// with them becomes unreadable for good. Processes that cached the key
// forget it within their cache's lifetime (payloadcodec).
func (s *Store) EraseCustomerKey(ctx context.Context, facebookPageID, psid string) (_ []string, err error) {
	defer wrap(&err, "store.EraseCustomerKey(%s, %s)", facebookPageID, psid)
	if facebookPageID == "" || psid == "" {
		return nil, invalidf("a Facebook page id and a PSID are required")
	}
	var ids []string
	if err := list(ctx, s.db, &ids, `DELETE FROM customer_keys WHERE kind = 'customer' AND facebook_page_id = ? AND psid = ?
		RETURNING key_id`, facebookPageID, psid); err != nil {
		return nil, err
	}
	return ids, nil
}
