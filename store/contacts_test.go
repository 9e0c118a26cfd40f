package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestContacts(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ada, err := s.CreateContact(ctx, ContactInput{Name: " Ada Lovelace ", Emails: []string{"Ada@Example.com", "ada@example.com"},
			Phones: []string{"+44 (20) 7946-0958"}, ExternalRef: "CRM-1", Notes: "prefers mornings"})
		if err != nil {
			t.Fatal(err)
		}
		if ada.Name != "Ada Lovelace" || len(ada.Emails) != 1 || ada.Emails[0] != "ada@example.com" || ada.Phones[0] != "+442079460958" {
			t.Errorf("created %+v: want the name trimmed, one lowercased email, the phone's digits", ada)
		}
		if _, err := s.CreateContact(ctx, ContactInput{Name: "Grace Hopper", Emails: []string{"grace@navy.mil"}}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			in    ContactInput
			field string
		}{
			{ContactInput{}, "name"},
			{ContactInput{Name: "x", Emails: []string{"not an email"}}, "emails[0]"},
			{ContactInput{Name: "x", Emails: []string{"Ada <ada@example.com>"}}, "emails[0]"},
			{ContactInput{Name: "x", Phones: []string{"12"}}, "phones[0]"},
			{ContactInput{Name: "x", Phones: []string{"call me"}}, "phones[0]"},
		} {
			_, err := s.CreateContact(ctx, tc.in)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("%+v: %v, want a field error on %s", tc.in, err, tc.field)
			}
		}
		for q, want := range map[string]int{"": 2, "lovelace": 1, "EXAMPLE.COM": 1, "7946": 1, "navy": 1, "nobody": 0, "100%": 0} {
			got, err := s.ListContacts(ctx, q, 10, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != want {
				t.Errorf("search %q: %d contacts, want %d", q, len(got), want)
			}
		}
		notes := "calls back"
		if c, err := s.UpdateContact(ctx, ada.ID, ContactUpdate{Notes: &notes}); err != nil || c.Notes != notes || c.Name != "Ada Lovelace" {
			t.Errorf("update: %+v, %v", c, err)
		}

		// A customer linked to Ada: its conversations are hers.
		if _, ok, err := s.ContactOfCustomer(ctx, "page", "psid-1"); ok || err != nil {
			t.Errorf("before the link: %v %v", ok, err)
		}
		if err := s.LinkCustomer(ctx, ada.ID, "page", "psid-1"); err != nil {
			t.Fatal(err)
		}
		if c, ok, err := s.ContactOfCustomer(ctx, "page", "psid-1"); !ok || err != nil || c.ID != ada.ID {
			t.Errorf("after the link: %+v %v %v", c, ok, err)
		}
		if _, err := s.SaveProfile(ctx, "page", "psid-1", ProfileFetched{FirstName: "Ada", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkCustomer(ctx, ada.ID, "page", "psid-3"); err != nil { // never fetched
			t.Fatal(err)
		}
		linked, err := s.LinkedCustomers(ctx, ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(linked) != 2 || linked[0].FirstName != "Ada" || linked[0].ProfileStatus != ProfileKnown ||
			linked[1].PSID != "psid-3" || linked[1].ProfileStatus != ProfileUnknown || linked[1].FirstName != "" {
			t.Errorf("linked customers: %+v", linked)
		}
		// A workstream's auto_create_contacts: once per customer; a linked
		// customer keeps its contact.
		auto, created, err := s.EnsureContact(ctx, "page", "psid-4", "Grace Hopper")
		if err != nil || !created || auto.Name != "Grace Hopper" {
			t.Fatalf("ensure: %+v %v %v", auto, created, err)
		}
		if again, created, err := s.EnsureContact(ctx, "page", "psid-4", "Grace B. Hopper"); err != nil || created || again.ID != auto.ID {
			t.Errorf("ensure again: %+v %v %v, want the same contact", again, created, err)
		}
		if kept, created, err := s.EnsureContact(ctx, "page", "psid-1", "Someone"); err != nil || created || kept.ID != ada.ID {
			t.Errorf("ensure on a linked customer: %+v %v %v, want Ada's contact", kept, created, err)
		}
		if _, _, err := s.EnsureContact(ctx, "page", "psid-5", ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("ensure without a name: %v, want ErrInvalid", err)
		}
		if err := s.LinkCustomer(ctx, "nope", "page", "psid-2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("link to an unknown contact: %v", err)
		}
		if err := s.DeleteContact(ctx, ada.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.ContactOfCustomer(ctx, "page", "psid-1"); ok {
			t.Error("a deleted contact is still linked")
		}
		if _, err := s.GetContact(ctx, ada.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted contact: %v", err)
		}
	})
}
