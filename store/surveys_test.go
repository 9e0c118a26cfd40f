package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
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

func TestLinkPostSurveySettings(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := mustCreateAccount(t, s, "acme")
		p := mustCreatePage(t, s, a.ID, "100")
		w, err := s.CreateWorkstream(ctx, newWorkstream("Support", p.ID))
		if err != nil {
			t.Fatal(err)
		}
		wantFieldError := func(name string, ps PostSurvey, field, inMessage string) {
			t.Helper()
			var fe *FieldError
			_, err := s.SavePostSurvey(ctx, ps)
			if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrInvalid) || !strings.Contains(fe.Message, inMessage) {
				t.Errorf("%s: %v, want a field error on %s saying %q", name, err, field, inMessage)
			}
		}
		ps := DefaultPostSurvey(w.ID)
		ps.Mode = "email"
		wantFieldError("an unknown mode", ps, "mode", `"link"`)

		ps = DefaultPostSurvey(w.ID)
		ps.Mode = SurveyModeLink
		wantFieldError("a link survey without {link}", ps, "question", "{link}")
		ps.Question = "How did we do? Tell us here: {link}"
		ps.Timeout = MaxLinkSurveyTimeout + time.Minute
		wantFieldError("a link valid over 7 days", ps, "response_timeout", "168h")
		ps.Timeout = 1
		wantFieldError("a link valid under a minute", ps, "response_timeout", "1m")

		in := DefaultPostSurvey(w.ID)
		in.Question = "Rate us: {link}"
		wantFieldError("an in-chat survey with {link}", in, "question", "{link}")
		in.Question, in.Timeout = "Rate us 1 to 5", 72*time.Hour
		wantFieldError("an in-chat survey past 24 h", in, "response_timeout", "Meta")

		ps.Enabled, ps.Timeout, ps.OnAutoClose = true, 72*time.Hour, true
		if _, err := s.SavePostSurvey(ctx, ps); err != nil {
			t.Fatal(err)
		}
		got, err := s.PostSurveyOf(ctx, w.ID)
		if err != nil || got.Mode != SurveyModeLink || got.Timeout != 72*time.Hour || !got.OnAutoClose || got.Question != ps.Question {
			t.Errorf("saved link survey = %+v, %v", got, err)
		}
		ps.OnAutoClose = false
		if _, err := s.SavePostSurvey(ctx, ps); err != nil {
			t.Fatal(err)
		}
		if got, err := s.PostSurveyForPage(ctx, p.ID); err != nil || got.OnAutoClose {
			t.Errorf("on_auto_close turned off = %+v, %v", got, err)
		}
	})
}

