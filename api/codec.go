package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/payloadcodec"
)

// CodecPath is where Temporal's remote codec is served: Temporal Web
// decodes the encrypted payloads of a workflow's history through
// <CodecPath>/decode (payloadcodec).
const CodecPath = "/api/v1/temporal-codec"

// CodecEndpoint is the codec endpoint to give Temporal Web
// (--ui-codec-endpoint, or the UI's codec settings): Temporal Web cannot
// send an API key in a header, so the key is a path segment. Use a
// supervisor's key: whoever can read Temporal Web's settings can read it.
func CodecEndpoint(publicURL, apiKey string) string {
	return publicURL + CodecPath + "/k/" + apiKey
}

// registerCodec mounts the codec for admins and supervisors, the API key
// in the Authorization header (CodecPath/{operation}) or in the path
// (CodecPath/k/{key}/{operation}); operation is encode or decode. A
// browser's preflight (OPTIONS) carries no key: it is answered before
// routing, so that it is no route of the key-protected API. Requests are
// logged by route pattern, so the key in the path never reaches the log.
func (s *Server) registerCodec(e *echo.Echo) {
	var h http.Handler
	if s.opts.Codec != nil {
		h = s.opts.Codec.HTTPHandler()
	}
	serve := func(c echo.Context) error {
		if op := c.Param("operation"); op != "encode" && op != "decode" {
			return apierror.New(http.StatusNotFound, "not_found", "the codec's operations are encode and decode")
		}
		if h == nil {
			return apierror.New(http.StatusServiceUnavailable, "unavailable", "the Temporal codec is not configured in this process")
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
	cors := echo.WrapMiddleware(func(next http.Handler) http.Handler { return payloadcodec.CORS(s.opts.CodecOrigins, next) })
	reader := requireRole(RoleAdmin, RoleSupervisor)
	for _, path := range []string{CodecPath + "/:operation", CodecPath + "/k/:key/:operation"} {
		e.POST(path, serve, cors, keyFromPath, s.authenticate, reader)
	}
	// CORS answers preflights itself (204); the handler is never reached.
	preflight := payloadcodec.CORS(s.opts.CodecOrigins, http.NotFoundHandler())
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if r := c.Request(); r.Method == http.MethodOptions && strings.HasPrefix(r.URL.Path, CodecPath+"/") {
				preflight.ServeHTTP(c.Response(), r)
				return nil
			}
			return next(c)
		}
	})
}

// keyFromPath moves an API key given in the path to the Authorization
// header, where authenticate reads it; it wins over a header's (Temporal
// Web may send its own OIDC token there).
func keyFromPath(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if key := c.Param("key"); key != "" {
			c.Request().Header.Set("Authorization", "Bearer "+key)
		}
		return next(c)
	}
}
