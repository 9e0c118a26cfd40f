package testenv

import (
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Histories reads every run of a workflow (continued-as-new, terminated,
// the next conversation on the same ID) as Temporal keeps it: raw events,
// payloads as stored (the client decodes none of them).
func Histories(t testing.TB, c client.Client, workflowID string) []*historypb.History {
	t.Helper()
	ctx := t.Context()
	var runs []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", workflowID), NextPageToken: token})
		if err != nil {
			t.Fatalf("list runs of %s: %v", workflowID, err)
		}
		for _, ex := range resp.Executions {
			runs = append(runs, ex.GetExecution().GetRunId())
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	if len(runs) == 0 {
		runs = []string{""} // visibility lags: the latest run at least
	}
	var out []*historypb.History
	for _, run := range runs {
		h := &historypb.History{}
		it := c.GetWorkflowHistory(ctx, workflowID, run, false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s/%s: %v", workflowID, run, err)
			}
			h.Events = append(h.Events, ev)
		}
		out = append(out, h)
	}
	return out
}

// Payloads calls fn with every payload in m, at any depth, except search
// attributes (indexed in clear by design: ids, states, times).
func Payloads(m protoreflect.Message, fn func(*commonpb.Payload)) {
	switch v := m.Interface().(type) {
	case *commonpb.Payload:
		fn(v)
		return
	case *commonpb.SearchAttributes:
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				Payloads(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				Payloads(mv.Message(), fn)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			Payloads(v.Message(), fn)
		}
		return true
	})
}
