package workflows_test

import (
	"fmt"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// converterDecode reads the first argument of a continue-as-new.
func converterDecode(can *workflow.ContinueAsNewError, out any) error {
	if can.Input == nil || len(can.Input.Payloads) == 0 {
		return fmt.Errorf("continue-as-new has no input")
	}
	return converter.GetDefaultDataConverter().FromPayload(can.Input.Payloads[0], out)
}
