package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// decode reads a JSON body strictly: JSON content type (415), at most
// MaxBodyBytes (413), no unknown fields and right types (400 naming the field).
func decode(c echo.Context, dst any) error {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return apierror.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json (got %q)", ct)
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apierror.New(http.StatusRequestEntityTooLarge, "payload_too_large", "request body exceeds %d bytes", MaxBodyBytes)
		}
		return apierror.New(http.StatusBadRequest, "bad_request", "could not read the body")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return apierror.New(http.StatusBadRequest, "invalid_json", "the body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apierror.New(http.StatusBadRequest, "invalid_json", "the body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apierror.New(http.StatusBadRequest, "invalid_json", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apierror.New(http.StatusBadRequest, "invalid_json", "the body must be a JSON object")
		}
		return apierror.InvalidField(field, "must be a %s, not a JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierror.New(http.StatusBadRequest, "invalid_json", "the JSON body ends too early")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		return apierror.InvalidField(f, "unknown field")
	}
	return apierror.New(http.StatusBadRequest, "invalid_json", "%v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "int", "int64", "int32", "float64":
		return "number"
	case "slice":
		return "array"
	}
	return "object"
}

// queryInt reads an optional positive integer query parameter.
func queryInt(c echo.Context, name string, def, max int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, apierror.InvalidField(name, "must be a whole number from 1 to %d", max)
	}
	return n, nil
}

// required checks a non-blank string field of at most max characters.
func required(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return apierror.InvalidField(field, "is required")
	}
	if len([]rune(v)) > max {
		return apierror.InvalidField(field, "must be at most %d characters", max)
	}
	return nil
}

// digits checks a Facebook numeric id.
func digits(field, v string) error {
	if err := required(field, v, 64); err != nil {
		return err
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return apierror.InvalidField(field, "must be a numeric Facebook id, got %q", v)
		}
	}
	return nil
}

// storeError maps the store's sentinel errors to HTTP errors.
func storeError(err error, kind, id string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return apierror.NotFound(kind, id)
	case errors.Is(err, store.ErrConflict):
		return &apierror.Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("%s %s conflicts with an existing one", kind, id), Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &apierror.Error{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error(), Err: err}
	}
	return apierror.Internal(fmt.Errorf("%s %s: %w", kind, id, err))
}
