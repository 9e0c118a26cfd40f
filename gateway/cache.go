package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"parley/store"
)

// DefaultCacheTTL is how long the gateway trusts what it read of a callback
// key: the page and its account's app secret (decrypted). Several API
// replicas share one database and nothing tells one replica that another
// changed a page or an account, so this bounds how long a change made
// through another replica takes to reach this one: a deleted page's events
// are dropped, a deleted account's webhooks answer 404, at most this long
// after the change. Changes made through this process's own REST API reach
// its gateway at once (Gateway.Invalidate, called by the middleware Register
// mounts), and a signature that fails against a cached secret is checked
// again against the database's before it is refused, so a rotated app secret
// works at once on every replica. A few seconds cost one database read per
// page per few seconds instead of two per POST.
const DefaultCacheTTL = 5 * time.Second

// callback is what the gateway reads of a callback key.
type callback struct {
	page   store.Page
	secret string // the account's app secret, decrypted
}

type cacheEntry struct {
	cb      callback
	expires time.Time
}

// pageCache caches callback keys. While the REST API of this process
// changes a page or an account (held > 0), nothing is cached nor served
// from the cache: the gateway reads the database as it did without a cache,
// so that a page being deleted stops starting conversations the moment its
// deletion commits (the API's second sweep of its conversations relies on
// it).
type pageCache struct {
	st  *store.Store
	ttl time.Duration // <= 0: no caching
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	gen     uint64 // bumped by every invalidation: a read begun before one is not kept
	held    int    // changes in progress
	flight  singleflight.Group
}

func newPageCache(st *store.Store, ttl time.Duration, now func() time.Time) *pageCache {
	return &pageCache{st: st, ttl: ttl, now: now, entries: map[string]cacheEntry{}}
}

// get returns the page and app secret of a callback key; cached tells
// whether they came from the cache (and so may be up to ttl old).
func (pc *pageCache) get(ctx context.Context, key string) (_ callback, cached bool, _ error) {
	now := pc.now()
	pc.mu.Lock()
	e, ok := pc.entries[key]
	gen, use := pc.gen, pc.ttl > 0 && pc.held == 0
	pc.mu.Unlock()
	if use && ok && now.Before(e.expires) {
		return e.cb, true, nil
	}
	if !use {
		cb, err := pc.load(ctx, key)
		return cb, false, err
	}
	// One read per key at a time; the generation in the name: a read begun
	// before an invalidation is not shared with callers after it.
	v, err, _ := pc.flight.Do(flightKey(gen, key), func() (any, error) {
		// Not the caller's context: other requests wait on this read.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		cb, err := pc.load(rctx, key)
		if err != nil {
			return nil, err
		}
		pc.mu.Lock()
		if pc.gen == gen && pc.held == 0 {
			pc.entries[key] = cacheEntry{cb: cb, expires: now.Add(pc.ttl)}
		}
		pc.mu.Unlock()
		return cb, nil
	})
	if err != nil {
		return callback{}, false, err
	}
	return v.(callback), false, nil
}

func flightKey(gen uint64, key string) string {
	return strconv.FormatUint(gen, 10) + "\x00" + key
}

// load reads a callback key from the database.
func (pc *pageCache) load(ctx context.Context, key string) (callback, error) {
	p, err := pc.st.CallbackPage(ctx, key)
	if err != nil {
		return callback{}, err
	}
	secret, err := pc.st.AccountAppSecret(ctx, p.AccountID)
	if err != nil {
		return callback{}, err
	}
	return callback{page: p, secret: secret}, nil
}

// forget drops one key (its secret did not match: read it again).
func (pc *pageCache) forget(key string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.gen++
	delete(pc.entries, key)
}

// invalidate drops everything.
func (pc *pageCache) invalidate() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.gen++
	clear(pc.entries)
}

// hold stops caching until the returned release is called, which drops
// everything cached.
func (pc *pageCache) hold() (release func()) {
	pc.mu.Lock()
	pc.held++
	pc.gen++
	clear(pc.entries)
	pc.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			pc.mu.Lock()
			pc.held--
			pc.gen++
			clear(pc.entries)
			pc.mu.Unlock()
		})
	}
}

// Invalidate makes the gateway forget every page and app secret it cached:
// call it after changing a page or an account other than through the REST
// API of the Echo the gateway is registered on (which Register watches).
func (g *Gateway) Invalidate() { g.cache.invalidate() }

// Hold stops the gateway's caching until release is called (which
// invalidates): for a change of pages or accounts that must take effect in
// this process the moment it commits.
func (g *Gateway) Hold() (release func()) { return g.cache.hold() }

// changesCallbacks tells whether a REST API request may change what the
// gateway caches: a page (deleted, renamed, its callback key or account) or
// an account (deleted, its app secret).
func changesCallbacks(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	p := r.URL.Path
	return strings.HasPrefix(p, "/api/v1/accounts") || strings.HasPrefix(p, "/api/v1/pages")
}

// watchChanges is the middleware Register mounts: while a request of the
// REST API changes pages or accounts, the gateway reads them from the
// database, and forgets what it cached once the request is done.
func (g *Gateway) watchChanges(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !changesCallbacks(c.Request()) {
			return next(c)
		}
		release := g.cache.hold()
		defer release()
		return next(c)
	}
}
