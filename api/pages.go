package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

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
	CreatedAt          time.Time     `json:"created_at"`
	UpdatedAt          time.Time     `json:"updated_at"`
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

// PageDeletedReason is why a deleted page's conversations closed.
const PageDeletedReason = "the page was deleted from Parley"

// deletePage unsubscribes the app from the page at Meta, deletes the page
// (events still arriving for it are acknowledged and dropped), and closes
// its live conversations, so that none runs on and no reply fails slowly.
func (s *Server) deletePage(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := s.opts.Store.GetPage(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "page", c.Param("id"))
	}
	out := deletedPageJSON{ID: p.ID}
	if p.CallbackKey != "" { // a duplicate never subscribed the app
		if err := s.unsubscribe(ctx, p); err != nil {
			s.log.WarnContext(ctx, "page deleted, but the app could not be unsubscribed at Meta", "page", p.ID, "err", err)
			out.Warnings = append(out.Warnings, "Meta did not unsubscribe the app from the page ("+err.Error()+"); its events will be acknowledged and dropped; remove the app from the page in Meta's settings")
		} else {
			out.Unsubscribed = true
		}
	}
	if err := s.opts.Store.DeletePage(ctx, p.ID); err != nil {
		return storeError(err, "page", p.ID)
	}
	closed, failed := s.closePageConversations(ctx, p.ID)
	out.ClosedConversations = closed
	if failed > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d conversation(s) could not be closed now (Temporal unavailable); they close at their auto-close deadline, and their replies fail with the reason", failed))
	}
	s.log.InfoContext(ctx, "page deleted", "page", p.ID, "closed_conversations", closed, "not_closed", failed, "unsubscribed", out.Unsubscribed)
	return c.JSON(http.StatusOK, out)
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

// closePageConversations closes every live conversation of a page.
func (s *Server) closePageConversations(ctx context.Context, pageRef string) (closed, failed int) {
	for _, state := range []string{workflows.StateOpen, workflows.StateActive, workflows.StateWaiting, workflows.StateWrapUp} {
		cursor := ""
		for {
			list, next, err := s.opts.Store.ListConversations(ctx, store.ConversationFilter{PageRef: pageRef, State: state, Limit: 200, Cursor: cursor})
			if err != nil {
				s.log.ErrorContext(ctx, "list the deleted page's conversations", "page", pageRef, "err", err)
				return closed, failed + 1
			}
			for _, cv := range list {
				if err := s.closeForDeletedPage(ctx, cv); err != nil {
					failed++
					s.log.WarnContext(ctx, "conversation of a deleted page not closed", "conversation", cv.ID, "err", err)
				} else {
					closed++
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	return closed, failed
}

func (s *Server) closeForDeletedPage(ctx context.Context, cv store.Conversation) error {
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := s.opts.Temporal.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID: cv.WorkflowID, UpdateName: workflows.UpdateClose, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{workflows.ActionRequest{ConversationID: cv.ID, Reason: PageDeletedReason}},
	})
	if err == nil {
		err = h.Get(uctx, nil)
	}
	var nf *serviceerror.NotFound
	if _, refused := workflows.IsRefused(err); refused || errors.As(err, &nf) {
		return nil // already closed
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
	check := store.TokenCheck{At: s.opts.Now().UTC(), Valid: true, Scopes: append([]string{}, info.Scopes...)}
	if !info.ExpiresAt.IsZero() {
		exp := info.ExpiresAt.UTC()
		check.ExpiresAt = &exp
	}
	switch {
	case !info.IsValid:
		check.Valid = false
		check.Error = "Meta says the page access token is invalid"
		if info.ErrorCode != 0 {
			check.Error += fmt.Sprintf(" (code %d, subcode %d): %s", info.ErrorCode, info.ErrorSubcode, info.ErrorMessage)
		}
	case info.AppID != "" && info.AppID != acct.AppID:
		check.Valid = false
		check.Error = fmt.Sprintf("the token was issued for app %s, not this account's app %s", info.AppID, acct.AppID)
	case info.ProfileID != "" && info.ProfileID != p.PageID:
		check.Valid = false
		check.Error = fmt.Sprintf("the token belongs to page %s, not page %s", info.ProfileID, p.PageID)
	case len(info.Scopes) > 0 && !slices.Contains(info.Scopes, "pages_messaging"):
		check.Valid = false
		check.Error = "the token lacks the pages_messaging permission"
	}
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
