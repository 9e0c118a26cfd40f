package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestPages(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		newFakeClock(s)
		a := mustCreateAccount(t, s, "A")
		p, err := s.CreatePage(ctx, NewPage{AccountID: a.ID, Name: "Shop", PageID: "1001", AccessToken: "EAABtoken-WXYZ"})
		if err != nil {
			t.Fatal(err)
		}
		if p.ID == "" || p.AccountID != a.ID || p.Name != "Shop" || p.PageID != "1001" || p.TokenHint != "…WXYZ" || p.DuplicateOfAccountID != "" {
			t.Errorf("CreatePage = %+v", p)
		}
		// 32 and 24 random bytes, base64url without padding.
		if len(p.CallbackKey) != 43 || len(p.VerifyToken) != 32 {
			t.Errorf("CallbackKey %q (%d), VerifyToken %q (%d); want 43 and 32 characters", p.CallbackKey, len(p.CallbackKey), p.VerifyToken, len(p.VerifyToken))
		}
		if state, _ := p.Provisioning(); state != ProvisioningAwaitingVerification {
			t.Errorf("new page Provisioning = %q", state)
		}
		if tok, err := s.PageAccessToken(ctx, p.ID); err != nil || tok != "EAABtoken-WXYZ" {
			t.Errorf("PageAccessToken = %q, %v", tok, err)
		}
		for name, get := range map[string]func() (Page, error){
			"GetPage":               func() (Page, error) { return s.GetPage(ctx, p.ID) },
			"PageByCallbackKey":     func() (Page, error) { return s.PageByCallbackKey(ctx, p.CallbackKey) },
			"PageByFacebookID":      func() (Page, error) { return s.PageByFacebookID(ctx, a.ID, "1001") },
			"OwnerPageByFacebookID": func() (Page, error) { return s.OwnerPageByFacebookID(ctx, "1001") },
		} {
			got, err := get()
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if !reflect.DeepEqual(got, p) {
				t.Errorf("%s = %+v\nwant %+v", name, got, p)
			}
		}
		for name, err := range map[string]error{
			"GetPage(unknown)":                errOf(s.GetPage(ctx, "nope")),
			"PageByCallbackKey(unknown)":      errOf(s.PageByCallbackKey(ctx, "nope")),
			"PageByCallbackKey(empty)":        errOf(s.PageByCallbackKey(ctx, "")),
			"PageByFacebookID(other account)": errOf(s.PageByFacebookID(ctx, "other", "1001")),
			"OwnerPageByFacebookID(unknown)":  errOf(s.OwnerPageByFacebookID(ctx, "9999")),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s = %v, want ErrNotFound", name, err)
			}
		}

		// Provisioning steps.
		verifiedAt := mustUTC(t, "2025-03-02T10:00:00.123456Z")
		if err := s.MarkWebhookVerified(ctx, p.ID, verifiedAt); err != nil {
			t.Fatal(err)
		}
		expires := mustUTC(t, "2025-06-01T00:00:00Z")
		checked, err := s.RecordTokenCheck(ctx, p.ID, TokenCheck{At: verifiedAt.Add(time.Second), Valid: true, ExpiresAt: &expires})
		if err != nil {
			t.Fatal(err)
		}
		if checked.TokenValid == nil || !*checked.TokenValid || checked.TokenError != "" || *checked.TokenCheckedAt != verifiedAt.Add(time.Second) || *checked.TokenExpiresAt != expires {
			t.Errorf("RecordTokenCheck = %+v", checked)
		}
		if *checked.WebhookVerifiedAt != verifiedAt || !checked.UpdatedAt.After(p.UpdatedAt) {
			t.Errorf("after MarkWebhookVerified: %+v", checked)
		}
		if err := s.RecordSubscribed(ctx, p.ID, verifiedAt); err != nil {
			t.Fatal(err)
		}
		if state, reason := mustGetPage(t, s, p.ID).Provisioning(); state != ProvisioningRunning {
			t.Errorf("Provisioning = %q (%s), want running", state, reason)
		}
		if err := s.SetPageError(ctx, p.ID, "Graph API unreachable"); err != nil {
			t.Fatal(err)
		}
		if state, reason := mustGetPage(t, s, p.ID).Provisioning(); state != ProvisioningError || reason != "Graph API unreachable" {
			t.Errorf("Provisioning = %q, %q; want error", state, reason)
		}
		if err := s.SetPageError(ctx, p.ID, ""); err != nil {
			t.Fatal(err)
		}
		bad, err := s.RecordTokenCheck(ctx, p.ID, TokenCheck{At: verifiedAt, Valid: false, Error: "Session has expired"})
		if err != nil {
			t.Fatal(err)
		}
		if state, reason := bad.Provisioning(); state != ProvisioningTokenInvalid || reason != "Session has expired" {
			t.Errorf("Provisioning = %q, %q; want token_invalid", state, reason)
		}

		// Rotating the token forgets the last check.
		rotated, err := s.RotatePageToken(ctx, p.ID, "EAABnew-token-1234")
		if err != nil {
			t.Fatal(err)
		}
		if rotated.TokenHint != "…1234" || rotated.TokenValid != nil || rotated.TokenError != "" || rotated.TokenCheckedAt != nil || rotated.TokenExpiresAt != nil {
			t.Errorf("RotatePageToken = %+v", rotated)
		}
		if rotated.CallbackKey != p.CallbackKey || rotated.WebhookVerifiedAt == nil || rotated.SubscribedAt == nil {
			t.Errorf("RotatePageToken changed more than the token: %+v", rotated)
		}
		if tok, err := s.PageAccessToken(ctx, p.ID); err != nil || tok != "EAABnew-token-1234" {
			t.Errorf("PageAccessToken after rotation = %q, %v", tok, err)
		}

		// TouchWebhook sets LastWebhookAt only.
		before := mustGetPage(t, s, p.ID)
		webhookAt := mustUTC(t, "2025-03-03T08:00:00Z")
		if err := s.TouchWebhook(ctx, p.ID, webhookAt); err != nil {
			t.Fatal(err)
		}
		after := mustGetPage(t, s, p.ID)
		if after.LastWebhookAt == nil || *after.LastWebhookAt != webhookAt || after.UpdatedAt != before.UpdatedAt {
			t.Errorf("after TouchWebhook: LastWebhookAt %v, UpdatedAt %v (was %v)", after.LastWebhookAt, after.UpdatedAt, before.UpdatedAt)
		}

		// Same account, same Facebook page: conflict.
		if _, err := s.CreatePage(ctx, NewPage{AccountID: a.ID, PageID: "1001", AccessToken: "t"}); !errors.Is(err, ErrConflict) {
			t.Errorf("CreatePage(same account, same page) = %v, want ErrConflict", err)
		}
		if _, err := s.CreatePage(ctx, NewPage{AccountID: "nope", PageID: "1001", AccessToken: "t"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("CreatePage(unknown account) = %v, want ErrNotFound", err)
		}
		if _, err := s.CreatePage(ctx, NewPage{AccountID: a.ID, PageID: "", AccessToken: "t"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreatePage(no page id) = %v, want ErrInvalid", err)
		}
		if _, err := s.RotatePageToken(ctx, p.ID, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("RotatePageToken(empty) = %v, want ErrInvalid", err)
		}

		p2 := mustCreatePage(t, s, a.ID, "1002")
		b := mustCreateAccount(t, s, "B")
		p3 := mustCreatePage(t, s, b.ID, "2001")
		for accountID, want := range map[string][]string{"": {p.ID, p2.ID, p3.ID}, a.ID: {p.ID, p2.ID}, b.ID: {p3.ID}, "nope": nil} {
			list, err := s.ListPages(ctx, accountID)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range list {
				ids = append(ids, l.ID)
			}
			if !reflect.DeepEqual(ids, want) {
				t.Errorf("ListPages(%q) = %v, want %v", accountID, ids, want)
			}
		}

		// Soft delete: the callback URL stops working; the page can be connected again.
		if err := s.DeletePage(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		for name, err := range map[string]error{
			"PageByCallbackKey":     errOf(s.PageByCallbackKey(ctx, p.CallbackKey)),
			"GetPage":               errOf(s.GetPage(ctx, p.ID)),
			"PageByFacebookID":      errOf(s.PageByFacebookID(ctx, a.ID, "1001")),
			"OwnerPageByFacebookID": errOf(s.OwnerPageByFacebookID(ctx, "1001")),
			"PageAccessToken":       errOf(s.PageAccessToken(ctx, p.ID)),
			"DeletePage":            s.DeletePage(ctx, p.ID),
			"RecordSubscribed":      s.RecordSubscribed(ctx, p.ID, webhookAt),
			"SetPageError":          s.SetPageError(ctx, p.ID, "x"),
			"TouchWebhook":          s.TouchWebhook(ctx, p.ID, webhookAt),
			"RotatePageToken":       errOf(s.RotatePageToken(ctx, p.ID, "t")),
			"RecordTokenCheck":      errOf(s.RecordTokenCheck(ctx, p.ID, TokenCheck{At: webhookAt})),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after DeletePage = %v, want ErrNotFound", name, err)
			}
		}
		again := mustCreatePage(t, s, a.ID, "1001")
		if again.CallbackKey == "" || again.CallbackKey == p.CallbackKey {
			t.Errorf("page connected again: callback key %q (old %q)", again.CallbackKey, p.CallbackKey)
		}
	})
}

