package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Contact is a person the contact center knows. Customers (a page and a
// PSID) link to it; a customer's later conversations find it by the link.
type Contact struct {
	ID          string
	Name        string
	Emails      []string // lowercased
	Phones      []string // "+" and digits
	ExternalRef string
	Notes       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ContactInput creates a contact; ContactUpdate changes the fields given.
type ContactInput struct {
	Name        string
	Emails      []string
	Phones      []string
	ExternalRef string
	Notes       string
}

// ContactUpdate changes the non-nil fields.
type ContactUpdate struct {
	Name        *string
	Emails      *[]string
	Phones      *[]string
	ExternalRef *string
	Notes       *string
}

// Limits of a contact's fields.
const (
	MaxContactName   = 200
	MaxContactRef    = 200
	MaxContactNotes  = 5000
	MaxContactPoints = 20 // emails, and phones
)

type contactRow struct {
	ID          string    `db:"id"`
	Name        string    `db:"name"`
	Emails      string    `db:"emails"`
	Phones      string    `db:"phones"`
	ExternalRef string    `db:"external_ref"`
	Notes       string    `db:"notes"`
	CreatedAt   time.Time `db:"created_at"`
	UpdatedAt   time.Time `db:"updated_at"`
}

const contactColumns = `id, name, emails, phones, external_ref, notes, created_at, updated_at`

func (r contactRow) contact() (Contact, error) {
	emails, err := decodeStrings(r.Emails)
	if err != nil {
		return Contact{}, fmt.Errorf("contact %s: emails: %w", r.ID, err)
	}
	phones, err := decodeStrings(r.Phones)
	if err != nil {
		return Contact{}, fmt.Errorf("contact %s: phones: %w", r.ID, err)
	}
	return Contact{ID: r.ID, Name: r.Name, Emails: emails, Phones: phones, ExternalRef: r.ExternalRef, Notes: r.Notes,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}, nil
}

// normalizeContact checks and normalizes a contact's fields; errors are
// *FieldError naming the field.
func normalizeContact(in ContactInput) (ContactInput, error) {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return in, fieldErrorf("name", "is required")
	case utf8.RuneCountInString(in.Name) > MaxContactName:
		return in, fieldErrorf("name", "must be at most %d characters", MaxContactName)
	case utf8.RuneCountInString(in.ExternalRef) > MaxContactRef:
		return in, fieldErrorf("external_ref", "must be at most %d characters", MaxContactRef)
	case utf8.RuneCountInString(in.Notes) > MaxContactNotes:
		return in, fieldErrorf("notes", "must be at most %d characters", MaxContactNotes)
	case len(in.Emails) > MaxContactPoints:
		return in, fieldErrorf("emails", "at most %d", MaxContactPoints)
	case len(in.Phones) > MaxContactPoints:
		return in, fieldErrorf("phones", "at most %d", MaxContactPoints)
	}
	var emails []string
	for i, e := range in.Emails {
		a, err := mail.ParseAddress(strings.TrimSpace(e))
		if err != nil || a.Name != "" || a.Address != strings.TrimSpace(e) {
			return in, fieldErrorf(fmt.Sprintf("emails[%d]", i), "%q is not an email address", e)
		}
		if e := strings.ToLower(a.Address); !slices.Contains(emails, e) {
			emails = append(emails, e)
		}
	}
	var phones []string
	for i, p := range in.Phones {
		n, ok := normalizePhone(p)
		if !ok {
			return in, fieldErrorf(fmt.Sprintf("phones[%d]", i), "%q is not a phone number: digits, with an optional leading + (5 to 20 digits; spaces, dots, dashes and parentheses are ignored)", p)
		}
		if !slices.Contains(phones, n) {
			phones = append(phones, n)
		}
	}
	in.Emails, in.Phones = emails, phones
	return in, nil
}

// normalizePhone keeps a leading "+" and the digits.
func normalizePhone(p string) (string, bool) {
	p = strings.TrimSpace(p)
	var b strings.Builder
	for i, r := range p {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", false
		}
	}
	n := strings.TrimPrefix(b.String(), "+")
	return b.String(), len(n) >= 5 && len(n) <= 20
}

