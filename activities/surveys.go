package activities

import (
	"context"
	"fmt"
	"time"

	"parley/store"
)

// RecordSurveyName records a conversation's post-conversation survey.
const RecordSurveyName = "RecordSurvey"

// PostSurveySettings is the workstream's post-conversation survey, as the
// workflow applies it (issue 9); nil in Settings: no survey.
type PostSurveySettings struct {
	WorkstreamID  string        `json:"workstream_id,omitempty"`
	Mode          string        `json:"mode"`
	Timeout       time.Duration `json:"timeout"`
	Question      string        `json:"question"`
	CommentPrompt string        `json:"comment_prompt,omitempty"`
	Thanks        string        `json:"thanks,omitempty"`
}

// PostSurveySettingsOf is p as the workflow applies it: nil when off.
func PostSurveySettingsOf(p store.PostSurvey) *PostSurveySettings {
	if !p.Enabled {
		return nil
	}
	return &PostSurveySettings{WorkstreamID: p.WorkstreamID, Mode: p.Mode, Timeout: p.Timeout,
		Question: p.Question, CommentPrompt: p.CommentPrompt, Thanks: p.Thanks}
}

// Surveys records post-conversation surveys.
type Surveys struct {
	Store *store.Store
}

// RecordSurvey saves the survey's row as the workflow sees it now (the
// whole row, so a retry writes the same).
func (a *Surveys) RecordSurvey(ctx context.Context, s store.Survey) error {
	if err := a.Store.SaveSurvey(ctx, s); err != nil {
		return fmt.Errorf("record survey of %s: %w", s.ConversationID, err)
	}
	return nil
}

// withPostSurvey adds the page's post-survey to s.
func withPostSurvey(ctx context.Context, st *store.Store, pageRef string, s Settings) (Settings, error) {
	p, err := st.PostSurveyForPage(ctx, pageRef)
	if err != nil {
		return Settings{}, fmt.Errorf("post-survey of page %s: %w", pageRef, err)
	}
	s.PostSurvey = PostSurveySettingsOf(p)
	return s, nil
}
