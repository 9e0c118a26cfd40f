package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPostSurveySettings(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := mustCreateAccount(t, s, "acme")
		p := mustCreatePage(t, s, a.ID, "100")
		w, err := s.CreateWorkstream(ctx, newWorkstream("Support", p.ID))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PostSurveyOf(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("PostSurveyOf(unknown workstream) = %v, want ErrNotFound", err)
		}
		def, err := s.PostSurveyForPage(ctx, p.ID)
		if err != nil || def.Enabled || def.Timeout != DefaultSurveyTimeout || def.Question == "" {
			t.Fatalf("before saving: %+v, %v; want the disabled default", def, err)
		}
		ps := DefaultPostSurvey(w.ID)
		ps.Enabled, ps.Timeout = true, 2*time.Hour
		if _, err := s.SavePostSurvey(ctx, ps); err != nil {
			t.Fatal(err)
		}
		got, err := s.PostSurveyForPage(ctx, p.ID)
		if err != nil || !got.Enabled || got.Timeout != 2*time.Hour || got.WorkstreamID != w.ID {
			t.Errorf("after saving: %+v, %v", got, err)
		}
		ps.Timeout = 25 * time.Hour
		var fe *FieldError
		if _, err := s.SavePostSurvey(ctx, ps); !errors.As(err, &fe) || fe.Field != "response_timeout" {
			t.Errorf("a time-out over 24 h: %v, want a field error on response_timeout", err)
		}
	})
}

func TestCSATCountsSurveysByFilter(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		day := mustUTC(t, "2026-11-02T10:00:00Z")
		sent := day.Add(time.Minute)
		rows := []Survey{
			{ConversationID: "c1", WorkstreamID: "w1", QueueID: "q1", AgentID: "a1", Mode: SurveyModeInChat, Status: SurveyAnswered, Rating: 5, Comment: "great", SentAt: &sent, AnsweredAt: &sent},
			{ConversationID: "c2", WorkstreamID: "w1", QueueID: "q1", AgentID: "a2", Mode: SurveyModeInChat, Status: SurveyAnswered, Rating: 2, SentAt: &sent, AnsweredAt: &sent},
			{ConversationID: "c3", WorkstreamID: "w1", QueueID: "q2", AgentID: "a1", Mode: SurveyModeInChat, Status: SurveyTimedOut, SentAt: &sent},
			{ConversationID: "c4", WorkstreamID: "w1", QueueID: "q1", AgentID: "a1", Mode: SurveyModeInChat, Status: SurveySent, SentAt: &sent},
			{ConversationID: "c5", WorkstreamID: "w1", QueueID: "q1", AgentID: "a1", Mode: SurveyModeInChat, Status: SurveyNotSent, NotSentReason: "window closed"},
			{ConversationID: "c6", WorkstreamID: "w1", QueueID: "q1", AgentID: "a1", Mode: SurveyModeInChat, Status: SurveyNotSent, NotSentReason: "window closed"},
			{ConversationID: "c7", WorkstreamID: "w2", QueueID: "q3", AgentID: "a3", Mode: SurveyModeInChat, Status: SurveyAnswered, Rating: 1, SentAt: &sent, AnsweredAt: &sent},
		}
		for i, r := range rows {
			r.CreatedAt = day.Add(time.Duration(i) * time.Hour)
			if err := s.SaveSurvey(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		// A retried save changes nothing; a later one updates the row but
		// keeps when it was decided.
		c4 := rows[3]
		c4.Status, c4.Rating, c4.CreatedAt = SurveyAnswered, 4, day.Add(40*24*time.Hour)
		if err := s.SaveSurvey(ctx, c4); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSurvey(ctx, "c4"); err != nil || got.Rating != 4 || !got.CreatedAt.Equal(day.Add(3*time.Hour)) || got.SentAt == nil {
			t.Errorf("c4 = %+v, %v; want rated 4, created at its first save", got, err)
		}
		r, err := s.CSAT(ctx, CSATFilter{From: day, To: day.Add(24 * time.Hour), WorkstreamID: "w1"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 4 || r.Answered != 3 || r.TimedOut != 1 || r.Average == nil || *r.Average != 11.0/3 ||
			r.Distribution["5"] != 1 || r.Distribution["2"] != 1 || r.Distribution["4"] != 1 || r.ResponseRate != 0.75 ||
			r.NotSent != 2 || len(r.NotSentBy) != 1 || r.NotSentBy[0] != (ReasonCount{Reason: "window closed", Count: 2}) {
			t.Errorf("CSAT(w1) = %+v", r)
		}
		r, err = s.CSAT(ctx, CSATFilter{From: day, To: day.Add(24 * time.Hour), AgentID: "a1", QueueID: "q1"})
		if err != nil || r.Answered != 2 || r.Sent != 2 || r.NotSent != 2 {
			t.Errorf("CSAT(a1, q1) = %+v, %v", r, err)
		}
		r, err = s.CSAT(ctx, CSATFilter{From: day.Add(6 * time.Hour), To: day.Add(7 * time.Hour)})
		if err != nil || r.Answered != 1 || r.Distribution["1"] != 1 || r.NotSent != 0 {
			t.Errorf("CSAT(7th hour only) = %+v, %v", r, err)
		}
		r, err = s.CSAT(ctx, CSATFilter{From: day.Add(-48 * time.Hour), To: day})
		if err != nil || r.Sent != 0 || r.Average != nil || r.ResponseRate != 0 || r.NotSentBy == nil {
			t.Errorf("CSAT(before) = %+v, %v; want empty", r, err)
		}
	})
}
