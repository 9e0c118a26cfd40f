package workflows

import (
	"fmt"
	"time"

	"parley/messenger"
)

// Default window lengths (Meta's rules). Only demos and tests change them.
const (
	DefaultReplyWindow      = 24 * time.Hour
	DefaultHumanAgentWindow = 7 * 24 * time.Hour
)

// Windows are the lengths of Meta's messaging windows, counted from the
// customer's last message.
type Windows struct {
	Reply      time.Duration `json:"reply,omitempty"`
	HumanAgent time.Duration `json:"human_agent,omitempty"`
	// EdgeMargin allows for latency and clock skew at a window's end: a
	// message that would reach Meta within it after the window closed is
	// decided as if the window had closed.
	EdgeMargin time.Duration `json:"edge_margin,omitempty"`
}

// DefaultEdgeMargin is the margin at windows' ends.
const DefaultEdgeMargin = 2 * time.Second

// WithDefaults fills zero lengths with Meta's.
func (w Windows) WithDefaults() Windows {
	if w.Reply <= 0 {
		w.Reply = DefaultReplyWindow
	}
	if w.HumanAgent <= 0 {
		w.HumanAgent = DefaultHumanAgentWindow
	}
	return w
}

// Reply modes.
const (
	ModeResponse   = "response"
	ModeHumanAgent = "human_agent"
	ModeNone       = "none"
)

// Mode says what may be sent to the customer now, and how.
type Mode struct {
	Mode          string `json:"mode"`
	MessagingType string `json:"messaging_type,omitempty"`
	Tag           string `json:"tag,omitempty"`
	// Reason explains ModeNone in words an agent understands.
	Reason             string    `json:"reason,omitempty"`
	ReplyDeadline      time.Time `json:"reply_deadline,omitzero"`
	HumanAgentDeadline time.Time `json:"human_agent_deadline,omitzero"`
}

// ReplyMode applies Meta's rules: inside the reply window a message goes as
// RESPONSE, untagged; after it, only a human agent's reply, with the
// workstream's tag on, may go as MESSAGE_TAG/HUMAN_AGENT until the
// human-agent window closes. Automated messages are never tagged.
func ReplyMode(now time.Time, lastCustomerMessage *time.Time, w Windows, humanAgentTag, automated bool) Mode {
	w = w.WithDefaults()
	if lastCustomerMessage == nil {
		return Mode{Mode: ModeNone, Reason: "the customer has not written to the page yet, so nothing may be sent"}
	}
	m := Mode{ReplyDeadline: lastCustomerMessage.Add(w.Reply).UTC(), HumanAgentDeadline: lastCustomerMessage.Add(w.HumanAgent).UTC()}
	replyName := windowName(w.Reply)
	// Decided as Meta will see it: at arrival, up to the margin later.
	now = now.Add(max(w.EdgeMargin, 0))
	switch {
	case now.Before(m.ReplyDeadline):
		m.Mode, m.MessagingType = ModeResponse, messenger.MessagingTypeResponse
	case automated:
		m.Mode = ModeNone
		m.Reason = fmt.Sprintf("automated messages may only be sent inside the %s, which closed at %s", replyName, stamp(m.ReplyDeadline))
	case !humanAgentTag:
		m.Mode = ModeNone
		m.Reason = fmt.Sprintf("the %s closed at %s; the human-agent tag is off for this workstream", replyName, stamp(m.ReplyDeadline))
	case now.Before(m.HumanAgentDeadline):
		m.Mode, m.MessagingType, m.Tag = ModeHumanAgent, messenger.MessagingTypeMessageTag, messenger.TagHumanAgent
	default:
		m.Mode = ModeNone
		m.Reason = fmt.Sprintf("the %s closed at %s and the human-agent window (%s) at %s", replyName, stamp(m.ReplyDeadline), span(w.HumanAgent), stamp(m.HumanAgentDeadline))
	}
	return m
}

func windowName(d time.Duration) string {
	if d == DefaultReplyWindow {
		return "24-hour window"
	}
	return "reply window (" + span(d) + ")"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// span writes a duration as people say it: 7 days, 24 hours, 90 seconds.
func span(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	case d%time.Second == 0:
		return plural(int(d/time.Second), "second")
	}
	return d.String()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// AgentReplyMode is what an agent's reply would get now, the conversation's
// state included: only the agent of an active or waiting conversation may
// reply, inside Meta's windows.
func AgentReplyMode(state string, now time.Time, lastCustomerMessage *time.Time, w Windows, humanAgentTag bool) Mode {
	m := ReplyMode(now, lastCustomerMessage, w, humanAgentTag, false)
	var why string
	switch state {
	case StateActive, StateWaiting:
		return m
	case StateOpen:
		why = "no agent has the conversation yet: it must be assigned before anyone replies"
	case StateWrapUp:
		why = "the agent has ended the conversation (wrap-up): replies are closed"
	case StateClosed:
		why = "the conversation is closed"
	default:
		why = "the conversation is " + state
	}
	return Mode{Mode: ModeNone, Reason: why, ReplyDeadline: m.ReplyDeadline, HumanAgentDeadline: m.HumanAgentDeadline}
}