func mustGetPage(t *testing.T, s *Store, id string) Page {
	t.Helper()
	p, err := s.GetPage(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPageOwnership(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := mustCreateAccount(t, s, "A")
		b := mustCreateAccount(t, s, "B")
		c := mustCreateAccount(t, s, "C")
		owner := mustCreatePage(t, s, a.ID, "777")
		dup := mustCreatePage(t, s, b.ID, "777")
		if dup.CallbackKey != "" || dup.VerifyToken != "" || dup.DuplicateOfAccountID != a.ID {
			t.Errorf("duplicate page = %+v, want no keys and DuplicateOfAccountID %s", dup, a.ID)
		}
		if state, reason := dup.Provisioning(); state != ProvisioningDuplicate || reason == "" {
			t.Errorf("duplicate Provisioning = %q, %q", state, reason)
		}
		// Stored as NULL, so that the partial unique index ignores it.
		var nulls int
		if err := s.db.GetContext(ctx, &nulls, s.db.Rebind(`SELECT COUNT(*) FROM pages WHERE id = ? AND callback_key IS NULL AND verify_token IS NULL`), dup.ID); err != nil || nulls != 1 {
			t.Errorf("duplicate keys stored as NULL: %d, %v", nulls, err)
		}
		if got, err := s.PageByFacebookID(ctx, b.ID, "777"); err != nil || got.ID != dup.ID {
			t.Errorf("PageByFacebookID(B) = %+v, %v; want the duplicate", got, err)
		}
		if got, err := s.OwnerPageByFacebookID(ctx, "777"); err != nil || got.ID != owner.ID {
			t.Errorf("OwnerPageByFacebookID = %+v, %v; want the owner", got, err)
		}
		if _, err := s.CreatePage(ctx, NewPage{AccountID: b.ID, PageID: "777", AccessToken: "t"}); !errors.Is(err, ErrConflict) {
			t.Errorf("CreatePage(B again) = %v, want ErrConflict", err)
		}
		// The owner goes: the next page created for that id owns it.
		if err := s.DeletePage(ctx, owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OwnerPageByFacebookID(ctx, "777"); !errors.Is(err, ErrNotFound) {
			t.Errorf("OwnerPageByFacebookID after delete = %v, want ErrNotFound", err)
		}
		next := mustCreatePage(t, s, c.ID, "777")
		if next.CallbackKey == "" || next.DuplicateOfAccountID != "" {
			t.Errorf("page after the owner's deletion = %+v, want the new owner", next)
		}
		// Deleting the owner's account frees the id as well.
		if err := s.DeleteAccount(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if got := mustCreatePage(t, s, a.ID, "777"); got.CallbackKey == "" {
			t.Errorf("page after the owner account's deletion = %+v, want the new owner", got)
		}
	})
}

// TestCreatePageRace creates the same Facebook page concurrently in several
// accounts: exactly one owns it, the others are its duplicates.
func TestCreatePageRace(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const accounts, rounds = 4, 10
		var ids []string
		for i := range accounts {
			ids = append(ids, mustCreateAccount(t, s, fmt.Sprint("acct", i)).ID)
		}
		for round := range rounds {
			fbID := fmt.Sprint(5000 + round)
			pages := make([]Page, accounts)
			errs := make([]error, accounts)
			var wg sync.WaitGroup
			for i := range accounts {
				wg.Go(func() {
					pages[i], errs[i] = s.CreatePage(ctx, NewPage{AccountID: ids[i], Name: "race", PageID: fbID, AccessToken: "token-" + fbID})
				})
			}
			wg.Wait()
			var owners []Page
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d: CreatePage(account %d): %v", round, i, err)
				}
				if pages[i].CallbackKey != "" {
					owners = append(owners, pages[i])
				}
			}
			if len(owners) != 1 {
				t.Fatalf("round %d: %d owners, want 1", round, len(owners))
			}
			for _, p := range pages {
				if p.CallbackKey == "" && p.DuplicateOfAccountID != owners[0].AccountID {
					t.Errorf("round %d: duplicate of %q, want the owner %q", round, p.DuplicateOfAccountID, owners[0].AccountID)
				}
			}
		}

		// The same account racing itself: one page, the others conflict.
		const racers = 4
		created := raceCreates(t, racers, func() error {
			_, err := s.CreatePage(ctx, NewPage{AccountID: ids[0], PageID: "6000", AccessToken: "t"})
			return err
		})
		if created != 1 {
			t.Errorf("same-account race created %d pages, want 1", created)
		}
	})
}

