package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"parley/store"
)

// FlagPageName flags a page Meta refused to send for.
const FlagPageName = "FlagPage"

// FlagPageInput is a Send API refusal caused by the page itself (10/1893063
// restricted, 368 policy block, 200/2018028 app not live).
type FlagPageInput struct {
	PageRef string `json:"page_ref"`
	Code    int    `json:"code"`
	Subcode int    `json:"subcode"`
	Class   string `json:"class"`
	Reason  string `json:"reason"`
}

// Pages are the activities about pages.
type Pages struct {
	Store *store.Store
	Log   *slog.Logger
}

// FlagPage records the refusal on the page, so that admins see it (the
// page's provisioning_state becomes flagged) before more replies fail.
func (a *Pages) FlagPage(ctx context.Context, in FlagPageInput) error {
	err := a.Store.FlagPage(ctx, in.PageRef, store.PageFlag{Code: in.Code, Subcode: in.Subcode, Class: in.Class, Reason: in.Reason})
	log := a.Log
	if log == nil {
		log = slog.Default()
	}
	if errors.Is(err, store.ErrNotFound) {
		log.WarnContext(ctx, "page deleted before it could be flagged", "page", in.PageRef, "code", in.Code)
		return nil
	}
	if err != nil {
		return fmt.Errorf("flag page %s: %w", in.PageRef, err)
	}
	log.ErrorContext(ctx, "page flagged: Meta refused to send for it", "page", in.PageRef, "code", in.Code, "subcode", in.Subcode, "class", in.Class)
	return nil
}
