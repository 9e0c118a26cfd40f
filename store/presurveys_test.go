package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPreSurveySettingsAndAnswers(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := mustCreateAccount(t, s, "acme")
		p := mustCreatePage(t, s, a.ID, "100")
		w, err := s.CreateWorkstream(ctx, newWorkstream("Support", p.ID))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PreSurveyOf(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("PreSurveyOf(unknown workstream) = %v, want ErrNotFound", err)
		}
		def, err := s.PreSurveyForPage(ctx, p.ID)
		if err != nil || def.Enabled || len(def.Questions) != 0 {
			t.Fatalf("before saving: %+v, %v; want the disabled default", def, err)
		}
		ps := DefaultPreSurvey(w.ID)
		ps.Enabled = true
		ps.Questions = []PreSurveyQuestion{{ID: "topic", Text: "What about?", Choices: []string{"Billing", " Orders "}, Required: true},
			{ID: "order", Text: "Your order number?"}}
		if _, err := s.SavePreSurvey(ctx, ps); err != nil {
			t.Fatal(err)
		}
		got, err := s.PreSurveyForPage(ctx, p.ID)
		if err != nil || !got.Enabled || len(got.Questions) != 2 || got.Questions[0].Choices[1] != "Orders" || !got.Questions[0].Required {
			t.Errorf("after saving: %+v, %v", got, err)
		}
		for _, c := range []struct {
			field  string
			change func(*PreSurvey)
		}{
			{"questions", func(p *PreSurvey) { p.Questions = make([]PreSurveyQuestion, 11) }},
			{"questions[1].id", func(p *PreSurvey) { p.Questions[1].ID = "topic" }},
			{"questions[1].id", func(p *PreSurvey) { p.Questions[1].ID = "Bad Id" }},
			{"questions[0].choices", func(p *PreSurvey) { p.Questions[0].Choices = strings.Split("a b c d e f g h i j k l m n", " ") }},
			{"questions[0].choices[1]", func(p *PreSurvey) { p.Questions[0].Choices[1] = strings.Repeat("x", 21) }},
			{"timeout", func(p *PreSurvey) { p.Timeout = 25 * time.Hour }},
		} {
			bad := ps
			bad.Questions = []PreSurveyQuestion{{ID: "topic", Text: "What about?", Choices: []string{"Billing", "Orders"}}, {ID: "order", Text: "Number?"}}
			c.change(&bad)
			var fe *FieldError
			if _, err := s.SavePreSurvey(ctx, bad); !errors.As(err, &fe) || fe.Field != c.field {
				t.Errorf("invalid %s: %v, want a field error naming it", c.field, err)
			}
		}

		if _, err := s.PreSurveyResultOf(ctx, "c1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("no survey yet: %v, want ErrNotFound", err)
		}
		r := PreSurveyResult{ConversationID: "c1", WorkstreamID: w.ID, Status: PreSurveyAsking, UpdatedAt: time.Unix(1000, 0).UTC()}
		if err := s.SavePreSurveyResult(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Status, r.TimedOut = PreSurveyTimedOut, true
		r.Answers = []PreSurveyAnswer{{QuestionID: "topic", Question: "What about?", Answer: "Billing"}}
		if err := s.SavePreSurveyResult(ctx, r); err != nil {
			t.Fatal(err)
		}
		back, err := s.PreSurveyResultOf(ctx, "c1")
		if err != nil || back.Status != PreSurveyTimedOut || !back.TimedOut || len(back.Answers) != 1 || back.Answers[0].Answer != "Billing" {
			t.Errorf("saved result: %+v, %v", back, err)
		}
	})
}
