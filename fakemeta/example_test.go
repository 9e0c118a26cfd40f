package fakemeta_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"parley/fakemeta"
)

// A test stands the fake up as the Graph host, points it at the app's
// webhook, lets a customer write and answers through the Send API.
func Example() {
	fake := fakemeta.New(fakemeta.Options{})
	defer fake.Close()
	graph := httptest.NewServer(fake.Handler()) // the client's Graph base URL
	defer graph.Close()

	// The app's webhook: answers the handshake and acknowledges events.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("hub.verify_token") == "vt" {
			io.WriteString(w, r.URL.Query().Get("hub.challenge"))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer app.Close()

	fake.AddApp("1001", "app-secret")
	fake.AddPage("1001", "2002", "Acme", "PAGE_TOKEN")
	if err := fake.SetWebhook(context.Background(), "1001", app.URL, "vt", nil); err != nil {
		panic(err)
	}
	if _, err := fake.CustomerSends(context.Background(), "2002", "3003", "Hello?"); err != nil {
		panic(err)
	}

	q := url.Values{
		"access_token":    {"PAGE_TOKEN"},
		"appsecret_proof": {fakemeta.AppSecretProof("PAGE_TOKEN", "app-secret")},
	}
	resp, err := http.Post(graph.URL+"/v25.0/me/messages?"+q.Encode(), "application/json",
		strings.NewReader(`{"recipient":{"id":"3003"},"messaging_type":"RESPONSE","message":{"text":"Hi!"}}`))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fake.Wait() // the echo

	fmt.Println(resp.StatusCode, fake.Sent("2002", "3003")[0].Text, len(fake.Deliveries()))
	// Output: 200 Hi! 2
}
