package workflows_test

import (
	"strings"
	"testing"
	"time"

	"parley/activities"
	"parley/workflows"
)

// An agent's file is one message: the transcript entry carries the file
// (the lead's RecordTranscript makes it an attachment row) and no URL, the
// send carries the file to upload; with agent attachments off, or with
// text too, the reply is refused.
func TestAgentFileReply(t *testing.T) {
	h := newHarness(t)
	activeConversation(h)
	file := &activities.OutFile{Type: "image", BlobKey: "customers/p/u/out/abc", SHA256: "abc", ContentType: "image/png", Filename: "map.png", Size: 1234}
	reply := func(d time.Duration, label string, r workflows.ReplyRequest) {
		h.at(d, func() {
			r.ConversationID, r.AgentID = h.state().ConversationID, "agent-1"
			h.update(0, label, workflows.UpdateSendReply, r)
		})
	}
	reply(time.Hour, "file", workflows.ReplyRequest{File: file, AgentAttachments: true})
	reply(2*time.Hour, "off", workflows.ReplyRequest{File: file, AgentAttachments: false})
	reply(3*time.Hour, "both", workflows.ReplyRequest{File: file, Text: "see this", AgentAttachments: true})
	tooBig := *file
	tooBig.Size = 25<<20 + 1
	reply(4*time.Hour, "too big", workflows.ReplyRequest{File: &tooBig, AgentAttachments: true})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 5*time.Hour)
	h.env.ExecuteWorkflow(workflows.ConversationWorkflowName, h.input())

	msgs := h.reply("file").Messages
	if len(msgs) != 1 || msgs[0].Status != "sent" {
		t.Fatalf("file reply = %+v, want one sent message", msgs)
	}
	if len(h.sends) != 1 || h.sends[0].File == nil || *h.sends[0].File != *file || h.sends[0].AttachmentURL != "" || h.sends[0].Text != "" {
		t.Errorf("sends = %+v, want the file once", h.sends)
	}
	var out []activities.TranscriptEntry
	for _, e := range h.entries {
		if e.Direction == "out" {
			out = append(out, e)
		}
	}
	if len(out) != 1 || out[0].File == nil || *out[0].File != *file || out[0].AttachmentURL != "" || out[0].Sender != "agent" || out[0].AgentID != "agent-1" {
		t.Errorf("outbound entries = %+v, want the file's", out)
	}
	if got := h.refused("off"); got != workflows.AgentAttachmentsOff {
		t.Errorf("agent attachments off: %q", got)
	}
	if got := h.refused("both"); !strings.Contains(got, "two replies") {
		t.Errorf("text and file: %q", got)
	}
	if got := h.refused("too big"); !strings.Contains(got, "25 MB") {
		t.Errorf("too big: %q", got)
	}
}
