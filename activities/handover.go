package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// ControlThreadName takes or passes the Messenger thread (handover protocol).
const ControlThreadName = "ControlThread"

// ThreadRefusedType marks Meta's refusal of a handover: not retried, told
// to the agent (409).
const ThreadRefusedType = "ThreadControlRefused"

// ThreadControlInput takes the thread (Take) or passes it to TargetAppID.
type ThreadControlInput struct {
	PageRef     string `json:"page_ref"`
	PSID        string `json:"psid"`
	Take        bool   `json:"take"`
	TargetAppID string `json:"target_app_id,omitempty"`
	Metadata    string `json:"metadata,omitempty"`
}

// ControlThread calls Meta's take_thread_control or pass_thread_control.
// Meta's refusals (by code and subcode) fail for good with the reason;
// temporary errors and throttling are retried.
func (a *Sender) ControlThread(ctx context.Context, in ThreadControlInput) error {
	_, auth, err := a.pageAuth(ctx, in.PageRef)
	if err != nil {
		return err
	}
	if in.Take {
		err = a.Graph.TakeThreadControl(ctx, auth, in.PSID, in.Metadata)
	} else {
		err = a.Graph.PassThreadControl(ctx, auth, in.PSID, in.TargetAppID, in.Metadata)
	}
	if ge := pageRefusal(err); ge != nil {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Meta refused (code %d, subcode %d, %s): %s", ge.Code, ge.Subcode, ge.Class(), ge.Message), ThreadRefusedType, nil)
	}
	return err
}
