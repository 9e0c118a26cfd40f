package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
)

// PageHealthWorkflowName is the periodic page health check, started by the
// PageHealthScheduleID schedule (issue 10).
const (
	PageHealthWorkflowName = "PageHealth"
	PageHealthScheduleID   = "parley-page-health"
	// pageHealthParallel bounds the pages checked at once (Graph API calls).
	pageHealthParallel = 8
)

// PageHealthSummary is what one run found.
type PageHealthSummary struct {
	Checked int `json:"checked"`
	// Problems lists the pages not running, "<page>: <state>".
	Problems []string `json:"problems,omitempty"`
	// Alerts counts the changes of state alerted; Failed the pages whose
	// check failed (Meta or the store unreachable: tried again next run).
	Alerts       int      `json:"alerts"`
	Resubscribed int      `json:"resubscribed"`
	Failed       []string `json:"failed,omitempty"`
}

// PageHealthWorkflow checks every page (debug_token, subscribed_apps,
// silence) and alerts once per change of a page's state.
func PageHealthWorkflow(ctx workflow.Context) (PageHealthSummary, error) {
	var sum PageHealthSummary
	lctx := workflow.WithActivityOptions(ctx, storeActivity("list the pages to check"))
	var pages []string
	if err := workflow.ExecuteActivity(lctx, activities.ListPagesToCheckName).Get(ctx, &pages); err != nil {
		return sum, fmt.Errorf("list pages: %w", err)
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 3},
	}
	for start := 0; start < len(pages); start += pageHealthParallel {
		batch := pages[start:min(start+pageHealthParallel, len(pages))]
		futures := make([]workflow.Future, len(batch))
		for i, ref := range batch {
			o := opts
			o.Summary = "check page " + ref
			futures[i] = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), activities.CheckPageHealthName, ref)
		}
		for i, f := range futures {
			var r activities.PageHealthResult
			if err := f.Get(ctx, &r); err != nil {
				workflow.GetLogger(ctx).Warn("page health check failed", "page", batch[i], "error", err)
				sum.Failed = append(sum.Failed, batch[i])
				continue
			}
			if r.State == "deleted" {
				continue
			}
			sum.Checked++
			if r.Resubscribed {
				sum.Resubscribed++
			}
			if r.State != "running" {
				sum.Problems = append(sum.Problems, r.PageRef+": "+r.State)
			}
			if !r.Changed {
				continue
			}
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: 30 * time.Second,
				Summary:             fmt.Sprintf("alert: page %s %s -> %s", r.FacebookPageID, r.PreviousState, r.State),
				RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
			})
			alert := activities.PageAlert{PageRef: r.PageRef, FacebookPageID: r.FacebookPageID, Name: r.Name, State: r.State,
				PreviousState: r.PreviousState, Reason: r.Reason, At: workflow.Now(ctx).UTC()}
			if err := workflow.ExecuteActivity(actx, activities.SendPageAlertName, alert).Get(ctx, nil); err != nil {
				// Not recorded as alerted: the next run alerts again.
				workflow.GetLogger(ctx).Error("page alert failed", "page", r.PageRef, "error", err)
				continue
			}
			sum.Alerts++
		}
	}
	return sum, nil
}
