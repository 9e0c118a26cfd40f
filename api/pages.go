package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"parley/activities"
	"parley/apierror"
	"parley/messenger"
	"parley/store"
	"parley/workflows"
)

// pageJSON is a page as the API shows it: never the access token.
type pageJSON struct {
	ID                   string     `json:"id"`
	AccountID            string     `json:"account_id"`
	Name                 string     `json:"name"`
	PageID               string     `json:"page_id"`
	AccessTokenHint      string     `json:"access_token_hint"`
	CallbackURL          string     `json:"callback_url,omitempty"`
	VerifyToken          string     `json:"verify_token,omitempty"`
	DuplicateOfAccountID string     `json:"duplicate_of_account_id,omitempty"`
	ProvisioningState    string     `json:"provisioning_state"`
	ProvisioningReason   string     `json:"provisioning_reason,omitempty"`
	WebhookVerifiedAt    *time.Time `json:"webhook_verified_at,omitempty"`
	TokenCheckedAt       *time.Time `json:"token_checked_at,omitempty"`
	TokenExpiresAt       *time.Time `json:"token_expires_at,omitempty"`
	SubscribedAt         *time.Time `json:"subscribed_at,omitempty"`
	LastWebhookAt        *time.Time `json:"last_webhook_at,omitempty"`
	// ThreadLookup: Parley can look for a message on Meta's side after an
	// unclear send (the token has pages_read_engagement and
	// pages_manage_metadata); without it, it waits longer for the echo.
	ThreadLookup       *bool         `json:"thread_lookup,omitempty"`
	ThreadLookupReason string        `json:"thread_lookup_reason,omitempty"`
	Flag               *pageFlagJSON `json:"flag,omitempty"`
	// HealthCheckedAt: the periodic health check's last look at the page;
	// SilenceThreshold: its silence threshold ("" = the default).
	HealthCheckedAt  *time.Time `json:"health_checked_at,omitempty"`
	SilenceThreshold string     `json:"silence_threshold,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// pageFlagJSON is Meta's last refusal caused by the page itself.
type pageFlagJSON struct {
	Code    int       `json:"code"`
	Subcode int       `json:"subcode,omitempty"`
	Class   string    `json:"class"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func (s *Server) toPageJSON(p store.Page) pageJSON {
	state, reason := p.Provisioning()
	out := pageJSON{
		ID: p.ID, AccountID: p.AccountID, Name: p.Name, PageID: p.PageID, AccessTokenHint: p.TokenHint,
		VerifyToken: p.VerifyToken, DuplicateOfAccountID: p.DuplicateOfAccountID,
		ProvisioningState: state, ProvisioningReason: reason,
		WebhookVerifiedAt: p.WebhookVerifiedAt, TokenCheckedAt: p.TokenCheckedAt, TokenExpiresAt: p.TokenExpiresAt,
		SubscribedAt: p.SubscribedAt, LastWebhookAt: p.LastWebhookAt, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if p.CallbackKey != "" {
		out.CallbackURL = s.opts.PublicURL + "/webhooks/facebook/" + p.CallbackKey
	}
	if p.WebhookVerifiedAt == nil {
		out.WebhookVerifiedAt = p.AccountWebhookVerifiedAt
	}
	out.ThreadLookup = p.ThreadLookup
	switch {
	case p.ThreadLookup == nil:
	case *p.ThreadLookup:
		out.ThreadLookupReason = "after a send with no clear answer, Parley looks for the message on Meta's side before sending it again"
	default:
		out.ThreadLookupReason = "the page token lacks pages_read_engagement or pages_manage_metadata: after a send with no clear answer, Parley cannot look on Meta's side and waits longer for Meta's echo (PARLEY_BLIND_ECHO_WAIT) before sending again"
	}
	out.HealthCheckedAt = p.HealthCheckedAt
	if p.SilenceAfter > 0 {
		out.SilenceThreshold = p.SilenceAfter.String()
	}
	if f := p.Flag; f != nil {
		out.Flag = &pageFlagJSON{Code: f.Code, Subcode: f.Subcode, Class: f.Class, Reason: f.Reason, At: f.At}
	}
	return out
}

type createPageRequest struct {
	Name        string `json:"name"`
	PageID      string `json:"page_id"`
	AccessToken string `json:"access_token"`
}

func checkAccessToken(v string) error {
	if err := required("access_token", v, 4096); err != nil {
		return err
	}
	if len(v) < 16 {
		return apierror.InvalidField("access_token", "is too short to be a page access token")
	}
	return nil
}

func (s *Server) createPage(c echo.Context) error {
	ctx := c.Request().Context()
	var req createPageRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("name", req.Name, 200); err != nil {
		return err
	}
	if err := digits("page_id", req.PageID); err != nil {
		return err
	}
	if err := checkAccessToken(req.AccessToken); err != nil {
		return err
	}
	p, err := s.opts.Store.CreatePage(ctx, store.NewPage{AccountID: c.Param("id"), Name: req.Name, PageID: req.PageID, AccessToken: req.AccessToken})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return apierror.New(http.StatusConflict, "conflict", "page %s is already configured in this account", req.PageID)
		}
		return storeError(err, "account", c.Param("id"))
	}
	s.log.InfoContext(ctx, "page created", "page", p.ID, "facebook_page_id", p.PageID, "account", p.AccountID, "duplicate", p.DuplicateOfAccountID != "")
	p, err = s.checkPage(ctx, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, s.toPageJSON(p))
}

