package activities

import (
	"context"
	"fmt"
	"strings"
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
	// OnAutoClose: a conversation that auto-closes after an agent took it
	// is surveyed too.
	OnAutoClose bool `json:"on_auto_close,omitempty"`
	// LinkBase starts a link survey's address: LinkBase + token.
	LinkBase string `json:"link_base,omitempty"`
}

// PostSurveySettingsOf is p as the workflow applies it: nil when off.
func PostSurveySettingsOf(p store.PostSurvey, publicURL string) *PostSurveySettings {
	if !p.Enabled {
		return nil
	}
	s := &PostSurveySettings{WorkstreamID: p.WorkstreamID, Mode: p.Mode, Timeout: p.Timeout,
		Question: p.Question, CommentPrompt: p.CommentPrompt, Thanks: p.Thanks, OnAutoClose: p.OnAutoClose}
	if p.Mode == store.SurveyModeLink {
		s.LinkBase = strings.TrimRight(publicURL, "/") + SurveyPath
	}
	return s
}

// SurveyPath is where the API serves link surveys: SurveyPath + token.
const SurveyPath = "/survey/"

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
func withPostSurvey(ctx context.Context, st *store.Store, pageRef, publicURL string, s Settings) (Settings, error) {
	p, err := st.PostSurveyForPage(ctx, pageRef)
	if err != nil {
		return Settings{}, fmt.Errorf("post-survey of page %s: %w", pageRef, err)
	}
	s.PostSurvey = PostSurveySettingsOf(p, publicURL)
	return s, nil
}
