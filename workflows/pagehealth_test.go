package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/workflows"
)

// One run checks every page, alerts only the pages whose state changed,
// and goes on past a page whose check keeps failing.
func TestPageHealthChecksEveryPageAndAlertsOnlyChanges(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.PageHealthWorkflow, workflow.RegisterOptions{Name: workflows.PageHealthWorkflowName})
	reg := func(f any, name string) { env.RegisterActivityWithOptions(f, activity.RegisterOptions{Name: name}) }
	pages := []string{"p1", "p2", "p3"}
	for i := range 9 {
		pages = append(pages, fmt.Sprintf("q%d", i)) // more than one batch
	}
	reg(func(ctx context.Context) ([]string, error) { return pages, nil }, activities.ListPagesToCheckName)
	reg(func(ctx context.Context, ref string) (activities.PageHealthResult, error) {
		switch ref {
		case "p2":
			return activities.PageHealthResult{PageRef: ref, State: "expiring", PreviousState: "running", Changed: true, Reason: "data access ends"}, nil
		case "p3":
			return activities.PageHealthResult{}, errors.New("graph unreachable")
		}
		return activities.PageHealthResult{PageRef: ref, State: "running", PreviousState: "running"}, nil
	}, activities.CheckPageHealthName)
	var alerted []string
	reg(func(ctx context.Context, a activities.PageAlert) error {
		alerted = append(alerted, a.PageRef+":"+a.PreviousState+">"+a.State)
		return nil
	}, activities.SendPageAlertName)
	env.ExecuteWorkflow(workflows.PageHealthWorkflowName)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var sum workflows.PageHealthSummary
	if err := env.GetWorkflowResult(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.Checked != len(pages)-1 || sum.Alerts != 1 || !slices.Equal(sum.Problems, []string{"p2: expiring"}) || !slices.Equal(sum.Failed, []string{"p3"}) {
		t.Errorf("summary %+v, want %d checked, p2 expiring alerted, p3 failed", sum, len(pages)-1)
	}
	if !slices.Equal(alerted, []string{"p2:running>expiring"}) {
		t.Errorf("alerts %q, want p2's only", alerted)
	}
}