func (s *Server) listAccountPages(c echo.Context) error {
	if _, err := s.opts.Store.GetAccount(c.Request().Context(), c.Param("id")); err != nil {
		return storeError(err, "account", c.Param("id"))
	}
	return s.pageList(c, c.Param("id"))
}

func (s *Server) listPages(c echo.Context) error { return s.pageList(c, "") }

func (s *Server) pageList(c echo.Context, accountID string) error {
	list, err := s.opts.Store.ListPages(c.Request().Context(), accountID)
	if err != nil {
		return storeError(err, "pages", accountID)
	}
	out := make([]pageJSON, 0, len(list))
	for _, p := range list {
		out = append(out, s.toPageJSON(p))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getPage(c echo.Context) error {
	p, err := s.opts.Store.GetPage(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	return c.JSON(http.StatusOK, s.toPageJSON(p))
}

// deletedPageJSON says what deleting a page did.
type deletedPageJSON struct {
	ID                  string   `json:"id"`
	ClosedConversations int      `json:"closed_conversations"`
	Unsubscribed        bool     `json:"unsubscribed"`
	Warnings            []string `json:"warnings,omitempty"`
}

// Why a deleted page's conversations closed.
const (
	PageDeletedReason    = "the page was deleted from Parley"
	AccountDeletedReason = "the page's account was deleted from Parley"
)

// closeRounds bounds the sweeps over a page's live conversations: one may
// change state (say waiting to active) behind a sweep's back.
const closeRounds = 3

// deletePage closes the page's live conversations, unsubscribes the app
// from the page at Meta, deletes the page (events still arriving for it are
// acknowledged and dropped), then closes any conversation that started
// meanwhile. If Temporal cannot close them, the page is not deleted (503):
// deleting it anyway would leave them running and their replies failing
// slowly.
func (s *Server) deletePage(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.opts.Store.GetPage(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	closed := map[string]bool{}
	if err := s.closePageConversations(ctx, p.ID, PageDeletedReason, closed); err != nil {
		s.log.ErrorContext(ctx, "page not deleted: its conversations could not be closed", "page", p.ID, "closed_conversations", len(closed), "err", err)
		return &apierror.Error{Status: http.StatusServiceUnavailable, Code: "temporal_unavailable",
			Message: fmt.Sprintf("the page was not deleted: its live conversations could not all be closed (%d closed); retry later", len(closed)), Err: err}
	}
	out := deletedPageJSON{ID: p.ID}
	if p.CallbackKey != "" { // a duplicate never subscribed the app
		if err := s.unsubscribe(ctx, p); err != nil {
			s.log.WarnContext(ctx, "page deleted, but the app could not be unsubscribed at Meta", "page", p.ID, "err", err)
			out.Warnings = append(out.Warnings, unsubscribeWarning(err))
		} else {
			out.Unsubscribed = true
		}
	}
	if err := s.opts.Store.DeletePage(ctx, p.ID); err != nil {
		return storeError(err, "page", p.ID)
	}
	// A customer may have written between the first sweep and the delete.
	if err := s.closePageConversations(ctx, p.ID, PageDeletedReason, closed); err != nil {
		s.log.ErrorContext(ctx, "conversation of a deleted page not closed", "page", p.ID, "err", err)
		out.Warnings = append(out.Warnings, "a conversation that started while the page was being deleted could not be closed (Temporal unavailable); it closes at its auto-close deadline, and its replies fail")
	}
	out.ClosedConversations = len(closed)
	s.log.InfoContext(ctx, "page deleted", "page", p.ID, "closed_conversations", out.ClosedConversations, "unsubscribed", out.Unsubscribed)
	return c.JSON(http.StatusOK, out)
}

// unsubscribeWarning tells the admin why Meta still sends the page's
// events, and what to do.
func unsubscribeWarning(err error) string {
	const after = "; its events are acknowledged and dropped until you remove the app from the page in Meta's settings (the page's Business integrations)"
	if ge, ok := messenger.AsGraphError(err); ok && ge.Class() == messenger.ClassTokenInvalid {
		return fmt.Sprintf("the page token is no longer valid (Meta code %d, subcode %d), so Parley could not unsubscribe the app from the page", ge.Code, ge.Subcode) + after
	}
	return "Meta did not unsubscribe the app from the page (" + err.Error() + ")" + after
}

func (s *Server) unsubscribe(ctx context.Context, p store.Page) error {
	secret, err := s.opts.Store.AccountAppSecret(ctx, p.AccountID)
	if err != nil {
		return fmt.Errorf("app secret: %w", err)
	}
	token, err := s.opts.Store.PageAccessToken(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("page token: %w", err)
	}
	gctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return s.opts.Graph.UnsubscribeApp(gctx, messenger.PageAuth{PageID: p.PageID, AccessToken: token, AppSecret: secret})
}

// closePageConversations closes with the reason every live conversation of
// a page not yet in closed, and adds it there. It stops at the first one it
// cannot close.
func (s *Server) closePageConversations(ctx context.Context, pageRef, reason string, closed map[string]bool) error {
	healthy := false
	for range closeRounds {
		found := false
		for _, state := range []string{workflows.StateOpen, workflows.StateActive, workflows.StateWaiting, workflows.StateWrapUp} {
			cursor := ""
			for {
				list, next, err := s.opts.Store.ListConversations(ctx, store.ConversationFilter{PageRef: pageRef, State: state, Limit: 200, Cursor: cursor})
				if err != nil {
					return fmt.Errorf("list the page's %s conversations: %w", state, err)
				}
				for _, cv := range list {
					if closed[cv.ID] {
						continue
					}
					found = true
					if !healthy {
						// Fail fast when Temporal is down, rather than wait
						// out an update's timeout.
						hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
						_, err := s.opts.Temporal.CheckHealth(hctx, &client.CheckHealthRequest{})
						cancel()
						if err != nil {
							return fmt.Errorf("temporal: %w", err)
						}
						healthy = true
					}
					if err := s.closeForDeletedPage(ctx, cv, reason); err != nil {
						return fmt.Errorf("close conversation %s: %w", cv.ID, err)
					}
					closed[cv.ID] = true
				}
				if next == "" {
					break
				}
				cursor = next
			}
		}
		if !found {
			return nil
		}
	}
	return nil
}

func (s *Server) closeForDeletedPage(ctx context.Context, cv store.Conversation, reason string) error {
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := s.opts.Temporal.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID: cv.WorkflowID, UpdateName: workflows.UpdateClose, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.ActionRequest{ConversationID: cv.ID, Reason: reason}},
	})
	if err == nil {
		err = h.Get(uctx, nil)
	}
	var nf *serviceerror.NotFound
	if _, refused := workflows.IsRefused(err); refused || errors.As(err, &nf) {
		return nil // already closed, or its workflow is gone
	}
	return err
}

type rotateTokenRequest struct {
	AccessToken string `json:"access_token"`
}

func (s *Server) rotatePageToken(c echo.Context) error {
	ctx := c.Request().Context()
	var req rotateTokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := checkAccessToken(req.AccessToken); err != nil {
		return err
	}
	p, err := s.opts.Store.RotatePageToken(ctx, c.Param("id"), req.AccessToken)
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	s.log.InfoContext(ctx, "page token rotated", "page", p.ID, "hint", p.TokenHint)
	p, err = s.checkPage(ctx, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toPageJSON(p))
}

func (s *Server) checkPageHandler(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.opts.Store.GetPage(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	p, err = s.checkPage(ctx, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.toPageJSON(p))
}

// checkPage asks Meta whether the page token is valid (debug_token) and, if
// so, subscribes the app to the page's messaging webhooks. What Meta answers
// is recorded on the page; only our own failures are returned.
func (s *Server) checkPage(ctx context.Context, p store.Page) (store.Page, error) {
	if p.CallbackKey == "" {
		return p, nil // a duplicate: another account owns this Facebook page
	}
	acct, err := s.opts.Store.GetAccount(ctx, p.AccountID)
	if err != nil {
		return p, storeError(err, "account", p.AccountID)
	}
	secret, err := s.opts.Store.AccountAppSecret(ctx, p.AccountID)
	if err != nil {
		return p, storeError(err, "account", p.AccountID)
	}
	token, err := s.opts.Store.PageAccessToken(ctx, p.ID)
	if err != nil {
		return p, storeError(err, "page", p.ID)
	}
	gctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	info, err := s.opts.Graph.DebugToken(gctx, acct.AppID, secret, token)
	if err != nil {
		return s.pageError(ctx, p, "could not check the page token with the Graph API: "+err.Error())
	}
	check := activities.TokenCheckOf(info, acct.AppID, p.PageID, s.opts.Now().UTC())
	p, err = s.opts.Store.RecordTokenCheck(ctx, p.ID, check)
	if err != nil {
		return p, storeError(err, "page", p.ID)
	}
	if !check.Valid {
		s.log.WarnContext(ctx, "page token invalid", "page", p.ID, "facebook_page_id", p.PageID, "reason", check.Error)
		return p, nil
	}
	auth := messenger.PageAuth{PageID: p.PageID, AccessToken: token, AppSecret: secret}
	if err := s.opts.Graph.SubscribeApp(gctx, auth, messenger.DefaultSubscribedFields); err != nil {
		return s.pageError(ctx, p, "could not subscribe the app to the page's webhooks: "+err.Error())
	}
	if err := s.opts.Store.RecordSubscribed(ctx, p.ID, s.opts.Now().UTC()); err != nil {
		return p, storeError(err, "page", p.ID)
	}
	if err := s.opts.Store.SetPageError(ctx, p.ID, ""); err != nil {
		return p, storeError(err, "page", p.ID)
	}
	p, err = s.opts.Store.GetPage(ctx, p.ID)
	if err != nil {
		return p, storeError(err, "page", p.ID)
	}
	return p, nil
}

func (s *Server) pageError(ctx context.Context, p store.Page, msg string) (store.Page, error) {
	s.log.WarnContext(ctx, "page provisioning problem", "page", p.ID, "facebook_page_id", p.PageID, "problem", msg)
	if err := s.opts.Store.SetPageError(ctx, p.ID, msg); err != nil {
		return p, storeError(err, "page", p.ID)
	}
	p, err := s.opts.Store.GetPage(ctx, p.ID)
	if err != nil {
		return p, storeError(err, "page", p.ID)
	}
	return p, nil
}
