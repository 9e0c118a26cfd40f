package messenger

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClassifySpecTable(t *testing.T) {
	tests := []struct {
		code, subcode int
		want          ErrorClass
	}{
		{10, 2018278, ClassOutsideWindow},
		{10, 2018065, ClassOutsideWindow},
		{10, 2018108, ClassUserUnavailable},
		{200, 1545041, ClassUserUnavailable},
		{551, 0, ClassUserUnavailable},
		{551, 1545041, ClassUserUnavailable},
		{230, 0, ClassPermission},
		{200, 2018028, ClassAppNotLive},
		{100, 0, ClassInvalidParameter},
		{100, 2018001, ClassInvalidParameter},
		{100, 2018109, ClassInvalidParameter},
		{100, 33, ClassInvalidParameter},
		{190, 0, ClassTokenInvalid},
		{190, 458, ClassTokenInvalid},
		{190, 459, ClassTokenInvalid},
		{190, 460, ClassTokenInvalid},
		{190, 463, ClassTokenInvalid},
		{190, 464, ClassTokenInvalid},
		{190, 467, ClassTokenInvalid},
		{10, 1893063, ClassPageRestricted},
		{1, 0, ClassTemporary},
		{2, 0, ClassTemporary},
		{1200, 0, ClassTemporary},
		{4, 0, ClassThrottled},
		{4, 2018022, ClassThrottled},
		{17, 0, ClassThrottled},
		{32, 0, ClassThrottled},
		{613, 0, ClassThrottled},
		{341, 0, ClassThrottled},
		{368, 0, ClassPolicyBlock},
		{368, 1390008, ClassPolicyBlock},
		// Code 10 and 200 with other subcodes are permission problems.
		{10, 0, ClassPermission},
		{10, 12345, ClassPermission},
		{200, 0, ClassPermission},
		{200, 2018278, ClassPermission},
		// Subcodes only count with their code.
		{1, 2018278, ClassTemporary},
		{0, 2018278, ClassUnknown},
		{0, 0, ClassUnknown},
		{3, 0, ClassUnknown},
		{80006, 0, ClassUnknown},
	}
	for _, tt := range tests {
		if got := Classify(tt.code, tt.subcode); got != tt.want {
			t.Errorf("Classify(%d, %d) = %s, want %s", tt.code, tt.subcode, got, tt.want)
		}
	}
}

func TestRetryableAndReason(t *testing.T) {
	all := []ErrorClass{
		ClassOutsideWindow, ClassUserUnavailable, ClassPermission, ClassAppNotLive,
		ClassInvalidParameter, ClassTokenInvalid, ClassPageRestricted, ClassTemporary,
		ClassThrottled, ClassPolicyBlock, ClassUnknown,
	}
	reasons := map[string]bool{}
	for _, c := range all {
		want := c == ClassTemporary || c == ClassThrottled
		if c.Retryable() != want {
			t.Errorf("%s.Retryable() = %v, want %v", c, c.Retryable(), want)
		}
		r := c.Reason()
		if r == "" || !strings.HasSuffix(r, ".") || reasons[r] {
			t.Errorf("%s.Reason() = %q: want a distinct sentence", c, r)
		}
		reasons[r] = true
	}
	if got := ClassOutsideWindow.Reason(); got != "Meta refused the message: it was sent outside the allowed messaging window." {
		t.Errorf("outside window reason = %q", got)
	}
}

// The class comes from the numbers, whatever the message says.
func TestGraphErrorClassIgnoresMessage(t *testing.T) {
	e := &GraphError{HTTPStatus: 400, Code: 100, Message: "(#10) This message is sent outside of allowed window. Rate limit temporarily"}
	if e.Class() != ClassInvalidParameter {
		t.Errorf("Class = %s", e.Class())
	}
}

func TestGraphErrorStatusOnly(t *testing.T) {
	for status, want := range map[int]ErrorClass{500: ClassTemporary, 502: ClassTemporary, 503: ClassTemporary, 400: ClassUnknown, 404: ClassUnknown, 429: ClassUnknown} {
		if got := (&GraphError{HTTPStatus: status}).Class(); got != want {
			t.Errorf("HTTP %d without code: %s, want %s", status, got, want)
		}
	}
	// A Graph body on a 5xx is classified by its code.
	if got := (&GraphError{HTTPStatus: 500, Code: 100}).Class(); got != ClassInvalidParameter {
		t.Errorf("500 with code 100: %s", got)
	}
}

func TestGraphErrorString(t *testing.T) {
	e := &GraphError{HTTPStatus: 400, Code: 10, Subcode: 2018278, Type: "OAuthException", Message: "(#10) outside window", FBTraceID: "AbC123"}
	got := e.Error()
	for _, want := range []string{"10/2018278", "HTTP 400", "OAuthException", "(#10) outside window", "AbC123"} {
		if !strings.Contains(got, want) {
			t.Errorf("Error() = %q lacks %q", got, want)
		}
	}
	if got := (&GraphError{HTTPStatus: 502, Message: "bad gateway"}).Error(); got != "messenger: graph API error (HTTP 502): bad gateway" {
		t.Errorf("Error() = %q", got)
	}
}

func TestAsGraphError(t *testing.T) {
	ge := &GraphError{HTTPStatus: 400, Code: 190}
	wrapped := fmt.Errorf("send reply: %w", ge)
	got, ok := AsGraphError(wrapped)
	if !ok || got != ge {
		t.Fatalf("AsGraphError = %v, %v", got, ok)
	}
	if _, ok := AsGraphError(errors.New("network")); ok {
		t.Error("AsGraphError found a GraphError in a plain error")
	}
	if _, ok := AsGraphError(nil); ok {
		t.Error("AsGraphError(nil) = true")
	}
}
