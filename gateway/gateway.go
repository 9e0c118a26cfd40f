// Package gateway is Parley's Messenger webhook endpoint. It verifies what
// Meta sends, turns each customer's events into one signal of that customer's
// conversation workflow (SignalWithStart), and answers 200 only once Temporal
// has accepted every event, so that Meta retries whatever was not.
package gateway

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"parley/activities"
	"parley/apierror"
	"parley/messenger"
	"parley/metrics"
	"parley/store"
	"parley/workflows"
)

// MaxBodyBytes caps a webhook POST; Meta's batches are far smaller.
const MaxBodyBytes = 1 << 20

// Options configure the gateway.
type Options struct {
	Store     *store.Store
	Temporal  client.Client
	TaskQueue string
	// SignalTimeout bounds how long one POST waits for Temporal before 503.
	SignalTimeout time.Duration
	// Windows are Meta's window lengths given to new conversations, and
	// Limits bound their runs.
	Windows workflows.Windows
	Limits  workflows.Limits
	Logger  *slog.Logger
	// Metrics counts each webhook POST by outcome and reason, and times
	// its answer (nil: not recorded).
	Metrics *metrics.Metrics
	// Now is time.Now outside tests.
	Now func() time.Time
	// CacheTTL is how long a page and its app secret, read by callback
	// key, are trusted (0: DefaultCacheTTL; negative: not cached).
	CacheTTL time.Duration
}

// Gateway serves /webhooks/facebook/{key}.
type Gateway struct {
	opts Options
	log  *slog.Logger

	cache *pageCache

	mu      sync.Mutex
	touched map[string]time.Time // page id -> last LastWebhookAt write
}

// New builds a Gateway.
func New(opts Options) *Gateway {
	if opts.SignalTimeout <= 0 {
		opts.SignalTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	return &Gateway{opts: opts, log: opts.Logger.With("component", "gateway"), touched: map[string]time.Time{},
		cache: newPageCache(opts.Store, opts.CacheTTL, opts.Now)}
}

// Register mounts the webhook routes, and a middleware that keeps the
// gateway's cache in step with the changes the REST API served by e makes
// to pages and accounts (watchChanges).
func (g *Gateway) Register(e *echo.Echo) {
	e.Use(g.watchChanges)
	e.GET("/webhooks/facebook/:key", g.verify)
	e.POST("/webhooks/facebook/:key", g.receive)
}

// page resolves the callback key. The key of a deleted page still serves
// its account (Meta has one callback URL per app, shared by every page of
// the account); a deleted account's answers 404.
func (g *Gateway) page(c echo.Context) (store.Page, error) {
	p, err := g.opts.Store.CallbackPage(c.Request().Context(), c.Param("key"))
	return p, callbackError(err)
}

// callbackError is the answer to a failed callback key lookup.
func callbackError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierror.New(http.StatusNotFound, "not_found", "no page has this callback URL")
	}
	if err != nil {
		return apierror.Internal(fmt.Errorf("page by callback key: %w", err))
	}
	return nil
}

// verify answers Meta's verification handshake.
func (g *Gateway) verify(c echo.Context) error {
	p, err := g.page(c)
	if err != nil {
		return err
	}
	q := c.Request().URL.Query()
	mode, token, challenge := q.Get("hub.mode"), q.Get("hub.verify_token"), q.Get("hub.challenge")
	if mode != "subscribe" || p.VerifyToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(p.VerifyToken)) != 1 {
		g.log.WarnContext(c.Request().Context(), "webhook verification refused", "page", p.ID, "facebook_page_id", p.PageID, "mode", mode)
		return apierror.New(http.StatusForbidden, "verification_failed", "hub.mode must be subscribe and hub.verify_token must match the page's verify token")
	}
	if err := g.opts.Store.MarkWebhookVerified(c.Request().Context(), p.ID, g.opts.Now().UTC()); err != nil {
		return apierror.Internal(fmt.Errorf("mark webhook verified: %w", err))
	}
	g.log.InfoContext(c.Request().Context(), "webhook verified", "page", p.ID, "facebook_page_id", p.PageID)
	return c.String(http.StatusOK, challenge)
}

// receive handles one webhook POST, counting its outcome.
func (g *Gateway) receive(c echo.Context) error {
	start := time.Now()
	reason, err := g.handle(c)
	if err != nil {
		g.opts.Metrics.WebhookRefused(reason, time.Since(start))
		return err
	}
	err = c.String(http.StatusOK, "EVENT_RECEIVED")
	g.opts.Metrics.WebhookAccepted(reason, time.Since(start))
	return err
}

