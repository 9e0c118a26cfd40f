package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc/codes"

	"parley/workflows"
)

// SearchAttributeOptions tune EnsureSearchAttributes.
type SearchAttributeOptions struct {
	Namespace string
	// Register adds the missing attributes through the operator service
	// (self-hosted Temporal); false only checks that they exist (Temporal
	// Cloud, where they are added with tcld or the Cloud UI).
	Register bool
	Logger   *slog.Logger
}

// PermanentError is a Temporal error that retrying will not fix (refused
// credentials, unknown namespace, TLS, missing search attributes): the
// worker stops with it.
type PermanentError struct {
	Err  error
	Hint string // what to fix
}

func (e *PermanentError) Error() string {
	if e.Hint == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Hint
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent says whether err (from the Temporal client) will not go away
// by waiting: only an unreachable or overloaded server (unavailable,
// connection refused, deadline exceeded) is worth another attempt.
func IsPermanent(err error) bool {
	var p *PermanentError
	if errors.As(err, &p) {
		return true
	}
	permanent, _ := Classify(err, "")
	return permanent
}

// Classify says whether a Temporal client error is permanent and, if so,
// what to fix (namespace names the namespace in the hint).
func Classify(err error, namespace string) (permanent bool, hint string) {
	if err == nil || errors.Is(err, context.Canceled) {
		return false, ""
	}
	msg := strings.ToLower(err.Error())
	// A TLS handshake failure comes as Unavailable ("authentication
	// handshake failed: tls: ... x509: ..."), yet retrying cannot fix it.
	for _, s := range []string{"authentication handshake failed", "x509:", "tls: ", "certificate"} {
		if strings.Contains(msg, s) {
			return true, "TLS handshake with Temporal failed: check TEMPORAL_TLS_SERVER_CA_CERT_PATH (or _DATA), TEMPORAL_TLS_SERVER_NAME, " +
				"the client certificate and key (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH), or TEMPORAL_TLS=false for a server without TLS"
		}
	}
	var nsNotFound *serviceerror.NamespaceNotFound
	if errors.As(err, &nsNotFound) {
		return true, namespaceHint(namespace)
	}
	switch serviceerror.ToStatus(err).Code() {
	case codes.Unauthenticated:
		return true, "Temporal refused the credentials: check TEMPORAL_API_KEY (wrong or expired) or the mTLS client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH)"
	case codes.PermissionDenied:
		return true, fmt.Sprintf("Temporal refused the request: the API key or certificate has no access to namespace %q, or may not do this (on Temporal Cloud, set PARLEY_REGISTER_SEARCH_ATTRIBUTES=false and add the search attributes with tcld)", namespace)
	case codes.NotFound:
		return true, namespaceHint(namespace)
	case codes.InvalidArgument:
		return true, "Temporal refused the request as invalid: check PARLEY_TEMPORAL_NAMESPACE / TEMPORAL_NAMESPACE and the search attributes"
	case codes.Unimplemented:
		return true, "this Temporal endpoint does not offer the operator service: set PARLEY_REGISTER_SEARCH_ATTRIBUTES=false and create the search attributes yourself"
	case codes.FailedPrecondition:
		if strings.Contains(msg, "namespace") {
			return true, namespaceHint(namespace)
		}
	}
	return false, ""
}

func namespaceHint(namespace string) string {
	return fmt.Sprintf("namespace %q does not exist on this Temporal server: create it (temporal operator namespace create --namespace %s; "+
		"on Temporal Cloud the namespace is <name>.<account>) or set PARLEY_TEMPORAL_NAMESPACE / TEMPORAL_NAMESPACE", namespace, namespace)
}

// permanent wraps err as a PermanentError when Classify says so.
func permanent(err error, namespace string, extra string) error {
	if p, hint := Classify(err, namespace); p {
		if extra != "" {
			hint += "\n" + extra
		}
		return &PermanentError{Err: err, Hint: hint}
	}
	return err
}

// EnsureSearchAttributes registers Parley's custom search attributes in the
// namespace, leaving those that already exist alone; with Register false
// it only checks that they exist. Errors that retrying cannot fix are
// *PermanentError (IsPermanent).
func EnsureSearchAttributes(ctx context.Context, c client.Client, o SearchAttributeOptions) error {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	have, err := listSearchAttributes(ctx, c, o)
	if err != nil {
		return err
	}
	var missing []string
	for _, k := range workflows.SearchAttributes() {
		t, ok := have[k.GetName()]
		switch {
		case !ok:
			missing = append(missing, k.GetName())
		case t != k.GetValueType():
			return &PermanentError{Err: fmt.Errorf("search attribute %s exists in namespace %s with type %s, Parley needs %s",
				k.GetName(), o.Namespace, searchAttributeTypeName(t), searchAttributeTypeName(k.GetValueType())),
				Hint: "Parley cannot use it: remove it (temporal operator search-attribute remove) and let Parley create it, or use another namespace"}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	if !o.Register {
		return &PermanentError{Err: fmt.Errorf("namespace %s lacks Parley's search attributes %s (PARLEY_REGISTER_SEARCH_ATTRIBUTES=false)",
			o.Namespace, strings.Join(missing, ", ")), Hint: SearchAttributesHelp(o.Namespace)}
	}
	add := map[string]enumspb.IndexedValueType{}
	for _, k := range workflows.SearchAttributes() {
		add[k.GetName()] = k.GetValueType()
	}
	for n := range add {
		if _, ok := have[n]; ok {
			delete(add, n)
		}
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: o.Namespace, SearchAttributes: add}); err != nil {
		return permanent(fmt.Errorf("add search attributes %s: %w", strings.Join(missing, ", "), err), o.Namespace, SearchAttributesHelp(o.Namespace))
	}
	logger.Info("registered search attributes", "namespace", o.Namespace, "names", missing)
	return nil
}

// listSearchAttributes lists the namespace's custom search attributes
// through the operator service. In check mode, an endpoint that does not
// allow the operator service (PermissionDenied, Unimplemented) is asked
// instead with a visibility query per attribute: an unknown attribute makes
// it InvalidArgument.
func listSearchAttributes(ctx context.Context, c client.Client, o SearchAttributeOptions) (map[string]enumspb.IndexedValueType, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: o.Namespace})
	if err == nil {
		return resp.GetCustomAttributes(), nil
	}
	code := serviceerror.ToStatus(err).Code()
	if o.Register || (code != codes.PermissionDenied && code != codes.Unimplemented) {
		return nil, permanent(fmt.Errorf("list search attributes: %w", err), o.Namespace, "")
	}
	have := map[string]enumspb.IndexedValueType{}
	for _, k := range workflows.SearchAttributes() {
		_, err := c.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: o.Namespace, Query: probeQuery(k.GetName(), k.GetValueType())})
		if err == nil {
			have[k.GetName()] = k.GetValueType() // the type is not known this way; a wrong one fails the query
			continue
		}
		if serviceerror.ToStatus(err).Code() == codes.InvalidArgument {
			continue // unknown (or of another type)
		}
		return nil, permanent(fmt.Errorf("check search attribute %s: %w", k.GetName(), err), o.Namespace, "")
	}
	return have, nil
}

