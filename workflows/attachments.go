package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
)

// versionKeepFiles: the conversation downloads what the customer sends
// into Parley's blob store (issue 8), since Meta's links expire.
const versionKeepFiles = "keep-customer-files"

// keepFiles downloads the files of the customer's messages just recorded.
// The activity skips what the workstream refused; a file that cannot be
// kept is marked failed there (with why), never failing the conversation.
func (c *conversation) keepFiles(ctx workflow.Context, rows []activities.TranscriptEntry) error {
	in := activities.KeepAttachmentsInput{ConversationID: c.state.ConversationID, FacebookPageID: c.in.FacebookPageID, PSID: c.in.PSID}
	for _, r := range rows {
		if r.Direction != "in" {
			continue
		}
		id := activities.MessageID(c.state.ConversationID, r.Seq)
		for _, a := range activities.InboundAttachments(r.Event) {
			if a.File {
				in.Files = append(in.Files, activities.FileToFetch{AttachmentID: activities.AttachmentID(id, a.Position), Type: a.Type, URL: a.URL})
			}
		}
	}
	if len(in.Files) == 0 {
		return nil
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		Summary:             fmt.Sprintf("keep the customer's %d file(s) before Meta's links expire", len(in.Files)),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    activities.KeepAttachmentsAttempts,
		},
	})
	if err := workflow.ExecuteActivity(actx, activities.KeepAttachmentsName, in).Get(ctx, nil); err != nil {
		// Only the store or the blob store failing for minutes ends here:
		// the transcript says the file is pending; the conversation goes on.
		workflow.GetLogger(ctx).Error("customer files not kept", "error", err)
	}
	return nil
}
