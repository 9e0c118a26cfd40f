package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"

	"parley/messenger"
	"parley/store"
)

// Activities of the periodic page health check (issue 10).
const (
	ListPagesToCheckName = "ListPagesToCheck"
	CheckPageHealthName  = "CheckPageHealth"
	SendPageAlertName    = "SendPageAlert"
)

// HealthSettings tune the page health check.
type HealthSettings struct {
	// ExpiringWithin: a token or its data access that ends sooner makes
	// the page "expiring".
	ExpiringWithin time.Duration
	// SilenceAfter is the default silence threshold (a page may set its own).
	SilenceAfter time.Duration
	// BusyConversations: a page "used to be busy" when at least this many
	// conversations started in the week before its last webhook.
	BusyConversations int
	// AlertURL receives a signed POST on every change of a page's state
	// ("" for none); AlertSecret signs it (X-Parley-Signature-256).
	AlertURL    string
	AlertSecret string
}

// Defaults of HealthSettings.
const (
	DefaultExpiringWithin    = 7 * 24 * time.Hour
	DefaultSilenceAfter      = 24 * time.Hour
	DefaultBusyConversations = 3
	busyWindow               = 7 * 24 * time.Hour
)

// PageHealth checks pages and alerts on changes.
type PageHealth struct {
	Store    *store.Store
	Graph    *messenger.Client
	Log      *slog.Logger
	Settings HealthSettings
	// HTTP posts alerts (http.DefaultClient when nil); Now is the clock.
	HTTP *http.Client
	Now  func() time.Time
	// Alerted, when set, counts each alert by the state entered (metrics).
	Alerted func(state string)
}

func (a *PageHealth) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// ListPagesToCheck lists every page of every account, but duplicates
// (another account receives their webhooks).
func (a *PageHealth) ListPagesToCheck(ctx context.Context) ([]string, error) {
	pages, err := a.Store.ListPages(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list pages: %w", err)
	}
	var out []string
	for _, p := range pages {
		if p.CallbackKey != "" {
			out = append(out, p.ID)
		}
	}
	return out, nil
}

// PageHealthResult is where a page stands after its check.
type PageHealthResult struct {
	PageRef        string `json:"page_ref"`
	FacebookPageID string `json:"facebook_page_id"`
	Name           string `json:"name"`
	State          string `json:"state"`
	Reason         string `json:"reason,omitempty"`
	// Resubscribed: Meta had dropped the app's subscription; it was renewed.
	Resubscribed bool `json:"resubscribed,omitempty"`
	// PreviousState is the state last alerted; Changed: an alert is due.
	PreviousState string `json:"previous_state"`
	Changed       bool   `json:"changed"`
}

// CheckPageHealth asks Meta about the page (debug_token, subscribed_apps),
// looks at its webhook traffic, and records what it found. A Graph API
// that cannot be reached fails the activity (it is retried), without
// changing the page: an outage of ours is not the page's problem.
func (a *PageHealth) CheckPageHealth(ctx context.Context, pageRef string) (PageHealthResult, error) {
	p, err := a.Store.GetPage(ctx, pageRef)
	if errors.Is(err, store.ErrNotFound) {
		return PageHealthResult{PageRef: pageRef, State: "deleted"}, nil
	}
	if err != nil {
		return PageHealthResult{}, fmt.Errorf("page %s: %w", pageRef, err)
	}
	acct, err := a.Store.GetAccount(ctx, p.AccountID)
	if err != nil {
		return PageHealthResult{}, fmt.Errorf("account of page %s: %w", pageRef, err)
	}
	secret, err := a.Store.AccountAppSecret(ctx, p.AccountID)
	if err != nil {
		return PageHealthResult{}, fmt.Errorf("app secret of page %s: %w", pageRef, err)
	}
	token, err := a.Store.PageAccessToken(ctx, p.ID)
	if err != nil {
		return PageHealthResult{}, fmt.Errorf("token of page %s: %w", pageRef, err)
	}
	now := a.now()
	info, err := a.Graph.DebugToken(ctx, acct.AppID, secret, token)
	if err != nil {
		return PageHealthResult{}, fmt.Errorf("debug_token of page %s: %w", p.PageID, err)
	}
	check := TokenCheckOf(info, acct.AppID, p.PageID, now)
	if p, err = a.Store.RecordTokenCheck(ctx, p.ID, check); err != nil {
		return PageHealthResult{}, fmt.Errorf("record the token check of page %s: %w", pageRef, err)
	}
	var health, reason string
	res := PageHealthResult{PageRef: p.ID, FacebookPageID: p.PageID, Name: p.Name}
	if check.Valid {
		auth := messenger.PageAuth{PageID: p.PageID, AccessToken: token, AppSecret: secret}
		if health, reason, res.Resubscribed, err = a.subscription(ctx, p, auth, acct.AppID, now); err != nil {
			return PageHealthResult{}, err
		}
		if health == "" {
			health, reason = a.expiring(info, now)
		}
		if health == "" {
			if health, reason, err = a.silence(ctx, p, now); err != nil {
				return PageHealthResult{}, err
			}
		}
	}
	if p, err = a.Store.RecordPageHealth(ctx, p.ID, health, reason, now); err != nil {
		return PageHealthResult{}, fmt.Errorf("record the health of page %s: %w", pageRef, err)
	}
	res.State, res.Reason = p.Provisioning()
	res.PreviousState = p.AlertedState
	if res.PreviousState == "" {
		res.PreviousState = store.ProvisioningRunning // never alerted: it was fine
	}
	res.Changed = res.State != res.PreviousState
	return res, nil
}

