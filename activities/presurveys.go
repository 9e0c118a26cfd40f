package activities

import (
	"context"
	"fmt"
	"time"

	"parley/store"
)

// RecordPreSurveyName records a conversation's pre-conversation survey.
const RecordPreSurveyName = "RecordPreSurvey"

// PreSurveySettings is the workstream's pre-conversation survey, as the
// workflow applies it (issue 9); nil in Settings: no survey.
type PreSurveySettings struct {
	WorkstreamID    string                    `json:"workstream_id,omitempty"`
	Questions       []store.PreSurveyQuestion `json:"questions"`
	QuestionTimeout time.Duration             `json:"question_timeout"`
	Timeout         time.Duration             `json:"timeout"`
}

// PreSurveySettingsOf is p as the workflow applies it: nil when off.
func PreSurveySettingsOf(p store.PreSurvey) *PreSurveySettings {
	if !p.Enabled || len(p.Questions) == 0 {
		return nil
	}
	return &PreSurveySettings{WorkstreamID: p.WorkstreamID, Questions: p.Questions,
		QuestionTimeout: p.QuestionTimeout, Timeout: p.Timeout}
}

// RecordPreSurvey saves the survey's row as the workflow sees it now (the
// whole row, so a retry writes the same).
func (a *Surveys) RecordPreSurvey(ctx context.Context, r store.PreSurveyResult) error {
	if err := a.Store.SavePreSurveyResult(ctx, r); err != nil {
		return fmt.Errorf("record pre-survey of %s: %w", r.ConversationID, err)
	}
	return nil
}

// withPreSurvey adds the page's pre-survey to s.
func withPreSurvey(ctx context.Context, st *store.Store, pageRef string, s Settings) (Settings, error) {
	p, err := st.PreSurveyForPage(ctx, pageRef)
	if err != nil {
		return Settings{}, fmt.Errorf("pre-survey of page %s: %w", pageRef, err)
	}
	s.PreSurvey = PreSurveySettingsOf(p)
	return s, nil
}
