package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// conversationFixture creates an account and a page to hang conversations on.
func conversationFixture(t *testing.T, s *Store, fbPageID string) Page {
	t.Helper()
	return mustCreatePage(t, s, mustCreateAccount(t, s, "acct-"+fbPageID).ID, fbPageID)
}

func newConversation(p Page, id, psid string, startedAt time.Time) Conversation {
	return Conversation{
		ID:             id,
		PageRef:        p.ID,
		AccountID:      p.AccountID,
		FacebookPageID: p.PageID,
		PSID:           psid,
		WorkflowID:     "conversation/" + p.PageID + "/" + psid,
		State:          "open",
		StartedAt:      startedAt,
		UpdatedAt:      startedAt,
	}
}

func TestConversations(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "300")
		start := mustUTC(t, "2025-04-01T09:00:00.000001Z")
		c := newConversation(p, "c1", "psid-1", start)
		c.LastCustomerMessageAt = &start
		c.MessageCount = 1
		if err := s.UpsertConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
		// Idempotent: an activity retry.
		if err := s.UpsertConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetConversation(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("GetConversation = %+v\nwant %+v", got, c)
		}

		// An update changes the mutable fields only.
		upd := c
		upd.State, upd.AgentID, upd.MessageCount, upd.ClosedReason = "closed", "agent-7", 5, "agent_ended"
		closed := start.Add(time.Hour)
		upd.ClosedAt, upd.UpdatedAt = &closed, closed
		upd.WorkflowID, upd.PreviousConversationID, upd.StartedAt = "other", "c0", start.Add(time.Minute)
		if err := s.UpsertConversation(ctx, upd); err != nil {
			t.Fatal(err)
		}
		want := c
		want.State, want.AgentID, want.MessageCount, want.ClosedAt, want.UpdatedAt = "closed", "agent-7", 5, &closed, closed
		want.ClosedReason = "agent_ended"
		if got, err := s.GetConversation(ctx, "c1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after update: %+v, %v\nwant %+v", got, err, want)
		}
		// A late retry of an older activity does not roll it back.
		if err := s.UpsertConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetConversation(ctx, "c1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after a stale upsert: %+v, %v\nwant %+v", got, err, want)
		}

		// LatestConversation links a new conversation to the previous one.
		if _, err := s.LatestConversation(ctx, p.PageID, "psid-2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("LatestConversation(no conversation) = %v, want ErrNotFound", err)
		}
		c2 := newConversation(p, "c2", "psid-1", start.Add(2*time.Hour))
		c2.PreviousConversationID = "c1"
		if err := s.UpsertConversation(ctx, c2); err != nil {
			t.Fatal(err)
		}
		other := newConversation(p, "c3", "psid-2", start.Add(3*time.Hour))
		if err := s.UpsertConversation(ctx, other); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LatestConversation(ctx, p.PageID, "psid-1"); err != nil || got.ID != "c2" || got.PreviousConversationID != "c1" {
			t.Errorf("LatestConversation = %+v, %v; want c2", got, err)
		}

		if _, err := s.GetConversation(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetConversation(unknown) = %v, want ErrNotFound", err)
		}
		bad := newConversation(p, "c9", "psid-9", start)
		bad.PageRef = "no-such-page"
		if err := s.UpsertConversation(ctx, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpsertConversation(unknown page) = %v, want ErrNotFound", err)
		}
		bad = newConversation(p, "c9", "", start)
		if err := s.UpsertConversation(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpsertConversation(no psid) = %v, want ErrInvalid", err)
		}
	})
}

