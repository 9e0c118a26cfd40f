package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// accountJSON is an account as the API shows it: never the app secret.
type accountJSON struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Channel       string    `json:"channel"`
	AppID         string    `json:"app_id"`
	AppSecretHint string    `json:"app_secret_hint"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func toAccountJSON(a store.Account) accountJSON {
	return accountJSON{ID: a.ID, Name: a.Name, Channel: a.Channel, AppID: a.AppID, AppSecretHint: a.AppSecretHint, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

type createAccountRequest struct {
	Name      string `json:"name"`
	Channel   string `json:"channel"`
	AppID     string `json:"app_id"`
	AppSecret string `json:"app_secret"`
}

func checkChannel(ch string) error {
	if ch != "" && ch != "facebook" {
		return apierror.InvalidField("channel", "only \"facebook\" is supported, got %q", ch)
	}
	return nil
}

func checkAppSecret(v string) error {
	if err := required("app_secret", v, 256); err != nil {
		return err
	}
	if len(v) < 16 {
		return apierror.InvalidField("app_secret", "is too short to be a Facebook app secret")
	}
	return nil
}

func (s *Server) createAccount(c echo.Context) error {
	var req createAccountRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := required("name", req.Name, 200); err != nil {
		return err
	}
	if err := checkChannel(req.Channel); err != nil {
		return err
	}
	if err := digits("app_id", req.AppID); err != nil {
		return err
	}
	if err := checkAppSecret(req.AppSecret); err != nil {
		return err
	}
	a, err := s.opts.Store.CreateAccount(c.Request().Context(), store.NewAccount{Name: req.Name, AppID: req.AppID, AppSecret: req.AppSecret})
	if err != nil {
		return storeError(err, "account", req.Name)
	}
	s.log.InfoContext(c.Request().Context(), "account created", "account", a.ID, "app_id", a.AppID)
	return c.JSON(http.StatusCreated, toAccountJSON(a))
}

func (s *Server) listAccounts(c echo.Context) error {
	list, err := s.opts.Store.ListAccounts(c.Request().Context())
	if err != nil {
		return storeError(err, "accounts", "")
	}
	out := make([]accountJSON, 0, len(list))
	for _, a := range list {
		out = append(out, toAccountJSON(a))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getAccount(c echo.Context) error {
	a, err := s.opts.Store.GetAccount(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "account", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toAccountJSON(a))
}

type updateAccountRequest struct {
	Name      *string `json:"name"`
	AppID     *string `json:"app_id"`
	AppSecret *string `json:"app_secret"`
}

func (s *Server) updateAccount(c echo.Context) error {
	var req updateAccountRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Name != nil {
		if err := required("name", *req.Name, 200); err != nil {
			return err
		}
	}
	if req.AppID != nil {
		if err := digits("app_id", *req.AppID); err != nil {
			return err
		}
	}
	if req.AppSecret != nil {
		if err := checkAppSecret(*req.AppSecret); err != nil {
			return err
		}
	}
	a, err := s.opts.Store.UpdateAccount(c.Request().Context(), c.Param("id"), store.AccountUpdate{Name: req.Name, AppID: req.AppID, AppSecret: req.AppSecret})
	if err != nil {
		return storeError(err, "account", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toAccountJSON(a))
}

// deleteAccount closes the live conversations of the account's pages, as
// deletePage does (or deletes nothing, 503), then deletes the account and
// its pages, history kept. The app stays subscribed to the pages: the app
// is the account's own, and its webhooks answer 404 from now on.
func (s *Server) deleteAccount(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	if _, err := s.opts.Store.GetAccount(ctx, id); err != nil {
		return storeError(err, "account", id)
	}
	pages, err := s.opts.Store.ListPages(ctx, id)
	if err != nil {
		return storeError(err, "account", id)
	}
	closed := map[string]bool{}
	for _, p := range pages {
		if err := s.closePageConversations(ctx, p.ID, AccountDeletedReason, closed); err != nil {
			s.log.ErrorContext(ctx, "account not deleted: its conversations could not be closed", "account", id, "page", p.ID, "closed_conversations", len(closed), "err", err)
			return &apierror.Error{Status: http.StatusServiceUnavailable, Code: "temporal_unavailable",
				Message: fmt.Sprintf("the account was not deleted: its live conversations could not all be closed (%d closed); retry later", len(closed)), Err: err}
		}
	}
	if err := s.opts.Store.DeleteAccount(ctx, id); err != nil {
		return storeError(err, "account", id)
	}
	// A customer may have written between the first sweep and the delete.
	for _, p := range pages {
		if err := s.closePageConversations(ctx, p.ID, AccountDeletedReason, closed); err != nil {
			s.log.ErrorContext(ctx, "conversation of a deleted account not closed", "account", id, "page", p.ID, "err", err)
		}
	}
	s.log.InfoContext(ctx, "account deleted; its pages' webhooks now answer 404", "account", id, "pages", len(pages), "closed_conversations", len(closed))
	return c.NoContent(http.StatusNoContent)
}
