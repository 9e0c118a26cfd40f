package store

// Automated message triggers of routing (issues 7 and 9). Their texts may
// hold the variables of Variables.
const (
	// TriggerAgentAssigned: an agent accepted, picked or was given the conversation.
	TriggerAgentAssigned = "agent_assigned"
	// TriggerQueuePosition: the conversation was queued, at {position}.
	TriggerQueuePosition = "queue_position"
	// TriggerOutOfHours: the chosen queue is closed.
	TriggerOutOfHours = "out_of_hours"
	// TriggerOverflowEnd: an overflow rule ended the conversation before queueing.
	TriggerOverflowEnd = "overflow_end"
	// TriggerNoAgent: no agent could be assigned while it waited.
	TriggerNoAgent = "no_agent_available"
	// TriggerPrivacyNotice: a new conversation starts ("this conversation
	// may be recorded..."), before routing (issue 8).
	TriggerPrivacyNotice = "privacy_notice"
	// TriggerGreeting: a new conversation starts; sent before the privacy
	// notice (issue 9).
	TriggerGreeting = "greeting"
	// TriggerHoliday: the chosen queue is closed for a holiday; sent
	// instead of out_of_hours.
	TriggerHoliday = "holiday"
	// TriggerTransferAccepted: a transfer to another queue or agent was
	// accepted.
	TriggerTransferAccepted = "transfer_accepted"
)