// handle takes in one webhook POST: nil means answer 200. reason (a
// metrics.Reason*) says why it is accepted or refused.
func (g *Gateway) handle(c echo.Context) (reason string, _ error) {
	ctx := c.Request().Context()
	key := c.Param("key")
	cb, cached, err := g.cache.get(ctx, key)
	if err = callbackError(err); err != nil {
		if apierror.From(err).Status == http.StatusNotFound {
			return metrics.ReasonUnknownPage, err
		}
		return metrics.ReasonInternal, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return metrics.ReasonPayloadTooLarge, apierror.New(http.StatusRequestEntityTooLarge, "payload_too_large", "webhook body exceeds %d bytes", MaxBodyBytes)
		}
		return metrics.ReasonUnreadableBody, apierror.New(http.StatusBadRequest, "bad_request", "could not read the body")
	}
	h := c.Request().Header
	err = messenger.VerifySignature(body, h.Get("X-Hub-Signature-256"), h.Get("X-Hub-Signature"), cb.secret)
	if err != nil && cached {
		// The app secret may have been rotated (or the page or account
		// deleted) through another replica since it was cached: read them
		// again before refusing.
		g.cache.forget(key)
		if cb, _, err = g.cache.get(ctx, key); err != nil {
			err = callbackError(err)
			if apierror.From(err).Status == http.StatusNotFound {
				return metrics.ReasonUnknownPage, err
			}
			return metrics.ReasonInternal, err
		}
		err = messenger.VerifySignature(body, h.Get("X-Hub-Signature-256"), h.Get("X-Hub-Signature"), cb.secret)
	}
	p := cb.page
	if err != nil {
		g.log.WarnContext(ctx, "webhook signature refused", "page", p.ID, "err", err)
		return metrics.ReasonBadSignature, apierror.New(http.StatusUnauthorized, "bad_signature", "X-Hub-Signature-256 is missing or does not match the body signed with the app secret")
	}
	n, err := messenger.ParseWebhook(body)
	if err != nil {
		return metrics.ReasonMalformedWebhook, apierror.New(http.StatusBadRequest, "malformed_webhook", "%v", err)
	}
	if n.Object != "page" {
		// Not a Messenger page event (e.g. an Instagram subscription on the same app):
		// acknowledged so that Meta does not retry it forever.
		g.log.WarnContext(ctx, "webhook for an object Parley does not handle", "page", p.ID, "object", n.Object)
		return metrics.ReasonUnhandledObject, nil
	}
	groups, err := g.group(ctx, p, n)
	if err != nil {
		return metrics.ReasonInternal, err
	}
	if err := g.deliver(ctx, groups); err != nil {
		g.log.ErrorContext(ctx, "webhook not accepted by Temporal; Meta will retry", "page", p.ID, "err", err)
		return metrics.ReasonTemporalUnavailable, &apierror.Error{Status: http.StatusServiceUnavailable, Code: "temporal_unavailable", Message: "the events could not be durably accepted; retry later", Err: err}
	}
	g.touch(ctx, p)
	return metrics.ReasonDelivered, nil
}

// customerEvents are one customer's events of one POST, in Meta's order.
type customerEvents struct {
	page   store.Page
	psid   string
	events []messenger.Event
}

// group sorts events by (page, customer), keeping their order. Events of a
// page that Parley does not manage in this account are logged and dropped.
func (g *Gateway) group(ctx context.Context, callbackPage store.Page, n *messenger.Notification) ([]*customerEvents, error) {
	pages := map[string]*store.Page{}
	if callbackPage.DeletedAt == nil {
		pages[callbackPage.PageID] = &callbackPage
	}
	index := map[string]*customerEvents{}
	var groups []*customerEvents
	for _, entry := range n.Entries {
		p, ok := pages[entry.PageID]
		if !ok {
			found, err := g.opts.Store.PageByFacebookID(ctx, callbackPage.AccountID, entry.PageID)
			switch {
			case errors.Is(err, store.ErrNotFound) || (err == nil && found.CallbackKey == ""):
				p = nil
			case err != nil:
				return nil, apierror.Internal(fmt.Errorf("page %s of account %s: %w", entry.PageID, callbackPage.AccountID, err))
			default:
				p = &found
			}
			pages[entry.PageID] = p
		}
		if p == nil {
			// Acknowledged: a 404 would make Meta retry for hours, then
			// disable the webhook for every page of the app.
			g.log.WarnContext(ctx, "events for a page Parley does not manage (deleted, or never connected); acknowledged and dropped",
				"callback_page", callbackPage.ID, "facebook_page_id", entry.PageID, "events", len(entry.Events))
			continue
		}
		for _, e := range entry.Events {
			if e.PSID == "" {
				g.log.WarnContext(ctx, "event without a customer id dropped", "facebook_page_id", entry.PageID, "kind", e.Kind)
				continue
			}
			k := p.PageID + "/" + e.PSID
			ce, ok := index[k]
			if !ok {
				ce = &customerEvents{page: *p, psid: e.PSID}
				index[k] = ce
				groups = append(groups, ce)
			}
			ce.events = append(ce.events, e)
		}
	}
	return groups, nil
}

