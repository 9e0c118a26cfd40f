package routing

import (
	"fmt"
	"time"
)

func (o Overflow) validate(queueExists func(string) bool) error {
	const path = "overflow"
	if a := o.OutOfHours; a != nil {
		if err := validateAction(path+".out_of_hours", *a, true, queueExists); err != nil {
			return err
		}
	}
	if m := o.MaxWaiting; m != nil {
		if m.Count < 0 {
			return &FieldError{Field: path + ".max_waiting.count", Message: fmt.Sprintf("must be 0 or more, got %d", m.Count)}
		}
		if err := validateAction(path+".max_waiting", m.OverflowAction, true, queueExists); err != nil {
			return err
		}
	}
	for _, w := range []struct {
		field       string
		v           *MaxWait
		queueAnyway bool
	}{
		{path + ".max_estimated_wait", o.MaxEstimatedWait, true},
		{path + ".while_queued", o.WhileQueued, false}, // queued already
	} {
		if w.v == nil {
			continue
		}
		if w.v.After <= 0 {
			return &FieldError{Field: w.field + ".after", Message: fmt.Sprintf("must be a duration over 0s, such as \"10m\", got %q", w.v.After.D().String())}
		}
		if err := validateAction(w.field, w.v.OverflowAction, w.queueAnyway, queueExists); err != nil {
			return err
		}
	}
	return nil
}

func validateAction(path string, a OverflowAction, queueAnyway bool, queueExists func(string) bool) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: path + "." + field, Message: fmt.Sprintf(format, args...)}
	}
	switch a.Action {
	case ActionEnd, ActionTransfer:
	case ActionQueue:
		if !queueAnyway {
			return bad("action", "must be %s or %s (the conversation is queued already), got %q", ActionEnd, ActionTransfer, a.Action)
		}
	default:
		if queueAnyway {
			return bad("action", "must be %s, %s or %s, got %q", ActionEnd, ActionTransfer, ActionQueue, a.Action)
		}
		return bad("action", "must be %s or %s, got %q", ActionEnd, ActionTransfer, a.Action)
	}
	switch {
	case a.Action == ActionTransfer && a.QueueID == "":
		return bad("queue", "is required to transfer: the id of the queue to transfer to (GET /api/v1/queues lists them)")
	case a.Action == ActionTransfer && queueExists != nil && !queueExists(a.QueueID):
		return bad("queue", "no queue %q (GET /api/v1/queues lists them)", a.QueueID)
	case a.Action != ActionTransfer && a.QueueID != "":
		return bad("queue", "is only for action %s", ActionTransfer)
	}
	return nil
}

func (o Overflow) beforeQueueing(open bool, waiting int, estimated time.Duration) (string, OverflowAction, bool) {
	switch {
	case !open && o.OutOfHours != nil:
		return TriggerOutOfHours, *o.OutOfHours, true
	case o.MaxWaiting != nil && waiting > o.MaxWaiting.Count:
		return TriggerMaxWaiting, o.MaxWaiting.OverflowAction, true
	case o.MaxEstimatedWait != nil && estimated > o.MaxEstimatedWait.After.D():
		return TriggerEstimatedWait, o.MaxEstimatedWait.OverflowAction, true
	}
	return "", OverflowAction{}, false
}

// overflowing: a rule that queues anyway does not make the queue skip.
func (o Overflow) overflowing(waiting int, estimated time.Duration) bool {
	if m := o.MaxWaiting; m != nil && m.Action != ActionQueue && waiting > m.Count {
		return true
	}
	if m := o.MaxEstimatedWait; m != nil && m.Action != ActionQueue && estimated > m.After.D() {
		return true
	}
	return false
}