// TokenCheckOf is what debug_token said of a page token, as the page
// records it (POST /pages/{id}/check and the health check alike).
func TokenCheckOf(info messenger.TokenInfo, appID, pageID string, at time.Time) store.TokenCheck {
	check := store.TokenCheck{At: at, Valid: true, Scopes: append([]string{}, info.Scopes...)}
	if !info.ExpiresAt.IsZero() {
		exp := info.ExpiresAt.UTC()
		check.ExpiresAt = &exp
	}
	if problem := messenger.TokenProblem(info, appID, pageID); problem != "" {
		check.Valid, check.Error = false, problem
	}
	return check
}

// subscription checks that the app is still subscribed to every field
// Parley needs, and subscribes it again when Meta dropped it (or a field).
func (a *PageHealth) subscription(ctx context.Context, p store.Page, auth messenger.PageAuth, appID string, now time.Time) (state, reason string, resubscribed bool, err error) {
	apps, err := a.Graph.SubscribedApps(ctx, auth)
	if err != nil {
		if ge := pageRefusal(err); ge != nil {
			return store.ProvisioningUnsubscribed, fmt.Sprintf("Meta refused to list the page's subscribed apps (code %d, subcode %d)", ge.Code, ge.Subcode), false, nil
		}
		return "", "", false, fmt.Errorf("subscribed_apps of page %s: %w", p.PageID, err)
	}
	for _, app := range apps {
		if app.ID == appID && !slices.ContainsFunc(messenger.DefaultSubscribedFields, func(f string) bool { return !slices.Contains(app.SubscribedFields, f) }) {
			return "", "", false, nil // subscribed to every field Parley needs
		}
	}
	if err := a.Graph.SubscribeApp(ctx, auth, messenger.DefaultSubscribedFields); err != nil {
		if ge := pageRefusal(err); ge != nil {
			return store.ProvisioningUnsubscribed, fmt.Sprintf("Meta dropped the app's subscription to the page's webhooks and refused to renew it (code %d, subcode %d): no message reaches Parley", ge.Code, ge.Subcode), false, nil
		}
		return "", "", false, fmt.Errorf("subscribe the app to page %s: %w", p.PageID, err)
	}
	if err := a.Store.RecordSubscribed(ctx, p.ID, now); err != nil {
		return "", "", false, fmt.Errorf("record the subscription of page %s: %w", p.ID, err)
	}
	a.log().WarnContext(ctx, "page re-subscribed: Meta had dropped the app's subscription", "page", p.ID, "facebook_page_id", p.PageID)
	return "", "", true, nil
}

// pageRefusal is Meta's refusal that concerns the page; nil for errors
// worth retrying (ours, Meta's temporary ones, throttling).
func pageRefusal(err error) *messenger.GraphError {
	var ge *messenger.GraphError
	if !errors.As(err, &ge) {
		return nil
	}
	switch ge.Class() {
	case messenger.ClassTemporary, messenger.ClassThrottled:
		return nil
	}
	return ge
}