func probeQuery(name string, t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return name + " > '2000-01-01T00:00:00Z'"
	case enumspb.INDEXED_VALUE_TYPE_INT, enumspb.INDEXED_VALUE_TYPE_DOUBLE:
		return name + " = 0"
	case enumspb.INDEXED_VALUE_TYPE_BOOL:
		return name + " = true"
	}
	return name + " = 'parley-probe'"
}

// SearchAttributesHelp lists Parley's search attributes with their types
// and the commands that create them.
func SearchAttributesHelp(namespace string) string {
	var b strings.Builder
	b.WriteString("Parley needs these search attributes in namespace " + namespace + ":\n")
	var tcld []string
	byType := map[string][]string{}
	var types []string
	for _, k := range workflows.SearchAttributes() {
		t := searchAttributeTypeName(k.GetValueType())
		fmt.Fprintf(&b, "  %s %s\n", k.GetName(), t)
		tcld = append(tcld, fmt.Sprintf("--search-attribute %q", k.GetName()+"="+t))
		if _, ok := byType[t]; !ok {
			types = append(types, t)
		}
		byType[t] = append(byType[t], "--name "+k.GetName())
	}
	b.WriteString("Temporal Cloud: tcld namespace search-attributes add --namespace " + namespace + " " + strings.Join(tcld, " ") + "\n")
	// The temporal CLI takes one --type for all the --name of a command.
	for _, t := range types {
		b.WriteString("Self-hosted:    temporal operator search-attribute create --namespace " + namespace + " --type " + t + " " + strings.Join(byType[t], " ") + "\n")
	}
	b.WriteString("or let the worker register them (PARLEY_REGISTER_SEARCH_ATTRIBUTES=true, not possible on Temporal Cloud)")
	return b.String()
}

// CheckNamespace asks Temporal for the namespace once: nil when it
// answers, a *PermanentError (with what to fix) for refused credentials,
// TLS or an unknown namespace, the error as is when retrying may help
// (an API process that only sends signals waits for Temporal, yet stops at
// once on a mistake in its configuration).
func CheckNamespace(ctx context.Context, c client.Client, namespace string) error {
	_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return permanent(fmt.Errorf("describe namespace %s: %w", namespace, err), namespace, "")
	}
	return nil
}