// CreateContact stores a new contact.
func (s *Store) CreateContact(ctx context.Context, in ContactInput) (_ Contact, err error) {
	defer wrap(&err, "store.CreateContact")
	in, err = normalizeContact(in)
	if err != nil {
		return Contact{}, err
	}
	id, err := newID()
	if err != nil {
		return Contact{}, err
	}
	now := s.timestamp(s.clock())
	if _, err := exec(ctx, s.db, `INSERT INTO contacts (id, name, emails, phones, external_ref, notes, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, in.Name, encodeStrings(in.Emails), encodeStrings(in.Phones), in.ExternalRef, in.Notes,
		now, now); err != nil {
		return Contact{}, err
	}
	return s.GetContact(ctx, id)
}

// GetContact returns a live contact; ErrNotFound otherwise.
func (s *Store) GetContact(ctx context.Context, id string) (_ Contact, err error) {
	defer wrap(&err, "store.GetContact(%s)", id)
	return getContact(ctx, s.db, id)
}

func getContact(ctx context.Context, q querier, id string) (Contact, error) {
	var r contactRow
	if err := get(ctx, q, &r, `SELECT `+contactColumns+` FROM contacts WHERE id = ? AND deleted_at IS NULL`, id); err != nil {
		return Contact{}, err
	}
	return r.contact()
}

// ListContacts returns live contacts by name, those matching query (a part
// of the name, of an email, or of a phone number's digits) when it is set;
// after is the last id of the previous page (keyset on name, id).
func (s *Store) ListContacts(ctx context.Context, query string, limit int, afterName, afterID string) (_ []Contact, err error) {
	defer wrap(&err, "store.ListContacts")
	where := `deleted_at IS NULL`
	var args []any
	if q := strings.TrimSpace(query); q != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(q)) + "%"
		conds := []string{`LOWER(name) LIKE ? ESCAPE '\'`, `emails LIKE ? ESCAPE '\'`}
		args = append(args, like, like)
		if digits, ok := normalizePhone(q); ok || len(strings.Trim(digits, "+")) >= 3 {
			conds = append(conds, `phones LIKE ? ESCAPE '\'`)
			args = append(args, "%"+strings.TrimPrefix(digits, "+")+"%")
		}
		where += ` AND (` + strings.Join(conds, " OR ") + `)`
	}
	if afterID != "" {
		where += ` AND (name > ? OR (name = ? AND id > ?))`
		args = append(args, afterName, afterName, afterID)
	}
	args = append(args, limit)
	var rows []contactRow
	if err := list(ctx, s.db, &rows, `SELECT `+contactColumns+` FROM contacts WHERE `+where+` ORDER BY name, id LIMIT ?`, args...); err != nil {
		return nil, err
	}
	return decodeRows(rows, contactRow.contact)
}

// UpdateContact changes the fields given.
func (s *Store) UpdateContact(ctx context.Context, id string, u ContactUpdate) (_ Contact, err error) {
	defer wrap(&err, "store.UpdateContact(%s)", id)
	c, err := s.GetContact(ctx, id)
	if err != nil {
		return Contact{}, err
	}
	in := ContactInput{Name: c.Name, Emails: c.Emails, Phones: c.Phones, ExternalRef: c.ExternalRef, Notes: c.Notes}
	if u.Name != nil {
		in.Name = *u.Name
	}
	if u.Emails != nil {
		in.Emails = *u.Emails
	}
	if u.Phones != nil {
		in.Phones = *u.Phones
	}
	if u.ExternalRef != nil {
		in.ExternalRef = *u.ExternalRef
	}
	if u.Notes != nil {
		in.Notes = *u.Notes
	}
	if in, err = normalizeContact(in); err != nil {
		return Contact{}, err
	}
	if err := execOne(ctx, s.db, `UPDATE contacts SET name = ?, emails = ?, phones = ?, external_ref = ?, notes = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`, in.Name, encodeStrings(in.Emails), encodeStrings(in.Phones), in.ExternalRef, in.Notes,
		s.timestamp(s.clock()), id); err != nil {
		return Contact{}, err
	}
	return s.GetContact(ctx, id)
}