func TestSurveyTokenAnswers(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		now := s.clock()
		sent, expires := now, now.Add(time.Hour)
		v := Survey{ConversationID: "c1", WorkstreamID: "w1", QueueID: "q1", AgentID: "a1", Mode: SurveyModeLink, Status: SurveySent,
			SentAt: &sent, Token: "tok-secret-1", ExpiresAt: &expires}
		if err := s.SaveSurvey(ctx, v); err != nil {
			t.Fatal(err)
		}
		// Only the token's SHA-256 is kept.
		var hash string
		if err := get(ctx, s.db, &hash, `SELECT token_hash FROM surveys WHERE conversation_id = ?`, "c1"); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte("tok-secret-1"))
		if hash != hex.EncodeToString(sum[:]) {
			t.Errorf("token_hash = %q, want the token's hex SHA-256", hash)
		}
		got, err := s.SurveyByToken(ctx, "tok-secret-1")
		if err != nil || got.ConversationID != "c1" || got.Token != "" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.Status != SurveySent {
			t.Errorf("SurveyByToken = %+v, %v", got, err)
		}
		if g, err := s.GetSurvey(ctx, "c1"); err != nil || g.Token != "" || g.ExpiresAt == nil || !g.ExpiresAt.Equal(expires) {
			t.Errorf("GetSurvey = %+v, %v; want ExpiresAt and no token", g, err)
		}
		// A retried save without the token keeps it and the expiry.
		retry := v
		retry.Token, retry.ExpiresAt = "", nil
		if err := s.SaveSurvey(ctx, retry); err != nil {
			t.Fatal(err)
		}
		if got, err := s.SurveyByToken(ctx, "tok-secret-1"); err != nil || got.ExpiresAt == nil {
			t.Errorf("after a save without the token: %+v, %v", got, err)
		}
		// A survey without a token is not found by the empty one.
		if err := s.SaveSurvey(ctx, Survey{ConversationID: "c0", Mode: SurveyModeInChat, Status: SurveySent, SentAt: &sent}); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{"", "tok-nope"} {
			if _, err := s.SurveyByToken(ctx, tok); !errors.Is(err, ErrNotFound) {
				t.Errorf("SurveyByToken(%q) = %v, want ErrNotFound", tok, err)
			}
			if _, err := s.AnswerSurveyByToken(ctx, tok, 3, ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("AnswerSurveyByToken(%q) = %v, want ErrNotFound", tok, err)
			}
		}
		var fe *FieldError
		for _, r := range []int{0, 6, -1} {
			if _, err := s.AnswerSurveyByToken(ctx, "tok-secret-1", r, ""); !errors.As(err, &fe) || fe.Field != "rating" {
				t.Errorf("rating %d: %v, want a field error on rating", r, err)
			}
		}
		if _, err := s.AnswerSurveyByToken(ctx, "tok-secret-1", 4, strings.Repeat("é", MaxSurveyComment+1)); !errors.As(err, &fe) || fe.Field != "comment" {
			t.Errorf("a long comment: %v, want a field error on comment", err)
		}

		a, err := s.AnswerSurveyByToken(ctx, "tok-secret-1", 4, "  "+strings.Repeat("é", MaxSurveyComment-1)+"!  ")
		if err != nil || a.Status != SurveyAnswered || a.Rating != 4 || a.AnsweredAt == nil || a.Comment != strings.Repeat("é", MaxSurveyComment-1)+"!" {
			t.Fatalf("answer = %+v, %v", a, err)
		}
		if _, err := s.AnswerSurveyByToken(ctx, "tok-secret-1", 5, ""); !errors.Is(err, ErrSurveyAnswered) || !errors.Is(err, ErrConflict) {
			t.Errorf("a 2nd answer = %v, want ErrSurveyAnswered (ErrConflict)", err)
		}
		// A late save by the workflow does not undo the answer.
		if err := s.SaveSurvey(ctx, v); err != nil {
			t.Fatal(err)
		}
		if g, err := s.GetSurvey(ctx, "c1"); err != nil || g.Status != SurveyAnswered || g.Rating != 4 {
			t.Errorf("after a late save: %+v, %v; want still answered", g, err)
		}

		// Expired.
		e := Survey{ConversationID: "c2", Mode: SurveyModeLink, Status: SurveySent, SentAt: &sent, Token: "tok-secret-2", ExpiresAt: &expires}
		if err := s.SaveSurvey(ctx, e); err != nil {
			t.Fatal(err)
		}
		// Not sent: not found.
		if err := s.SaveSurvey(ctx, Survey{ConversationID: "c3", Mode: SurveyModeLink, Status: SurveyNotSent, Token: "tok-secret-3"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AnswerSurveyByToken(ctx, "tok-secret-3", 4, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("answering a survey not sent = %v, want ErrNotFound", err)
		}
		// Another survey may not take a token in use.
		if err := s.SaveSurvey(ctx, Survey{ConversationID: "c4", Mode: SurveyModeLink, Status: SurveySent, Token: "tok-secret-2"}); !errors.Is(err, ErrConflict) {
			t.Errorf("a token in use = %v, want ErrConflict", err)
		}
		clock.Advance(time.Hour)
		if _, err := s.AnswerSurveyByToken(ctx, "tok-secret-2", 5, ""); !errors.Is(err, ErrSurveyExpired) {
			t.Errorf("answering an expired link = %v, want ErrSurveyExpired", err)
		}
		if g, err := s.GetSurvey(ctx, "c2"); err != nil || g.Status != SurveySent || g.Rating != 0 {
			t.Errorf("expired survey = %+v, %v; want unchanged", g, err)
		}
	})
}

func TestCSATCountsExpiredLinkSurveysAsTimedOut(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		clock := newFakeClock(s)
		now := s.clock()
		sent, soon, later := now, now.Add(time.Hour), now.Add(48*time.Hour)
		for _, v := range []Survey{
			{ConversationID: "c1", WorkstreamID: "w1", Mode: SurveyModeLink, Status: SurveySent, SentAt: &sent, Token: "t1", ExpiresAt: &soon},
			{ConversationID: "c2", WorkstreamID: "w1", Mode: SurveyModeLink, Status: SurveySent, SentAt: &sent, Token: "t2", ExpiresAt: &soon},
			{ConversationID: "c3", WorkstreamID: "w1", Mode: SurveyModeLink, Status: SurveySent, SentAt: &sent, Token: "t3", ExpiresAt: &later},
			{ConversationID: "c4", WorkstreamID: "w1", Mode: SurveyModeInChat, Status: SurveySent, SentAt: &sent},
		} {
			v.CreatedAt = now
			if err := s.SaveSurvey(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.AnswerSurveyByToken(ctx, "t2", 4, "ok"); err != nil {
			t.Fatal(err)
		}
		f := CSATFilter{From: now.Add(-time.Hour), To: now.Add(time.Hour), WorkstreamID: "w1"}
		r, err := s.CSAT(ctx, f)
		if err != nil || r.Sent != 4 || r.Answered != 1 || r.TimedOut != 0 || r.Distribution["4"] != 1 {
			t.Errorf("CSAT before the links expire = %+v, %v", r, err)
		}
		clock.Advance(2 * time.Hour)
		r, err = s.CSAT(ctx, f)
		if err != nil || r.Sent != 4 || r.Answered != 1 || r.TimedOut != 1 || r.Distribution["4"] != 1 || r.Average == nil || *r.Average != 4 ||
			r.ResponseRate != 0.25 {
			t.Errorf("CSAT after c1's link expired = %+v, %v; want c1 timed out, c2 answered, c3 and c4 waiting", r, err)
		}
	})
}
