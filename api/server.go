// Package api is Parley's REST API (/api/v1, JSON, Bearer API keys with
// roles) and the HTTP server that also carries the webhook gateway.
package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.temporal.io/sdk/client"

	"parley/apierror"
	"parley/blobs"
	"parley/events"
	"parley/messenger"
	"parley/payloadcodec"
	"parley/store"
	"parley/workflows"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

// Options are the API's dependencies.
type Options struct {
	Store    *store.Store
	Temporal client.Client
	Graph    *messenger.Client
	// PublicURL is the externally reachable base URL: callback URLs start with it.
	PublicURL string
	// UpdateWait bounds a request's wait for its conversation's workflow
	// (0: DefaultUpdateWait); past it a reply answers 202 and goes on.
	UpdateWait time.Duration
	// AdminAPIKey is the bootstrap key with the admin role.
	AdminAPIKey string
	// Windows are Meta's window lengths (reply modes are computed with them).
	Windows workflows.Windows
	Logger  *slog.Logger
	Now     func() time.Time
	// OnAgentChanged, when set, is called after a change of an agent's
	// presence, capacity or queue membership has been saved, to trigger
	// distribution at once; when it fails, the request answers 503
	// saying that the change was saved.
	OnAgentChanged func(ctx context.Context, agentID string) error
	// Events is the live event hub of GET /api/v1/events (nil: 503).
	Events *events.Hub
	// Codec serves Temporal's remote codec to Temporal Web at
	// /api/v1/temporal-codec (nil: 503).
	Codec *payloadcodec.Codec
	// CodecOrigins are the browser origins (Temporal Web's) that may call
	// the codec; empty: any.
	CodecOrigins []string
	// Blobs keeps attachments (nil: attachments cannot be read or sent).
	Blobs *blobs.Store
	// FetchPrivateURLs lets a reply's attachment.url lead to loopback and
	// private addresses (development only: by default Parley downloads
	// files from public addresses only).
	FetchPrivateURLs bool
}

// Server is the REST API.
type Server struct {
	opts Options
	log  *slog.Logger
	echo *echo.Echo
	// fetch downloads attachment URLs (attachments_out.go).
	fetch *http.Client
}

// New builds the Echo server with every REST route; the gateway registers
// its own routes on Echo() too.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "api"), fetch: newFetchClient(opts.FetchPrivateURLs)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = apierror.Handler(s.log)
	e.Use(middleware.Recover())
	e.Use(s.logRequests)
	e.Use(bodyLimit(MaxBodyBytes))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/api/openapi.yaml", s.openAPI)

	v1 := e.Group("/api/v1", s.authenticate)
	admin := requireRole(RoleAdmin)
	reader := requireRole(RoleAdmin, RoleSupervisor)

	v1.POST("/accounts", s.createAccount, admin)
	v1.GET("/accounts", s.listAccounts, admin)
	v1.GET("/accounts/:id", s.getAccount, admin)
	v1.PATCH("/accounts/:id", s.updateAccount, admin)
	v1.DELETE("/accounts/:id", s.deleteAccount, admin)
	v1.POST("/accounts/:id/pages", s.createPage, admin)
	v1.GET("/accounts/:id/pages", s.listAccountPages, admin)

	v1.GET("/pages", s.listPages, admin)
	v1.GET("/pages/:id", s.getPage, admin)
	v1.DELETE("/pages/:id", s.deletePage, admin)
	v1.PUT("/pages/:id/access-token", s.rotatePageToken, admin)
	v1.POST("/pages/:id/check", s.checkPageHandler, admin)
	v1.PATCH("/pages/:id", s.updatePage, admin)

	anyone := requireRole(RoleAdmin, RoleSupervisor, RoleAgent)
	v1.GET("/conversations", s.listConversations, anyone)
	v1.GET("/conversations/:id", s.getConversation, anyone)
	v1.GET("/conversations/:id/messages", s.listMessages, anyone)
	v1.GET("/conversations/:id/attachments/:attachment_id", s.getAttachment, anyone)
	v1.POST("/conversations/:id/messages", s.sendReply, agentsOwnAct("reply"))
	v1.POST(strings.TrimPrefix(uploadRoute, "/api/v1"), s.sendAttachment, agentsOwnAct("reply"))
	v1.POST("/conversations/:id/assign", s.assignConversation, reader)
	// Replying, setting aside and ending are the assigned agent's own acts; admins
	// and supervisors assign and close (roles: README, api/roles_test.go).
	v1.POST("/conversations/:id/waiting", s.setWaiting, agentsOwnAct("set it waiting"))
	v1.POST("/conversations/:id/end", s.endConversation, agentsOwnAct("end it"))
	v1.POST("/conversations/:id/close", s.closeConversation, anyone)

	s.registerWorkstreams(v1)
	s.registerAgents(v1)
	s.registerQueues(v1)
	s.registerRouting(v1)
	s.registerContacts(v1)
	s.registerSurveys(v1)
	s.registerMetrics(v1)
	s.registerPreSurveys(v1)
	s.registerHandover(v1)
	s.registerCodec(e)
	s.registerSurveyPage(e) // public: the link's token is the key
	v1.GET("/events", s.streamEvents, anyone)

	v1.POST("/api-keys", s.createAPIKey, admin)
	v1.GET("/api-keys", s.listAPIKeys, admin)
	v1.DELETE("/api-keys/:id", s.revokeAPIKey, admin)

	s.echo = e
	return s
}

// Echo exposes the router so the gateway can mount its routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP makes the Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// logRequests logs the route pattern, never the raw path: callback URLs hold
// the webhook key.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = apierror.From(err).Status
		}
		s.log.DebugContext(c.Request().Context(), "http", "method", c.Request().Method, "route", c.Path(),
			"status", status, "duration_ms", time.Since(start).Milliseconds())
		return err
	}
}

// bodyLimit answers 413 for declared or actual bodies over max, but for
// file uploads, whose handlers bound them (ownBodyLimit).
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ownBodyLimit(c) {
				return next(c)
			}
			r := c.Request()
			if r.ContentLength > max {
				return apierror.New(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", max)
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, max)
			return next(c)
		}
	}
}

//go:embed openapi.yaml
var openAPIDoc []byte

// OpenAPIDocument is the OpenAPI 3 description of every route.
func OpenAPIDocument() []byte { return openAPIDoc }

func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", openAPIDoc)
}
