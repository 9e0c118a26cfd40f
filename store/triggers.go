package store

// Automated message triggers of routing (issue 7). Their texts may hold
// {agent}, {queue} and {position}.
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
)
