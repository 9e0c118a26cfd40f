package routing

import (
	"testing"
	"time"
)

func TestOverflowValidate(t *testing.T) {
	exists := queues("tech", "general")
	transfer := func(q string) OverflowAction { return OverflowAction{Action: ActionTransfer, QueueID: q} }
	end := OverflowAction{Action: ActionEnd}
	anyway := OverflowAction{Action: ActionQueue}
	wait := func(d time.Duration, a OverflowAction) *MaxWait {
		return &MaxWait{After: Duration(d), OverflowAction: a}
	}
	for _, o := range []Overflow{
		{},
		{OutOfHours: &anyway, MaxWaiting: &MaxWaiting{Count: 0, OverflowAction: end}},
		{OutOfHours: &end, MaxWaiting: &MaxWaiting{Count: 10, OverflowAction: transfer("tech")},
			MaxEstimatedWait: wait(10*time.Minute, anyway), WhileQueued: wait(time.Hour, transfer("general"))},
	} {
		if err := o.Validate(exists); err != nil {
			t.Errorf("%+v.Validate = %v, want nil", o, err)
		}
	}
	for _, tc := range []struct {
		what    string
		o       Overflow
		field   string
		message string
	}{
		{"no action", Overflow{OutOfHours: &OverflowAction{}}, "overflow.out_of_hours.action", "must be end, transfer or queue"},
		{"unknown action", Overflow{OutOfHours: &OverflowAction{Action: "drop"}}, "overflow.out_of_hours.action", `got "drop"`},
		{"transfer without a queue", Overflow{OutOfHours: &OverflowAction{Action: ActionTransfer}}, "overflow.out_of_hours.queue", "is required to transfer"},
		{"transfer to no queue", Overflow{OutOfHours: &OverflowAction{Action: ActionTransfer, QueueID: "gone"}}, "overflow.out_of_hours.queue", `no queue "gone"`},
		{"end with a queue", Overflow{OutOfHours: &OverflowAction{Action: ActionEnd, QueueID: "tech"}}, "overflow.out_of_hours.queue", "only for action transfer"},
		{"negative count", Overflow{MaxWaiting: &MaxWaiting{Count: -1, OverflowAction: end}}, "overflow.max_waiting.count", "0 or more"},
		{"max waiting action", Overflow{MaxWaiting: &MaxWaiting{Count: 3, OverflowAction: OverflowAction{Action: "wait"}}}, "overflow.max_waiting.action", "must be end, transfer or queue"},
		{"max waiting transfer", Overflow{MaxWaiting: &MaxWaiting{Count: 3, OverflowAction: transfer("gone")}}, "overflow.max_waiting.queue", "no queue"},
		{"queue anyway with a queue", Overflow{MaxWaiting: &MaxWaiting{Count: 3, OverflowAction: OverflowAction{Action: ActionQueue, QueueID: "tech"}}}, "overflow.max_waiting.queue", "only for action transfer"},
		{"zero estimated wait", Overflow{MaxEstimatedWait: wait(0, end)}, "overflow.max_estimated_wait.after", "over 0s"},
		{"negative estimated wait", Overflow{MaxEstimatedWait: wait(-time.Second, end)}, "overflow.max_estimated_wait.after", `got "-1s"`},
		{"estimated wait action", Overflow{MaxEstimatedWait: wait(time.Minute, OverflowAction{})}, "overflow.max_estimated_wait.action", "must be end, transfer or queue"},
		{"while queued: queue anyway", Overflow{WhileQueued: wait(time.Minute, anyway)}, "overflow.while_queued.action", "must be end or transfer (the conversation is queued already)"},
		{"while queued: unknown", Overflow{WhileQueued: wait(time.Minute, OverflowAction{Action: "x"})}, "overflow.while_queued.action", "must be end or transfer, got"},
		{"while queued: zero", Overflow{WhileQueued: wait(0, end)}, "overflow.while_queued.after", "over 0s"},
		{"while queued: transfer", Overflow{WhileQueued: wait(time.Minute, transfer(""))}, "overflow.while_queued.queue", "is required"},
		{"in order: out of hours first", Overflow{OutOfHours: &OverflowAction{}, WhileQueued: wait(0, end)}, "overflow.out_of_hours.action", ""},
		{"in order: count before action", Overflow{MaxWaiting: &MaxWaiting{Count: -1}}, "overflow.max_waiting.count", ""},
	} {
		t.Run(tc.what, func(t *testing.T) {
			wantFieldError(t, tc.o.Validate(exists), tc.field, tc.message)
		})
	}
}

