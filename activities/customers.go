package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"parley/messenger"
	"parley/store"
)

// LoadProfileName reads (and fetches when due) a customer's profile.
const LoadProfileName = "LoadProfile"

// ProfileRefresh is how old a known profile may get before it is fetched
// again (Meta's picture links expire; names rarely change).
const ProfileRefresh = 24 * time.Hour

// profileBackoff is the wait after the nth failed fetch in a row (the
// last one repeats): Meta refuses the profile API to many apps, and asking
// on every message would only add calls that fail.
var profileBackoff = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// ProfileBackoff is the wait after failures failed fetches in a row.
func ProfileBackoff(failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	return profileBackoff[min(failures, len(profileBackoff))-1]
}

// ProfileInput names the customer; Now is the workflow's clock.
type ProfileInput struct {
	PageRef string    `json:"page_ref"`
	PSID    string    `json:"psid"`
	Now     time.Time `json:"now"`
	// AutoCreateContact: once the name is known, link the customer to a
	// new contact if it has none (the workstream's auto_create_contacts).
	AutoCreateContact bool `json:"auto_create_contact,omitempty"`
}

// CustomerProfile is what the conversation knows of its customer. An
// unknown name is empty, never a placeholder: the PSID stays the identity.
type CustomerProfile struct {
	Status    string    `json:"status"` // store.ProfileUnknown, ProfileKnown, ProfileUnavailable
	FirstName string    `json:"first_name,omitempty"`
	LastName  string    `json:"last_name,omitempty"`
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	// NextAttemptAt: when a failed fetch may be tried again.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Reason        string    `json:"reason,omitempty"` // why the last fetch failed
	// Locale ("fr_FR") chooses automated messages' translation when Meta
	// gives it; not fetched today, so the workstream's language applies.
	Locale string `json:"locale,omitempty"`
}

// Name is the customer's full name, "" when unknown.
func (p CustomerProfile) Name() string {
	return strings.TrimSpace(p.FirstName + " " + p.LastName)
}

// Due says whether the profile should be fetched (again) at now.
func (p CustomerProfile) Due(now time.Time) bool {
	if !p.NextAttemptAt.IsZero() && now.Before(p.NextAttemptAt) {
		return false
	}
	return p.Status != store.ProfileKnown || !now.Before(p.FetchedAt.Add(ProfileRefresh))
}

// Customers reads customers' profiles from Meta, keeping them in the store.
type Customers struct {
	Store *store.Store
	Graph *messenger.Client
	Log   *slog.Logger
}

func (a *Customers) log() *slog.Logger { return orDefault(a.Log) }

func profileOf(c store.Customer) CustomerProfile {
	return CustomerProfile{Status: c.ProfileStatus, FirstName: c.FirstName, LastName: c.LastName, FetchedAt: c.ProfileFetchedAt,
		NextAttemptAt: c.NextProfileAttemptAt, Reason: c.ProfileError}
}

// LoadProfile returns the customer's profile, fetching it from Meta's user
// profile API only when it is due: never fetched, a failed fetch whose wait
// is over, or a known profile older than ProfileRefresh. A refusal or a
// failure is not an error: the profile says the name is unknown, why, and
// when to try again (ProfileBackoff).
func (a *Customers) LoadProfile(ctx context.Context, in ProfileInput) (CustomerProfile, error) {
	now := in.Now.UTC()
	known, err := a.Store.GetCustomer(ctx, in.PageRef, in.PSID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		known = store.Customer{ProfileStatus: store.ProfileUnknown}
	case err != nil:
		return CustomerProfile{}, fmt.Errorf("customer %s of page %s: %w", in.PSID, in.PageRef, err)
	}
	if p := profileOf(known); !p.Due(now) {
		return p, a.ensureContact(ctx, in, p)
	}
	_, auth, err := pageAuthOf(ctx, a.Store, in.PageRef)
	if errors.Is(err, store.ErrNotFound) {
		return a.failed(ctx, in, "the page or its account was deleted from Parley", now, ProfileRefresh)
	}
	if err != nil {
		return CustomerProfile{}, fmt.Errorf("page %s: %w", in.PageRef, err)
	}
	p, err := a.Graph.UserProfile(ctx, auth, in.PSID)
	if err != nil {
		reason := "Meta did not answer the profile request"
		if ge, ok := messenger.AsGraphError(err); ok {
			reason = fmt.Sprintf("Meta refused the profile (code %d, subcode %d)", ge.Code, ge.Subcode)
		}
		a.log().InfoContext(ctx, "customer profile unavailable", "page", in.PageRef, "psid", in.PSID, "err", err)
		return a.failed(ctx, in, reason, now, ProfileBackoff(known.ProfileAttempts+1))
	}
	c, err := a.Store.SaveProfile(ctx, in.PageRef, in.PSID, store.ProfileFetched{FirstName: p.FirstName, LastName: p.LastName,
		PictureURL: p.ProfilePic, At: now})
	if err != nil {
		return CustomerProfile{}, err
	}
	return profileOf(c), a.ensureContact(ctx, in, profileOf(c))
}

// ensureContact creates the customer's contact when the workstream asks
// and the name is known (a contact is never named by a placeholder).
func (a *Customers) ensureContact(ctx context.Context, in ProfileInput, p CustomerProfile) error {
	if !in.AutoCreateContact || p.Name() == "" {
		return nil
	}
	c, created, err := a.Store.EnsureContact(ctx, in.PageRef, in.PSID, p.Name())
	if err != nil {
		return fmt.Errorf("contact of customer %s: %w", in.PSID, err)
	}
	if created {
		a.log().InfoContext(ctx, "contact created for customer", "page", in.PageRef, "psid", in.PSID, "contact", c.ID)
	}
	return nil
}

func (a *Customers) failed(ctx context.Context, in ProfileInput, reason string, now time.Time, wait time.Duration) (CustomerProfile, error) {
	c, err := a.Store.SaveProfileFailure(ctx, in.PageRef, in.PSID, reason, now, now.Add(wait))
	if err != nil {
		return CustomerProfile{}, err
	}
	return profileOf(c), nil
}