func TestListConversations(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p1 := conversationFixture(t, s, "401")
		p2 := conversationFixture(t, s, "402")
		base := mustUTC(t, "2025-05-01T00:00:00Z")
		// 12 conversations; pairs share a start time so that ids break ties.
		var all []Conversation
		for i := range 12 {
			p := p1
			if i%3 == 2 {
				p = p2
			}
			c := newConversation(p, fmt.Sprintf("conv-%02d", i), fmt.Sprint("psid-", i%4), base.Add(time.Duration(i/2)*time.Minute))
			if i%4 == 0 {
				c.State = "closed"
			}
			if i%3 == 1 {
				c.AgentID = "agent-1"
			}
			if err := s.UpsertConversation(ctx, c); err != nil {
				t.Fatal(err)
			}
			all = append(all, c)
		}
		// Newest first: by started_at, then id, descending.
		newestFirst := func(keep func(Conversation) bool) []string {
			var ids []string
			for i := len(all) - 1; i >= 0; i-- {
				if keep(all[i]) {
					ids = append(ids, all[i].ID)
				}
			}
			return ids
		}
		every := func(Conversation) bool { return true }

		for _, tc := range []struct {
			name   string
			filter ConversationFilter
			want   []string
		}{
			{"all", ConversationFilter{}, newestFirst(every)},
			{"facebook page", ConversationFilter{FacebookPageID: "402"}, newestFirst(func(c Conversation) bool { return c.FacebookPageID == "402" })},
			{"page ref", ConversationFilter{PageRef: p1.ID}, newestFirst(func(c Conversation) bool { return c.PageRef == p1.ID })},
			{"psid", ConversationFilter{PSID: "psid-1"}, newestFirst(func(c Conversation) bool { return c.PSID == "psid-1" })},
			{"state", ConversationFilter{State: "closed"}, newestFirst(func(c Conversation) bool { return c.State == "closed" })},
			{"agent", ConversationFilter{AgentID: "agent-1"}, newestFirst(func(c Conversation) bool { return c.AgentID == "agent-1" })},
			{"agent and state", ConversationFilter{AgentID: "agent-1", State: "closed"}, newestFirst(func(c Conversation) bool { return c.AgentID == "agent-1" && c.State == "closed" })},
			{"page and psid", ConversationFilter{FacebookPageID: "401", PSID: "psid-0"}, newestFirst(func(c Conversation) bool { return c.FacebookPageID == "401" && c.PSID == "psid-0" })},
			{"nothing", ConversationFilter{PSID: "nobody"}, nil},
		} {
			for _, limit := range []int{0, 1, 5, 200} {
				t.Run(fmt.Sprintf("%s/limit=%d", tc.name, limit), func(t *testing.T) {
					f := tc.filter
					f.Limit = limit
					var ids []string
					pages := 0
					for {
						list, next, err := s.ListConversations(ctx, f)
						if err != nil {
							t.Fatal(err)
						}
						pages++
						if limit > 0 && len(list) > limit {
							t.Fatalf("page of %d, limit %d", len(list), limit)
						}
						for _, c := range list {
							ids = append(ids, c.ID)
						}
						if next == "" {
							break
						}
						if pages > 20 {
							t.Fatal("pagination does not end")
						}
						f.Cursor = next
					}
					if !reflect.DeepEqual(ids, tc.want) {
						t.Errorf("got %v\nwant %v", ids, tc.want)
					}
				})
			}
		}

		// A full page exactly at the end may cost one empty request, never a missing row.
		list, next, err := s.ListConversations(ctx, ConversationFilter{Limit: 12})
		if err != nil || len(list) != 12 || next != "" {
			t.Errorf("ListConversations(limit 12 of 12) = %d rows, cursor %q, %v; want 12 and no cursor", len(list), next, err)
		}
		if !reflect.DeepEqual(list[0], all[11]) {
			t.Errorf("first = %+v\nwant %+v", list[0], all[11])
		}

		for _, cursor := range []string{"!!!", "bm90LWEtY3Vyc29y", encodeCursorRaw("abc|conv-01"), encodeCursorRaw("123|")} {
			_, _, err := s.ListConversations(ctx, ConversationFilter{Cursor: cursor})
			if !errors.Is(err, ErrInvalidCursor) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ListConversations(cursor %q) = %v, want ErrInvalidCursor", cursor, err)
			}
		}
	})
}