// DeleteContact deletes a contact and its links to customers (their
// conversations stay).
func (s *Store) DeleteContact(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.DeleteContact(%s)", id)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := exec(ctx, tx, `DELETE FROM contact_customers WHERE contact_id = ?`, id); err != nil {
			return err
		}
		return execOne(ctx, tx, `UPDATE contacts SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, s.timestamp(s.clock()), id)
	})
}

// LinkCustomer links a customer (page and PSID) to a live contact,
// replacing its previous link: every conversation of that customer, past
// and later, belongs to the contact.
func (s *Store) LinkCustomer(ctx context.Context, contactID, pageRef, psid string) (err error) {
	defer wrap(&err, "store.LinkCustomer(%s, %s, %s)", contactID, pageRef, psid)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := getContact(ctx, tx, contactID); err != nil {
			return err
		}
		_, err := exec(ctx, tx, `INSERT INTO contact_customers (page_ref, psid, contact_id, linked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (page_ref, psid) DO UPDATE SET contact_id = excluded.contact_id, linked_at = excluded.linked_at`,
			pageRef, psid, contactID, s.timestamp(s.clock()))
		return err
	})
}

// EnsureContact links a customer linked to no contact to a new contact
// named name (a workstream's auto_create_contacts); a customer already
// linked keeps its contact. created says whether one was made.
func (s *Store) EnsureContact(ctx context.Context, pageRef, psid, name string) (_ Contact, created bool, err error) {
	defer wrap(&err, "store.EnsureContact(%s, %s)", pageRef, psid)
	in, err := normalizeContact(ContactInput{Name: name})
	if err != nil {
		return Contact{}, false, err
	}
	var out Contact
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var id string
		err := get(ctx, tx, &id, `SELECT l.contact_id FROM contact_customers l JOIN contacts c ON c.id = l.contact_id
			AND c.deleted_at IS NULL WHERE l.page_ref = ? AND l.psid = ?`, pageRef, psid)
		if err == nil {
			out, err = getContact(ctx, tx, id)
			return err
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if id, err = newID(); err != nil {
			return err
		}
		now := s.timestamp(s.clock())
		if _, err := exec(ctx, tx, `INSERT INTO contacts (id, name, emails, phones, external_ref, notes, created_at, updated_at)
			VALUES (?, ?, '[]', '[]', '', '', ?, ?)`, id, in.Name, now, now); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, `INSERT INTO contact_customers (page_ref, psid, contact_id, linked_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (page_ref, psid) DO UPDATE SET contact_id = excluded.contact_id, linked_at = excluded.linked_at`,
			pageRef, psid, id, now); err != nil {
			return err
		}
		created = true
		out, err = getContact(ctx, tx, id)
		return err
	})
	return out, created, err
}

// ContactOfCustomer returns the contact a customer is linked to, if any.
func (s *Store) ContactOfCustomer(ctx context.Context, pageRef, psid string) (_ Contact, ok bool, err error) {
	defer wrap(&err, "store.ContactOfCustomer(%s, %s)", pageRef, psid)
	var r contactRow
	err = get(ctx, s.db, &r, `SELECT c.id, c.name, c.emails, c.phones, c.external_ref, c.notes, c.created_at, c.updated_at
		FROM contact_customers l JOIN contacts c ON c.id = l.contact_id AND c.deleted_at IS NULL
		WHERE l.page_ref = ? AND l.psid = ?`, pageRef, psid)
	if errors.Is(err, ErrNotFound) {
		return Contact{}, false, nil
	}
	if err != nil {
		return Contact{}, false, err
	}
	c, err := r.contact()
	return c, err == nil, err
}

// PastConversation is one conversation of a customer, for its summary.
type PastConversation struct {
	ID           string
	PageRef      string
	PSID         string
	State        string
	AgentID      string
	StartedAt    time.Time
	ClosedAt     time.Time // zero while open
	ClosedReason string
}

// MaxPastConversations bounds a summary's list.
const MaxPastConversations = 50

// CustomerConversations returns the latest conversations (newest first)
// of the customers linked to contactID, or, with contactID "", of the one
// customer pageRef/psid.
func (s *Store) CustomerConversations(ctx context.Context, contactID, pageRef, psid string) (_ []PastConversation, err error) {
	defer wrap(&err, "store.CustomerConversations")
	var rows []struct {
		ID           string       `db:"id"`
		PageRef      string       `db:"page_ref"`
		PSID         string       `db:"psid"`
		State        string       `db:"state"`
		AgentID      string       `db:"agent_id"`
		StartedAt    time.Time    `db:"started_at"`
		ClosedAt     sql.NullTime `db:"closed_at"`
		ClosedReason string       `db:"closed_reason"`
	}
	query := `SELECT c.id, c.page_ref, c.psid, c.state, c.agent_id, c.started_at, c.closed_at, c.closed_reason FROM conversations c `
	args := []any{}
	if contactID != "" {
		query += `JOIN contact_customers l ON l.page_ref = c.page_ref AND l.psid = c.psid WHERE l.contact_id = ?`
		args = append(args, contactID)
	} else {
		query += `WHERE c.page_ref = ? AND c.psid = ?`
		args = append(args, pageRef, psid)
	}
	args = append(args, MaxPastConversations)
	if err := list(ctx, s.db, &rows, query+` ORDER BY c.started_at DESC, c.id DESC LIMIT ?`, args...); err != nil {
		return nil, err
	}
	out := make([]PastConversation, len(rows))
	for i, r := range rows {
		out[i] = PastConversation{ID: r.ID, PageRef: r.PageRef, PSID: r.PSID, State: r.State, AgentID: r.AgentID,
			StartedAt: r.StartedAt.UTC(), ClosedReason: r.ClosedReason}
		if r.ClosedAt.Valid {
			out[i].ClosedAt = r.ClosedAt.Time.UTC()
		}
	}
	return out, nil
}

// LinkedCustomers returns the customers linked to a contact.
func (s *Store) LinkedCustomers(ctx context.Context, contactID string) (_ []Customer, err error) {
	defer wrap(&err, "store.LinkedCustomers(%s)", contactID)
	// The customer's row may be missing (never fetched): its columns are
	// read as they are, nullable (SQLite loses a COALESCE's column type).
	var rows []struct {
		PageRef              string         `db:"page_ref"`
		PSID                 string         `db:"psid"`
		LinkedAt             time.Time      `db:"linked_at"`
		FirstName            sql.NullString `db:"first_name"`
		LastName             sql.NullString `db:"last_name"`
		PictureURL           sql.NullString `db:"picture_url"`
		ProfileStatus        sql.NullString `db:"profile_status"`
		ProfileError         sql.NullString `db:"profile_error"`
		ProfileAttempts      sql.NullInt64  `db:"profile_attempts"`
		ProfileFetchedAt     sql.NullTime   `db:"profile_fetched_at"`
		NextProfileAttemptAt sql.NullTime   `db:"next_profile_attempt_at"`
		CreatedAt            sql.NullTime   `db:"created_at"`
		UpdatedAt            sql.NullTime   `db:"updated_at"`
	}
	if err := list(ctx, s.db, &rows, `SELECT l.page_ref, l.psid, l.linked_at, c.first_name, c.last_name, c.picture_url,
			c.profile_status, c.profile_error, c.profile_attempts, c.profile_fetched_at, c.next_profile_attempt_at,
			c.created_at, c.updated_at
		FROM contact_customers l LEFT JOIN customers c ON c.page_ref = l.page_ref AND c.psid = l.psid
		WHERE l.contact_id = ? ORDER BY l.linked_at, l.psid`, contactID); err != nil {
		return nil, err
	}
	out := make([]Customer, len(rows))
	for i, r := range rows {
		cr := customerRow{PageRef: r.PageRef, PSID: r.PSID, FirstName: r.FirstName.String, LastName: r.LastName.String,
			PictureURL: r.PictureURL.String, ProfileStatus: r.ProfileStatus.String, ProfileError: r.ProfileError.String,
			ProfileAttempts: int(r.ProfileAttempts.Int64), ProfileFetchedAt: r.ProfileFetchedAt, NextProfileAttemptAt: r.NextProfileAttemptAt,
			CreatedAt: r.LinkedAt, UpdatedAt: r.LinkedAt}
		if cr.ProfileStatus == "" {
			cr.ProfileStatus = ProfileUnknown
		}
		if r.CreatedAt.Valid {
			cr.CreatedAt, cr.UpdatedAt = r.CreatedAt.Time, r.UpdatedAt.Time
		}
		out[i] = cr.customer()
	}
	return out, nil
}
