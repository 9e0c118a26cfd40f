package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"parley/workflows"
)

// EnsurePageHealthSchedule creates the schedule that runs the page health
// check every `every` (issue 10), or brings an existing one to this
// interval and task queue: every process may call it at start.
func EnsurePageHealthSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	if every <= 0 {
		return errors.New("page health schedule: the interval must be positive")
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID:                       workflows.PageHealthScheduleID,
		Workflow:                 workflows.PageHealthWorkflowName,
		TaskQueue:                taskQueue,
		WorkflowExecutionTimeout: every,
	}
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID: workflows.PageHealthScheduleID, Spec: spec, Action: action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    fmt.Sprintf("Parley: checks every page (token, subscription, silence) every %s and alerts on changes", every),
	})
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		if err != nil {
			return fmt.Errorf("create the page health schedule: %w", err)
		}
		return nil
	}
	h := sc.GetHandle(ctx, workflows.PageHealthScheduleID)
	err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec, s.Action = &spec, action
		if s.Policy != nil {
			s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
		}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
	if err != nil {
		return fmt.Errorf("update the page health schedule: %w", err)
	}
	return nil
}
