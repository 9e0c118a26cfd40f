package messenger

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Issue 6, defect 11: deleting a page unsubscribes the app from it.
func TestUnsubscribeApp(t *testing.T) {
	c, rec := fakeGraph(t, 200, `{"success":true}`)
	if err := c.UnsubscribeApp(context.Background(), testAuth); err != nil {
		t.Fatalf("UnsubscribeApp: %v", err)
	}
	if rec.method != http.MethodDelete || rec.path != "/v25.0/123/subscribed_apps" {
		t.Errorf("request = %s %s, want DELETE /v25.0/123/subscribed_apps", rec.method, rec.path)
	}
	assertPageAuth(t, rec.query)

	c, _ = fakeGraph(t, 200, `{"success":false}`)
	if err := c.UnsubscribeApp(context.Background(), testAuth); !errors.Is(err, ErrUnexpectedResponse) {
		t.Errorf("success false: %v", err)
	}
	// A revoked token cannot unsubscribe: the caller needs the class to say so.
	c, _ = fakeGraph(t, 400, `{"error":{"message":"Error validating access token: The session has been invalidated because the user changed their password.","type":"OAuthException","code":190,"error_subcode":460,"fbtrace_id":"Q"}}`)
	err := c.UnsubscribeApp(context.Background(), testAuth)
	if !isClass(err, ClassTokenInvalid) {
		t.Errorf("revoked token: %v, want class %s", err, ClassTokenInvalid)
	}
	if err != nil && strings.Contains(err.Error(), testToken) {
		t.Errorf("error leaks the token: %v", err)
	}
	if err := c.UnsubscribeApp(context.Background(), PageAuth{PageID: "123"}); err == nil {
		t.Error("no token: no error")
	}
}