func TestBeforeQueueingFiresTheFirstRuleInOrder(t *testing.T) {
	closed := OverflowAction{Action: ActionEnd}
	full := OverflowAction{Action: ActionTransfer, QueueID: "overflow"}
	slow := OverflowAction{Action: ActionQueue}
	all := Overflow{
		OutOfHours:       &closed,
		MaxWaiting:       &MaxWaiting{Count: 5, OverflowAction: full},
		MaxEstimatedWait: &MaxWait{After: Duration(10 * time.Minute), OverflowAction: slow},
		WhileQueued:      &MaxWait{After: Duration(time.Minute), OverflowAction: closed}, // not before queueing
	}
	for _, tc := range []struct {
		what      string
		o         Overflow
		open      bool
		waiting   int
		estimated time.Duration
		trigger   string
		action    OverflowAction
	}{
		{"nothing fires", all, true, 5, 10 * time.Minute, "", OverflowAction{}},
		{"out of hours", all, false, 0, 0, TriggerOutOfHours, closed},
		{"out of hours before the others", all, false, 100, time.Hour, TriggerOutOfHours, closed},
		{"closed without an out-of-hours rule", Overflow{MaxWaiting: all.MaxWaiting}, false, 0, 0, "", OverflowAction{}},
		{"closed, full, no out-of-hours rule", Overflow{MaxWaiting: all.MaxWaiting}, false, 6, 0, TriggerMaxWaiting, full},
		{"more than 5 waiting", all, true, 6, 0, TriggerMaxWaiting, full},
		{"full before slow", all, true, 6, time.Hour, TriggerMaxWaiting, full},
		{"count 0: one waiting is too many", Overflow{MaxWaiting: &MaxWaiting{Count: 0, OverflowAction: full}}, true, 1, 0, TriggerMaxWaiting, full},
		{"count 0: none waiting", Overflow{MaxWaiting: &MaxWaiting{Count: 0, OverflowAction: full}}, true, 0, 0, "", OverflowAction{}},
		{"slow", all, true, 0, 10*time.Minute + time.Second, TriggerEstimatedWait, slow},
		{"no rules", Overflow{}, false, 1000, time.Hour, "", OverflowAction{}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			trigger, action, ok := tc.o.BeforeQueueing(tc.open, tc.waiting, tc.estimated)
			if trigger != tc.trigger || action != tc.action || ok != (tc.trigger != "") {
				t.Fatalf("BeforeQueueing = %q %+v %v, want %q %+v", trigger, action, ok, tc.trigger, tc.action)
			}
		})
	}
}

func TestOverflowing(t *testing.T) {
	end := OverflowAction{Action: ActionEnd}
	anyway := OverflowAction{Action: ActionQueue}
	count := func(n int, a OverflowAction) *MaxWaiting { return &MaxWaiting{Count: n, OverflowAction: a} }
	est := func(d time.Duration, a OverflowAction) *MaxWait {
		return &MaxWait{After: Duration(d), OverflowAction: a}
	}
	for _, tc := range []struct {
		what      string
		o         Overflow
		waiting   int
		estimated time.Duration
		want      bool
	}{
		{"no rules", Overflow{}, 1000, time.Hour, false},
		{"out of hours is not overflowing", Overflow{OutOfHours: &end}, 0, 0, false},
		{"at the count", Overflow{MaxWaiting: count(3, end)}, 3, 0, false},
		{"over the count", Overflow{MaxWaiting: count(3, end)}, 4, 0, true},
		{"over the count, queue anyway", Overflow{MaxWaiting: count(3, anyway)}, 4, 0, false},
		{"at the estimate", Overflow{MaxEstimatedWait: est(time.Minute, end)}, 0, time.Minute, false},
		{"over the estimate", Overflow{MaxEstimatedWait: est(time.Minute, OverflowAction{Action: ActionTransfer, QueueID: "x"})}, 0, time.Minute + 1, true},
		{"over the estimate, queue anyway", Overflow{MaxEstimatedWait: est(time.Minute, anyway)}, 0, time.Hour, false},
		{"count queues anyway, estimate ends", Overflow{MaxWaiting: count(0, anyway), MaxEstimatedWait: est(time.Minute, end)}, 9, time.Hour, true},
		{"waited too long is not overflowing", Overflow{WhileQueued: est(time.Second, end)}, 0, time.Hour, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if got := tc.o.Overflowing(tc.waiting, tc.estimated); got != tc.want {
				t.Fatalf("Overflowing(%d, %v) = %v, want %v", tc.waiting, tc.estimated, got, tc.want)
			}
		})
	}
}