func TestConversationLimits(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "500")
		base := mustUTC(t, "2025-05-01T00:00:00Z")
		for i := range 205 {
			if err := s.UpsertConversation(ctx, newConversation(p, fmt.Sprintf("c%03d", i), "psid", base.Add(time.Duration(i)*time.Second))); err != nil {
				t.Fatal(err)
			}
		}
		for limit, want := range map[int]int{0: 50, -1: 50, 10: 10, 500: 200} {
			list, next, err := s.ListConversations(ctx, ConversationFilter{Limit: limit})
			if err != nil || len(list) != want || next == "" {
				t.Errorf("ListConversations(limit %d) = %d rows, cursor %q, %v; want %d and a cursor", limit, len(list), next, err, want)
			}
		}
	})
}

// Issue 6, defect 4: saves are ordered by the workflow's revision, not by
// the wall clock of the activity that wrote them: a retried older save
// (written later) never overwrites a newer state.
func TestConversationSavesFollowTheWorkflowsRevision(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "310")
		start := mustUTC(t, "2025-04-01T09:00:00Z")
		newer := newConversation(p, "c-rev", "psid-rev", start)
		newer.State, newer.Revision, newer.UpdatedAt = "closed", 7, start.Add(time.Minute)
		if err := s.UpsertConversation(ctx, newer); err != nil {
			t.Fatal(err)
		}
		// Revision 6 (active), retried by Temporal and written later.
		older := newConversation(p, "c-rev", "psid-rev", start)
		older.State, older.AgentID, older.Revision, older.UpdatedAt = "active", "agent-1", 6, start.Add(time.Hour)
		if err := s.UpsertConversation(ctx, older); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetConversation(ctx, "c-rev")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "closed" || got.Revision != 7 {
			t.Errorf("after a late save of revision 6: %s (revision %d), want closed (7)", got.State, got.Revision)
		}
		// The same revision again (an activity retry) is harmless.
		if err := s.UpsertConversation(ctx, newer); err != nil {
			t.Fatal(err)
		}
		newest := newer
		newest.MessageCount, newest.Revision = 3, 8
		if err := s.UpsertConversation(ctx, newest); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetConversation(ctx, "c-rev"); got.MessageCount != 3 {
			t.Errorf("revision 8 not applied: %+v", got)
		}
	})
}

// The thread's owner is saved with the conversation, and cleared when
// Parley has the thread again; so is a pending request for the thread.
func TestConversationKeepsWhoControlsTheThread(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		p := conversationFixture(t, s, "311")
		start := mustUTC(t, "2025-04-01T09:00:00Z")
		c := newConversation(p, "c-thread", "psid-thread", start)
		since := start.Add(time.Minute)
		c.ThreadOwner, c.ThreadOwnerSince, c.Revision = "263902037430900", &since, 1
		if err := s.UpsertConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetConversation(ctx, "c-thread")
		if err != nil {
			t.Fatal(err)
		}
		if got.ThreadOwner != "263902037430900" || got.ThreadOwnerSince == nil || !got.ThreadOwnerSince.Equal(since) {
			t.Errorf("thread owner %q since %v, want the Page Inbox since %v", got.ThreadOwner, got.ThreadOwnerSince, since)
		}
		c.ThreadOwner, c.ThreadOwnerSince, c.ThreadRequestedBy, c.Revision = "", nil, "263902037430900", 2
		if err := s.UpsertConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetConversation(ctx, "c-thread"); got.ThreadOwner != "" || got.ThreadOwnerSince != nil || got.ThreadRequestedBy != "263902037430900" {
			t.Errorf("after Parley took the thread back and the inbox asked for it: owner %q since %v, requested by %q; want no owner, asked by the inbox",
				got.ThreadOwner, got.ThreadOwnerSince, got.ThreadRequestedBy)
		}
		// The agent answers (the thread changes hands): no request pending.
		c.ThreadOwner, c.ThreadOwnerSince, c.ThreadRequestedBy, c.Revision = "263902037430900", &since, "", 3
		if err := s.UpsertConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetConversation(ctx, "c-thread"); got.ThreadRequestedBy != "" {
			t.Errorf("after the thread changed hands: requested by %q, want none", got.ThreadRequestedBy)
		}
	})
}
