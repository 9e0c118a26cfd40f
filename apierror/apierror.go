// Package apierror is the one error shape of Parley's HTTP surfaces:
// {"error":{"code":"...","message":"...","field":"..."}} with the right status.
package apierror

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Error is an HTTP error with a stable machine code and a readable message.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault (400s), in dotted JSON form.
	Field string `json:"field,omitempty"`
	// Err is the cause, logged but never sent.
	Err error `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New builds an Error.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField is a 400 naming the bad field.
func InvalidField(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// NotFound is a 404 for a resource kind and id.
func NotFound(kind, id string) *Error {
	return New(http.StatusNotFound, "not_found", "%s %q not found", kind, id)
}

// Internal hides the cause from the client and keeps it for the log.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; it has been logged", Err: err}
}

type body struct {
	Error *Error `json:"error"`
}

// Handler is the Echo HTTPErrorHandler: every error leaves as the JSON shape.
func Handler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := From(err)
		attrs := []any{"method", c.Request().Method, "path", c.Path(), "status", e.Status, "code", e.Code}
		if e.Status >= 500 {
			logger.ErrorContext(c.Request().Context(), "request failed", append(attrs, "err", err)...)
		} else {
			logger.DebugContext(c.Request().Context(), "request refused", append(attrs, "message", e.Message)...)
		}
		var werr error
		if c.Request().Method == http.MethodHead {
			werr = c.NoContent(e.Status)
		} else {
			werr = c.JSON(e.Status, body{Error: e})
		}
		if werr != nil {
			logger.WarnContext(c.Request().Context(), "write error response", "err", werr)
		}
	}
}

// From maps any error to an *Error: ours as is, Echo's by status.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			msg = m
		}
		if msg == "" {
			msg = "error"
		}
		return &Error{Status: he.Code, Code: codeFor(he.Code), Message: strings.ToLower(msg[:1]) + msg[1:], Err: he.Internal}
	}
	return Internal(err)
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}