// deliver durably accepts each customer's events, customers in parallel,
// and fails unless all of them were:
//   - delivery and read receipts update the statuses in the database, with
//     no workflow (Temporal Web does not fill up with one per receipt);
//   - Meta's retries of recorded messages are dropped;
//   - a new message, postback or referral goes to the customer's
//     conversation, started if need be (SignalWithStart);
//   - other events (reactions, edits, echoes) go to the running
//     conversation, or, when none runs, to the customer's transcript
//     without creating work for agents.
func (g *Gateway) deliver(ctx context.Context, groups []*customerEvents) error {
	ctx, cancel := context.WithTimeout(ctx, g.opts.SignalTimeout)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(16)
	for _, ce := range groups {
		eg.Go(func() error { return g.deliverCustomer(ctx, ce) })
	}
	return eg.Wait()
}

func (g *Gateway) deliverCustomer(ctx context.Context, ce *customerEvents) error {
	id := workflows.ConversationWorkflowID(ce.page.PageID, ce.psid)
	outside := func(events []messenger.Event) error {
		in := activities.OutsideInput{PageRef: ce.page.ID, AccountID: ce.page.AccountID, FacebookPageID: ce.page.PageID,
			PSID: ce.psid, WorkflowID: id, Events: events}
		if err := activities.RecordOutside(ctx, g.opts.Store, g.log, in); err != nil {
			return fmt.Errorf("record %d events of %s outside a conversation: %w", len(events), id, err)
		}
		return nil
	}
	var receipts, rest []messenger.Event
	var keys []string
	for _, e := range ce.events {
		switch {
		case e.Kind == messenger.KindDelivery || e.Kind == messenger.KindRead:
			receipts = append(receipts, e)
			continue
		case e.OpensWindow():
			keys = append(keys, e.DedupeKey())
		}
		rest = append(rest, e)
	}
	if err := outside(receipts); err != nil {
		return err
	}
	if len(rest) == 0 {
		return nil
	}
	fresh, err := g.opts.Store.UnrecordedDedupeKeys(ctx, ce.page.PageID, ce.psid, keys)
	if err != nil {
		return fmt.Errorf("recorded events of %s: %w", id, err)
	}
	if len(fresh) > 0 {
		return g.signalWithStart(ctx, ce, rest)
	}
	err = g.opts.Temporal.SignalWorkflow(ctx, id, "", workflows.SignalMessengerEvents, workflows.MessengerEventsSignal{Events: rest})
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// No conversation runs: nothing here is work for an agent.
		return outside(rest)
	}
	if err != nil {
		return fmt.Errorf("signal %s (%d events): %w", id, len(rest), err)
	}
	return nil
}

// signalWithStart hands a customer's events to their conversation, started
// if none runs.
func (g *Gateway) signalWithStart(ctx context.Context, ce *customerEvents, events []messenger.Event) error {
	id := workflows.ConversationWorkflowID(ce.page.PageID, ce.psid)
	opts := client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: g.opts.TaskQueue,
		// A closed conversation is followed by a new one for the same customer.
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            workflows.ConversationSummary(ce.page.Name, ce.page.PageID, ce.psid),
		// No search attributes: the conversation sets them when it opens
		// (workflows' open), in an upsert it writes anyway.
	}
	in := workflows.ConversationInput{
		PageRef:        ce.page.ID,
		AccountID:      ce.page.AccountID,
		FacebookPageID: ce.page.PageID,
		PageName:       ce.page.Name,
		PSID:           ce.psid,
		Windows:        g.opts.Windows,
		Limits:         g.opts.Limits,
	}
	_, err := g.opts.Temporal.SignalWithStartWorkflow(ctx, id, workflows.SignalMessengerEvents,
		workflows.MessengerEventsSignal{Events: events}, opts, workflows.ConversationWorkflowName, in)
	if err != nil {
		return fmt.Errorf("signal %s (%d events): %w", id, len(events), err)
	}
	return nil
}

// touch records that webhooks arrive (pages.last_webhook_at), at most once
// a minute per page and process: one POST a minute per page pays for the
// write, the others skip it on an in-memory check. The page health check
// reads it to find pages gone silent, after PARLEY_PAGE_SILENCE_AFTER (24 h
// by default, hours at least per page): a minute late is nothing to it. The
// first webhook of a page (in each process) always writes.
func (g *Gateway) touch(ctx context.Context, p store.Page) {
	now := g.opts.Now().UTC()
	g.mu.Lock()
	last := g.touched[p.ID]
	due := now.Sub(last) >= time.Minute
	if due {
		g.touched[p.ID] = now
	}
	g.mu.Unlock()
	if !due {
		return
	}
	if err := g.opts.Store.TouchWebhook(ctx, p.ID, now); err != nil {
		g.log.WarnContext(ctx, "record last webhook time", "page", p.ID, "err", err)
	}
}
