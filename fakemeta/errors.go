package fakemeta

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Graph error types as Meta names them in error bodies.
const (
	typeOAuth        = "OAuthException"
	typeGraphMethod  = "GraphMethodException"
	defaultErrStatus = http.StatusBadRequest
)

// CatalogueEntry is one Graph error the fake knows how to answer: the codes
// of the spec's error table plus the few the fake itself needs (104, 2500,
// 2635, 100/33). HTTPStatus is the status the fake answers it with.
type CatalogueEntry struct {
	Code       int
	Subcode    int
	Type       string
	Message    string
	HTTPStatus int
}

type errKey struct{ code, subcode int }

// catalogue holds real-looking messages. Send API errors carry the "(#code)"
// prefix Meta puts on them; OAuth token errors do not (Meta's do not either).
//
// HTTP status: Meta answers almost every Graph error with 400, throttling
// (4, 17, 32, 613, 341) included. The generic "unknown"/"unexpected" errors
// 1 and 2 are the ones seen with a 500, so the fake uses 500 for them and
// 400 for everything else.
var catalogue = map[errKey]CatalogueEntry{
	// Outside the allowed window.
	{10, 2018278}: {Message: "(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview"},
	{10, 2018065}: {Message: "(#10) This message is sent outside of allowed window. You need page_messaging_subscriptions permission to be able to do it."},
	// The person is not receiving messages from the page.
	{10, 2018108}:  {Message: "(#10) This person isn't receiving messages from you right now."},
	{200, 1545041}: {Message: "(#200) Message Not Sent: This person isn't available right now."},
	{551, 0}:       {Message: "(#551) This person isn't available right now."},
	{551, 1545041}: {Message: "(#551) This person isn't available right now."},
	// Permissions.
	{230, 0}:       {Message: "(#230) Requires pages_messaging permission to manage the object"},
	{200, 0}:       {Message: "(#200) Permissions error"},
	{200, 2018028}: {Message: "(#200) Cannot message users who are not admins, developers or testers of the app until pages_messaging permission is reviewed and the app is live."},
	// Invalid parameters.
	{100, 0}:       {Message: "(#100) Invalid parameter"},
	{100, 2018001}: {Message: "(#100) No matching user found"},
	{100, 2018109}: {Message: "(#100) Attachment size exceeds allowable limit"},
	{100, 33}:      {Type: typeGraphMethod, Message: "Unsupported get request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"},
	// Page token invalid or expired.
	{190, 0}:   {Message: "Invalid OAuth access token - Cannot parse access token"},
	{190, 458}: {Message: "Error validating access token: The user has not authorized the application."},
	{190, 459}: {Message: "Error validating access token: You cannot access the app till you log in to www.facebook.com and follow the instructions given."},
	{190, 460}: {Message: "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."},
	{190, 463}: {Message: "Error validating access token: Session has expired."},
	{190, 464}: {Message: "Error validating access token: Sessions for the user are not allowed because the user is not a confirmed user."},
	{190, 467}: {Message: "Error validating access token: The session is invalid because the user logged out."},
	{104, 0}:   {Message: "An access token is required to request this resource."},
	// Page restricted.
	{10, 1893063}: {Message: "(#10) This Page is temporarily restricted from sending messages."},
	{10, 0}:       {Message: "(#10) Application does not have permission for this action"},
	// Temporary.
	{1, 0}:    {Message: "An unknown error occurred", HTTPStatus: http.StatusInternalServerError},
	{2, 0}:    {Message: "An unexpected error has occurred. Please retry your request later.", HTTPStatus: http.StatusInternalServerError},
	{1200, 0}: {Message: "(#1200) Temporary send message failure. Please try again later"},
	// Throttled.
	{4, 0}:       {Message: "(#4) Application request limit reached"},
	{4, 2018022}: {Message: "(#4) Too many send requests. Please try again later."},
	{17, 0}:      {Message: "(#17) User request limit reached"},
	{32, 0}:      {Message: "(#32) Page request limit reached"},
	{613, 0}:     {Message: "(#613) Calls to this api have exceeded the rate limit."},
	{341, 0}:     {Message: "(#341) Application limit reached"},
	// Policy.
	{368, 0}: {Message: "(#368) The action attempted has been deemed abusive or is otherwise disallowed"},
	// Fake plumbing.
	{2500, 0}: {Message: "Unknown path components: %s"},
	{2635, 0}: {Message: "(#2635) You are calling a deprecated version of the Graph API. Please update to the latest version: %s."},
}

// Catalogue lists every error the fake knows, sorted by code then subcode,
// with defaults filled in. Messages holding "%s" are templates the fake
// fills with an id, a path or the version.
func Catalogue() []CatalogueEntry {
	out := make([]CatalogueEntry, 0, len(catalogue))
	for k := range catalogue {
		out = append(out, lookupError(k.code, k.subcode))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Code != out[j].Code {
			return out[i].Code < out[j].Code
		}
		return out[i].Subcode < out[j].Subcode
	})
	return out
}

// lookupError finds (code, subcode), then (code, 0), then a generic entry.
func lookupError(code, subcode int) CatalogueEntry {
	e, ok := catalogue[errKey{code, subcode}]
	if !ok {
		e, ok = catalogue[errKey{code, 0}]
	}
	if !ok {
		e = CatalogueEntry{Message: fmt.Sprintf("(#%d) An error occurred", code)}
	}
	e.Code, e.Subcode = code, subcode
	if e.Type == "" {
		e.Type = typeOAuth
	}
	if e.HTTPStatus == 0 {
		e.HTTPStatus = defaultErrStatus
	}
	return e
}

// isThrottle reports the codes Meta uses for rate limiting.
func isThrottle(code int) bool {
	switch code {
	case 4, 17, 32, 613, 341:
		return true
	}
	return false
}

// graphError is one error answer of the Graph side.
type graphError struct {
	status  int
	code    int
	subcode int
	typ     string
	message string
}

// newGraphError builds the catalogue's error; args fill a "%s" template.
func newGraphError(code, subcode int, args ...any) *graphError {
	e := lookupError(code, subcode)
	msg := e.Message
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	return &graphError{status: e.HTTPStatus, code: code, subcode: subcode, typ: e.Type, message: msg}
}

// errParam is a 100 "invalid parameter" error with a specific message; msg
// is written without the "(#100) " prefix.
func errParam(msg string, args ...any) *graphError {
	return &graphError{status: defaultErrStatus, code: 100, typ: typeOAuth, message: "(#100) " + fmt.Sprintf(msg, args...)}
}

// errUnsupported is Meta's 100/33 answer for an object it will not show.
func errUnsupported(method, id string) *graphError {
	e := newGraphError(100, 33, id)
	if method != http.MethodGet {
		e.message = "Unsupported " + strings.ToLower(method) + e.message[len("Unsupported get"):]
	}
	return e
}

// errorBody is the JSON shape of every Graph error.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	Code      int    `json:"code"`
	Subcode   int    `json:"error_subcode,omitempty"`
	FBTraceID string `json:"fbtrace_id"`
}
