package api_test

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"parley/api"
	"parley/gateway"
)

type openAPIDoc struct {
	OpenAPI string                          `yaml:"openapi"`
	Paths   map[string]map[string]yaml.Node `yaml:"paths"`
}

var echoParam = regexp.MustCompile(`:([a-zA-Z_]+)`)

// Every route the server answers must be described, and nothing described may be missing.
func TestEveryRouteIsInTheOpenAPIDocument(t *testing.T) {
	var doc openAPIDoc
	if err := yaml.Unmarshal(api.OpenAPIDocument(), &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q, want 3.x", doc.OpenAPI)
	}
	srv := api.New(api.Options{})
	gateway.New(gateway.Options{}).Register(srv.Echo())

	served := map[string]bool{}
	for _, r := range srv.Echo().Routes() {
		if strings.HasPrefix(r.Method, "echo_route_") || strings.HasSuffix(r.Path, "/*") {
			continue
		}
		path := echoParam.ReplaceAllString(r.Path, "{$1}")
		key := strings.ToLower(r.Method) + " " + path
		served[key] = true
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %s %s is not in openapi.yaml", r.Method, path)
			continue
		}
		if _, ok := ops[strings.ToLower(r.Method)]; !ok {
			t.Errorf("route %s %s: the path is in openapi.yaml but not the method", r.Method, path)
		}
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(documented)
	for _, d := range documented {
		if !served[d] {
			t.Errorf("openapi.yaml describes %s, which the server does not serve", d)
		}
	}
	if len(served) < 20 {
		t.Errorf("only %d routes found; the route listing is broken", len(served))
	}
}
