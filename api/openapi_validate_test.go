package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"parley/api"
	"parley/testenv"
)

// oapiRouter finds the operation of a request in the OpenAPI document.
var oapiRouter routers.Router

// TestMain loads and validates the OpenAPI document, then has every
// request the api tests make, and every answer, checked against it: a
// field added, renamed or mistyped in the code or the document fails.
func TestMain(m *testing.M) {
	router, err := loadOpenAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi.yaml:", err)
		os.Exit(1)
	}
	oapiRouter = router
	testenv.Observer = validateExchange
	os.Exit(m.Run())
}

func loadOpenAPI() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPIDocument())
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("invalid: %w", err)
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if op.OperationID == "" {
				return nil, fmt.Errorf("%s %s has no operationId", method, path)
			}
		}
	}
	// Requests go to a test server on a random port.
	doc.Servers = nil
	return gorillamux.NewRouter(doc)
}

// validateExchange checks one request (when the server accepted it: tests
// send malformed requests on purpose) and its answer, status included.
func validateExchange(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) {
	t.Helper()
	if err := checkExchange(req, reqBody, status, header, respBody); err != nil {
		t.Errorf("%s %s -> %d does not match openapi.yaml: %v", req.Method, req.URL.Path, status, err)
	}
}

func checkExchange(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := oapiRouter.FindRoute(r)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil // a test asking for what does not exist, on purpose
		}
		return fmt.Errorf("no such operation: %w", err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if status < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return fmt.Errorf("request: %w", err)
		}
	}
	ropts := *opts
	// The document itself is YAML text, not a value to check.
	ropts.ExcludeResponseBody = route.Operation.OperationID == "getOpenAPIDocument"
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: &ropts}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	return nil
}

// The validation catches drift: the same real answer with a field renamed
// or mistyped is refused.
func TestOpenAPIValidationCatchesDrift(t *testing.T) {
	e := testenv.Start(t, testenv.Options{TemporalInMemory: true})
	acct := e.CreateAccount(appID, appSecret)
	req, err := http.NewRequest(http.MethodGet, e.URL+"/api/v1/accounts/"+acct.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.AdminKey)
	status, body := e.Do(http.MethodGet, "/api/v1/accounts/"+acct.ID, nil)
	h := http.Header{"Content-Type": {"application/json"}}
	if err := checkExchange(req, nil, status, h, body); err != nil {
		t.Fatalf("the real answer does not validate: %v", err)
	}
	for name, mutated := range map[string]string{
		"renamed":   strings.Replace(string(body), `"app_id"`, `"appId"`, 1),
		"mistyped":  strings.Replace(string(body), `"name":"`, `"name":7,"x":"`, 1),
		"undefined": strings.Replace(string(body), `{`, `{"surprise":true,`, 1),
	} {
		if err := checkExchange(req, nil, status, h, []byte(mutated)); err == nil {
			t.Errorf("%s field: %s validated", name, mutated)
		}
	}
	if err := checkExchange(req, nil, http.StatusTeapot, h, body); err == nil {
		t.Errorf("an undocumented status validated")
	}
}
