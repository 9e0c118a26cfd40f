package messenger

import (
	"errors"
	"fmt"
	"strings"
)

// GraphError is an error answer of the Graph API: Meta's
// {"error":{"message","type","code","error_subcode","fbtrace_id"}} plus the
// HTTP status. A 5xx without a Graph error body is a GraphError with Code 0.
type GraphError struct {
	HTTPStatus int    `json:"http_status,omitempty"`
	Code       int    `json:"code,omitempty"`
	Subcode    int    `json:"subcode,omitempty"`
	Type       string `json:"type,omitempty"`
	Message    string `json:"message,omitempty"`
	FBTraceID  string `json:"fbtrace_id,omitempty"`
	// Usage is Meta's X-Business-Use-Case-Usage header, if it sent one
	// (with throttling: how long until calls are accepted again).
	Usage *Usage `json:"usage,omitempty"`
}

// Error includes the code/subcode, Meta's message and the fbtrace_id that
// Meta's support asks for. It never holds a token or secret: the client
// builds it without the request URL and scrubs them from Meta's message.
func (e *GraphError) Error() string {
	var b strings.Builder
	b.WriteString("messenger: graph API error")
	if e.Code != 0 {
		fmt.Fprintf(&b, " %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "/%d", e.Subcode)
		}
	}
	fmt.Fprintf(&b, " (HTTP %d", e.HTTPStatus)
	if e.Type != "" {
		b.WriteString(", " + e.Type)
	}
	b.WriteString(")")
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.FBTraceID != "" {
		b.WriteString(" [fbtrace_id " + e.FBTraceID + "]")
	}
	return b.String()
}

// Class classifies the error by code and subcode. A 5xx that carried no
// Graph error body (Code 0) is temporary.
func (e *GraphError) Class() ErrorClass {
	if e.Code == 0 && e.HTTPStatus >= 500 {
		return ClassTemporary
	}
	return Classify(e.Code, e.Subcode)
}

// ErrorClass is what a Graph API error means for Parley.
type ErrorClass string

// Error classes, from the spec's table of codes.
const (
	ClassOutsideWindow    ErrorClass = "outside_window"
	ClassUserUnavailable  ErrorClass = "user_unavailable"
	ClassPermission       ErrorClass = "permission_denied"
	ClassAppNotLive       ErrorClass = "app_not_live"
	ClassInvalidParameter ErrorClass = "invalid_parameter"
	ClassTokenInvalid     ErrorClass = "token_invalid"
	ClassPageRestricted   ErrorClass = "page_restricted"
	ClassTemporary        ErrorClass = "temporary"
	ClassThrottled        ErrorClass = "throttled"
	ClassPolicyBlock      ErrorClass = "policy_block"
	ClassUnknown          ErrorClass = "unknown"
)

// Classify maps a Graph error code and subcode to a class. It looks at the
// numbers only, never at Meta's message text, which changes and is localised.
func Classify(code, subcode int) ErrorClass {
	switch code {
	case 10:
		switch subcode {
		case 2018278, 2018065:
			return ClassOutsideWindow
		case 2018108:
			return ClassUserUnavailable
		case 1893063:
			return ClassPageRestricted
		}
		return ClassPermission
	case 200:
		switch subcode {
		case 1545041:
			return ClassUserUnavailable
		case 2018028:
			return ClassAppNotLive
		}
		return ClassPermission
	case 551:
		return ClassUserUnavailable
	case 230:
		return ClassPermission
	case 100:
		return ClassInvalidParameter
	case 190:
		return ClassTokenInvalid
	case 1, 2, 1200:
		return ClassTemporary
	case 4, 17, 32, 613, 341:
		return ClassThrottled
	case 368:
		return ClassPolicyBlock
	}
	return ClassUnknown
}

// Retryable reports whether sending the same request again later can
// succeed: only temporary failures and throttling.
func (c ErrorClass) Retryable() bool {
	return c == ClassTemporary || c == ClassThrottled
}

// Reason is a sentence for an agent or admin saying what went wrong.
func (c ErrorClass) Reason() string {
	switch c {
	case ClassOutsideWindow:
		return "Meta refused the message: it was sent outside the allowed messaging window."
	case ClassUserUnavailable:
		return "Meta refused the message: this person is not receiving messages from the page at the moment."
	case ClassPermission:
		return "Meta refused the request: the page or app lacks the permission to do this for this person."
	case ClassAppNotLive:
		return "Meta refused the message: the app is not live or pages_messaging is not approved, so only people with a role on the app can be reached."
	case ClassInvalidParameter:
		return "Meta rejected the request as invalid (a bad parameter, an unknown recipient or an attachment that is too large)."
	case ClassTokenInvalid:
		return "The page's access token is invalid or has expired: an administrator must reconnect the page."
	case ClassPageRestricted:
		return "Meta has temporarily restricted the page from sending messages."
	case ClassTemporary:
		return "Meta had a temporary problem; the request can be tried again shortly."
	case ClassThrottled:
		return "Meta is rate-limiting the page; the request can be tried again after a pause."
	case ClassPolicyBlock:
		return "Meta blocked the message for a policy reason; it should not be retried now."
	}
	return "Meta refused the request for a reason Parley does not recognise."
}

// AsGraphError finds a *GraphError in err's chain.
func AsGraphError(err error) (*GraphError, bool) {
	var ge *GraphError
	if errors.As(err, &ge) {
		return ge, true
	}
	return nil, false
}