// expiring says whether the token or its data access ends soon.
func (a *PageHealth) expiring(info messenger.TokenInfo, now time.Time) (string, string) {
	within := a.Settings.ExpiringWithin
	if within <= 0 {
		within = DefaultExpiringWithin
	}
	days := func(t time.Time) string { return fmt.Sprintf("%.0f days", t.Sub(now).Hours()/24) }
	if t := info.ExpiresAt; !t.IsZero() && t.Sub(now) < within {
		return store.ProvisioningExpiring, fmt.Sprintf("the page access token expires at %s (in %s): connect the page again with a new token before then",
			t.UTC().Format(time.RFC3339), days(t))
	}
	if t := info.DataAccessExpiresAt; !t.IsZero() && t.Sub(now) < within {
		return store.ProvisioningExpiring, fmt.Sprintf("the token's data access expires at %s (in %s): a page admin must renew it (log in to the app again) before then",
			t.UTC().Format(time.RFC3339), days(t))
	}
	return "", ""
}

// silence says whether a page that used to be busy has had no webhook for
// longer than its threshold.
func (a *PageHealth) silence(ctx context.Context, p store.Page, now time.Time) (string, string, error) {
	after := p.SilenceAfter
	if after <= 0 {
		after = a.Settings.SilenceAfter
	}
	if after <= 0 {
		after = DefaultSilenceAfter
	}
	last := p.LastWebhookAt
	if last == nil || now.Sub(*last) <= after {
		return "", "", nil
	}
	busy := a.Settings.BusyConversations
	if busy <= 0 {
		busy = DefaultBusyConversations
	}
	n, err := a.Store.ConversationsStarted(ctx, p.ID, last.Add(-busyWindow), last.Add(time.Second))
	if err != nil {
		return "", "", err
	}
	if n < busy {
		return "", "", nil // a quiet page is not a broken one
	}
	return store.ProvisioningSilent, fmt.Sprintf("no webhook since %s (over %s), while %d conversations started in the week before: check the app's webhook and subscription in Meta's dashboard",
		last.UTC().Format(time.RFC3339), after, n), nil
}

// PageAlert is the alert of a page's change of state.
type PageAlert struct {
	Event          string    `json:"event"` // "page.state_changed"
	PageRef        string    `json:"page_id"`
	FacebookPageID string    `json:"facebook_page_id"`
	Name           string    `json:"name"`
	State          string    `json:"state"`
	PreviousState  string    `json:"previous_state"`
	Reason         string    `json:"reason,omitempty"`
	At             time.Time `json:"at"`
}

// AlertSignatureHeader carries "sha256=<hex HMAC-SHA256(body, secret)>".
const AlertSignatureHeader = "X-Parley-Signature-256"

// SendPageAlert tells operators that a page changed state: a log line (at
// error level for a problem), and a signed POST to the alert URL when one
// is set. The state is then recorded as alerted, so it goes once.
func (a *PageHealth) SendPageAlert(ctx context.Context, al PageAlert) error {
	al.Event = "page.state_changed"
	if al.State == store.ProvisioningRunning {
		a.log().InfoContext(ctx, "page back to running", "page", al.PageRef, "facebook_page_id", al.FacebookPageID, "previous_state", al.PreviousState)
	} else {
		a.log().ErrorContext(ctx, "page needs attention", "page", al.PageRef, "facebook_page_id", al.FacebookPageID, "state", al.State, "reason", al.Reason)
	}
	if url := a.Settings.AlertURL; url != "" {
		body, err := json.Marshal(al)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return temporal.NewNonRetryableApplicationError("alert URL: "+err.Error(), "BadAlertURL", nil)
		}
		req.Header.Set("Content-Type", "application/json")
		if a.Settings.AlertSecret != "" {
			mac := hmac.New(sha256.New, []byte(a.Settings.AlertSecret))
			mac.Write(body)
			req.Header.Set(AlertSignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
		}
		hc := a.HTTP
		if hc == nil {
			hc = http.DefaultClient
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("post the alert: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("post the alert: the alert URL answered %d", resp.StatusCode)
		}
	}
	if err := a.Store.MarkPageAlerted(ctx, al.PageRef, al.State); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("record the alert of page %s: %w", al.PageRef, err)
	}
	if a.Alerted != nil {
		a.Alerted(al.State)
	}
	return nil
}

func (a *PageHealth) log() *slog.Logger { return orDefault(a.Log) }