func TestProvisioning(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	running := Page{PageID: "1", CallbackKey: "k", VerifyToken: "v", AccountWebhookVerifiedAt: &at, TokenValid: ptr(true), TokenCheckedAt: &at, SubscribedAt: &at}
	with := func(f func(p *Page)) Page {
		p := running
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name         string
		page         Page
		state        string
		reasonSubstr string
	}{
		{"running", running, ProvisioningRunning, ""},
		{"duplicate", with(func(p *Page) { p.CallbackKey, p.VerifyToken, p.DuplicateOfAccountID = "", "", "acct-9" }), ProvisioningDuplicate, "acct-9"},
		{"duplicate beats everything", with(func(p *Page) {
			p.CallbackKey, p.DuplicateOfAccountID, p.TokenValid, p.LastError = "", "acct-9", ptr(false), "boom"
		}), ProvisioningDuplicate, "acct-9"},
		{"token invalid", with(func(p *Page) { p.TokenValid, p.TokenError = ptr(false), "Error validating access token" }), ProvisioningTokenInvalid, "Error validating access token"},
		{"token invalid without message", with(func(p *Page) { p.TokenValid = ptr(false) }), ProvisioningTokenInvalid, "not valid"},
		{"token invalid beats error", with(func(p *Page) { p.TokenValid, p.TokenError, p.LastError = ptr(false), "expired", "boom" }), ProvisioningTokenInvalid, "expired"},
		{"error", with(func(p *Page) { p.LastError = "subscribe failed: (#200) Permissions error" }), ProvisioningError, "Permissions error"},
		{"error beats awaiting", with(func(p *Page) { p.LastError, p.AccountWebhookVerifiedAt = "Graph unreachable", nil }), ProvisioningError, "Graph unreachable"},
		{"webhook not verified", with(func(p *Page) { p.AccountWebhookVerifiedAt = nil }), ProvisioningAwaitingVerification, "webhook"},
		// Issue 6, defect 10: the account's webhook, verified on another
		// page's callback URL, is this page's too.
		{"verified on another page's URL", with(func(p *Page) { p.WebhookVerifiedAt = nil }), ProvisioningRunning, ""},
		{"not subscribed", with(func(p *Page) { p.SubscribedAt = nil }), ProvisioningAwaitingVerification, "subscribed"},
		// Issue 6, defect 13: refusals caused by the page flag it.
		{"flagged", with(func(p *Page) {
			p.Flag = &PageFlag{Code: 10, Subcode: 1893063, Class: "page_restricted", Reason: "the page is restricted", At: at}
		}), ProvisioningFlagged, "1893063"},
		{"token invalid beats flagged", with(func(p *Page) { p.TokenValid, p.Flag = ptr(false), &PageFlag{Code: 368, At: at} }), ProvisioningTokenInvalid, "not valid"},
		{"token not checked", with(func(p *Page) { p.TokenValid, p.TokenCheckedAt = nil, nil }), ProvisioningAwaitingVerification, "token"},
		{"new page", with(func(p *Page) { p.AccountWebhookVerifiedAt, p.TokenValid = nil, nil }), ProvisioningAwaitingVerification, "webhook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, reason := tc.page.Provisioning()
			if state != tc.state || !containsFold(reason, tc.reasonSubstr) {
				t.Errorf("Provisioning() = %q, %q; want %q with reason containing %q", state, reason, tc.state, tc.reasonSubstr)
			}
			if state == ProvisioningRunning && reason != "" {
				t.Errorf("running with reason %q", reason)
			}
			if state != ProvisioningRunning && reason == "" {
				t.Errorf("state %q without a reason", state)
			}
		})
	}
}

