package activities

import (
	"context"
	"errors"
	"log/slog"

	"parley/store"
)

// Placeholder written by the workflow side; the pages helper (C) owns this
// file and replaces the body.

// FlagPageName flags a page Meta refused to send for.
const FlagPageName = "FlagPage"

// FlagPageInput is a Send API refusal caused by the page itself.
type FlagPageInput struct {
	PageRef string `json:"page_ref"`
	Code    int    `json:"code"`
	Subcode int    `json:"subcode"`
	Class   string `json:"class"`
	Reason  string `json:"reason"`
}

// Pages are the page activities.
type Pages struct {
	Store *store.Store
	Log   *slog.Logger
}

// FlagPage records the refusal on the page.
func (a *Pages) FlagPage(ctx context.Context, in FlagPageInput) error {
	return errors.New("not implemented yet")
}