// Issue 6, defect 10: Meta's handshake on one page's callback URL verifies
// the account's webhook, so every page of the account (even one created
// later, or the pasted page deleted) counts as verified; defect 13: a flag
// stays until a good check clears it; the check records thread lookup.
func TestAccountWideWebhookAndFlags(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := mustCreateAccount(t, s, "one app")
		first := mustCreatePage(t, s, a.ID, "7001")
		second := mustCreatePage(t, s, a.ID, "7002")
		at := mustUTC(t, "2025-05-01T08:00:00Z")
		if err := s.MarkWebhookVerified(ctx, first.ID, at); err != nil {
			t.Fatal(err)
		}
		third := mustCreatePage(t, s, a.ID, "7003")
		for _, p := range []Page{second, third} {
			got, err := s.GetPage(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.AccountWebhookVerifiedAt == nil || !got.AccountWebhookVerifiedAt.Equal(at) {
				t.Errorf("page %s: account webhook verified at %v, want %v", p.PageID, got.AccountWebhookVerifiedAt, at)
			}
		}
		// The pasted page deleted, its URL still verifies the account.
		if err := s.DeletePage(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkWebhookVerified(ctx, first.ID, at.Add(time.Hour)); err != nil {
			t.Errorf("MarkWebhookVerified on a deleted page's URL = %v", err)
		}

		if err := s.FlagPage(ctx, second.ID, PageFlag{Code: 368, Class: "policy_block", Reason: "blocked", At: at}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPage(ctx, second.ID)
		if err != nil {
			t.Fatal(err)
		}
		if state, _ := got.Provisioning(); got.Flag == nil || got.Flag.Code != 368 || state != ProvisioningFlagged {
			t.Errorf("after FlagPage: %+v (%s)", got.Flag, state)
		}
		got, err = s.RecordTokenCheck(ctx, second.ID, TokenCheck{At: at, Valid: true, Scopes: []string{"pages_messaging", "pages_read_engagement"}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Flag != nil || got.ThreadLookup == nil || *got.ThreadLookup {
			t.Errorf("after a good check without pages_manage_metadata: flag %+v, thread lookup %v; want no flag, no lookup", got.Flag, got.ThreadLookup)
		}
		got, err = s.RecordTokenCheck(ctx, second.ID, TokenCheck{At: at, Valid: true, Scopes: []string{"pages_messaging", "pages_read_engagement", "pages_manage_metadata"}})
		if err != nil || got.ThreadLookup == nil || !*got.ThreadLookup {
			t.Errorf("with both permissions: thread lookup %v (%v), want true", got.ThreadLookup, err)
		}

		// The activity leaves the time to the store's clock.
		newFakeClock(s)
		if err := s.FlagPage(ctx, third.ID, PageFlag{Code: 200, Subcode: 2018028, Class: "app_not_live", Reason: "not live"}); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetPage(ctx, third.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := mustUTC(t, "2025-03-01T12:00:01Z"); got.Flag == nil || !got.Flag.At.Equal(want) {
			t.Errorf("flag without a time: %+v, want at %v (the store's clock)", got.Flag, want)
		}
		// Rotating the token clears the flag, as a good check does.
		got, err = s.RotatePageToken(ctx, third.ID, "EAAanother-token-0123456789")
		if err != nil || got.Flag != nil || got.ThreadLookup != nil {
			t.Errorf("after rotation: flag %+v, thread lookup %v (%v); want neither until checked", got.Flag, got.ThreadLookup, err)
		}
	})
}
