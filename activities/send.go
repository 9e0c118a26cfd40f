package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"parley/blobs"
	"parley/messenger"
	"parley/ratelimit"
	"parley/routing"
	"parley/store"
)

// Activity names of the sending side.
const (
	SendMessageName          = "SendMessage"
	MarkMessageSentName      = "MarkMessageSent"
	MarkMessageFailedName    = "MarkMessageFailed"
	MarkPageTokenInvalidName = "MarkPageTokenInvalid"
	LoadSettingsName         = "LoadSettings"
)

// MetadataPrefix marks the metadata of messages Parley sends, so that
// their echoes confirm them instead of being recorded again.
const MetadataPrefix = "parley:"

// Metadata is the metadata sent with Parley's message id.
func Metadata(messageID string) string { return MetadataPrefix + messageID }

// MessageIDFromMetadata returns the Parley message id an echo confirms.
func MessageIDFromMetadata(metadata string) (string, bool) {
	id, ok := strings.CutPrefix(metadata, MetadataPrefix)
	return id, ok && id != ""
}

// SendInput is one message to send through the Send API.
type SendInput struct {
	MessageID      string `json:"message_id"`
	PageRef        string `json:"page_ref"`
	FacebookPageID string `json:"facebook_page_id"`
	PSID           string `json:"psid"`
	Text           string `json:"text,omitempty"`
	AttachmentType string `json:"attachment_type,omitempty"`
	AttachmentURL  string `json:"attachment_url,omitempty"`
	MessagingType  string `json:"messaging_type"`
	Tag            string `json:"tag,omitempty"`
	// File is a file in the blob store, sent by upload: by the
	// attachment_id of the Attachment Upload API (cached per page, SHA-256
	// and type). Empty for text and for attachments by URL.
	File *OutFile `json:"file,omitempty"`
	// QuickReplies go with a text (the post-survey's rating buttons).
	QuickReplies []messenger.QuickReply `json:"quick_replies,omitempty"`
}

// Send outcomes.
const (
	// OutcomeSent: Meta accepted the message.
	OutcomeSent = "sent"
	// OutcomeRefused: Meta refused it for good; do not retry.
	OutcomeRefused = "refused"
	// OutcomeRetry: Meta refused it for now (throttled): it was not sent;
	// retry after a pause.
	OutcomeRetry = "retry"
	// OutcomeUnknown: we cannot tell whether Meta accepted it (network
	// error, 5xx, temporary error). Wait for its echo before retrying.
	OutcomeUnknown = "unknown"
	// OutcomeDelayed: the page's send limiter held it back (Meta's rate,
	// or a pause while Meta throttles the page): Meta was not called; send
	// again after RetryAfter.
	OutcomeDelayed = "delayed"
)

// maxLimiterWait is the longest the send activity itself waits for the
// page's limiter; a longer wait goes back to the workflow as a timer.
const maxLimiterWait = time.Second

// throttlePause is how long a page's sends pause when Meta throttles it
// without saying for how long.
const throttlePause = time.Minute

// SendOutcome is what happened to one Send API call.
type SendOutcome struct {
	Outcome string `json:"outcome"`
	MID     string `json:"mid,omitempty"`
	Code    int    `json:"code,omitempty"`
	Subcode int    `json:"subcode,omitempty"`
	Class   string `json:"class,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// RetryAfter: when delayed or throttled, how long the page's sends wait.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
}

// Sender sends messages through the Graph API.
type Sender struct {
	Store *store.Store
	Blobs *blobs.Store
	Graph *messenger.Client
	Log   *slog.Logger
	// PublicURL is Parley's public base URL (survey links).
	PublicURL string
	// MaxThrottlePause caps a throttled page's pause (0: none); demos and
	// tests shorten it.
	MaxThrottlePause time.Duration
}

// SendMessage makes ONE Send API call and classifies Meta's answer by code
// and subcode. It writes nothing, so that a retried activity can never mean
// a message sent twice: the workflow decides about retries.
//
// Errors are only those before Meta was called: SendNotAttemptedErrorType
// (retry) or SendImpossibleErrorType (permanent, with the reason). Anything
// else the workflow sees (a timeout, a worker that died) may have reached
// Meta.
func (a *Sender) SendMessage(ctx context.Context, in SendInput) (SendOutcome, error) {
	_, auth, err := a.pageAuth(ctx, in.PageRef)
	if err != nil {
		return SendOutcome{}, notAttempted(err, "the page or its account was deleted from Parley", "page %s", in.PageRef)
	}
	if in.File != nil {
		return a.sendFile(ctx, auth, in)
	}
	msg := &messenger.OutMessage{Text: in.Text, QuickReplies: in.QuickReplies, Metadata: Metadata(in.MessageID)}
	if in.AttachmentURL != "" {
		msg = &messenger.OutMessage{
			Attachment: &messenger.OutAttachment{Type: in.AttachmentType, Payload: messenger.AttachmentPayload{URL: in.AttachmentURL}},
			Metadata:   Metadata(in.MessageID),
		}
	}
	return a.send(ctx, auth, in, msg), nil
}

// send makes the Send API call of in with msg and classifies the answer;
// attrs are logged with it.
func (a *Sender) send(ctx context.Context, auth messenger.PageAuth, in SendInput, msg *messenger.OutMessage, attrs ...any) SendOutcome {
	req := messenger.SendRequest{
		Recipient:     messenger.Recipient{ID: in.PSID},
		MessagingType: in.MessagingType,
		Tag:           in.Tag,
		Message:       msg,
	}
	lane := ratelimit.LaneOf(in.AttachmentType)
	if in.File != nil {
		lane = ratelimit.LaneOf(in.File.Type)
	}
	if out, held := a.limit(ctx, in, lane); held {
		return out
	}
	res, err := a.Graph.Send(ctx, auth, req)
	out := classify(res, err)
	a.adviseLimiter(ctx, in, res, err, &out)
	a.log().InfoContext(ctx, "send api call", append([]any{"message", in.MessageID, "page", in.FacebookPageID, "psid", in.PSID,
		"messaging_type", in.MessagingType, "tag", in.Tag, "outcome", out.Outcome, "code", out.Code, "subcode", out.Subcode,
		"attempt", activity.GetInfo(ctx).Attempt}, attrs...)...)
	return out
}

// limit takes the call's place in the page's limiter, shared by every
// worker: a short wait is spent here, a longer one (or a pause while Meta
// throttles the page) goes back to the workflow as OutcomeDelayed. A
// limiter that cannot be read does not stop the send: Meta's own limits
// still apply, and throttling is handled when it comes.
func (a *Sender) limit(ctx context.Context, in SendInput, lane string) (SendOutcome, bool) {
	wait, why, err := a.Store.ReserveSend(ctx, in.PageRef, lane, time.Now())
	if err != nil {
		a.log().WarnContext(ctx, "send limiter unavailable; sending anyway", "page", in.PageRef, "err", err)
		return SendOutcome{}, false
	}
	if wait > maxLimiterWait {
		return SendOutcome{Outcome: OutcomeDelayed, RetryAfter: wait, Reason: "delayed by " + why}, true
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return SendOutcome{Outcome: OutcomeDelayed, RetryAfter: wait, Reason: "delayed by " + why}, true
		case <-t.C:
		}
	}
	return SendOutcome{}, false
}

// adviseLimiter applies Meta's X-Business-Use-Case-Usage advice: a
// throttled page pauses every worker's sends until Meta accepts calls
// again; a page whose budget is nearly spent is slowed down for a minute.
func (a *Sender) adviseLimiter(ctx context.Context, in SendInput, res messenger.SendResponse, err error, out *SendOutcome) {
	usage := res.Usage
	if ge, ok := messenger.AsGraphError(err); ok {
		usage = ge.Usage
	}
	now := time.Now()
	if out.Class == string(messenger.ClassThrottled) {
		pause := throttlePause
		if usage != nil && usage.RegainAccess > 0 {
			pause = usage.RegainAccess
		}
		if a.MaxThrottlePause > 0 {
			pause = min(pause, a.MaxThrottlePause)
		}
		out.RetryAfter = pause
		reason := fmt.Sprintf("Meta throttling the page (code %d), until %s", out.Code, now.Add(pause).UTC().Format(time.RFC3339))
		if perr := a.Store.PauseSends(ctx, in.PageRef, now.Add(pause), reason); perr != nil {
			a.log().WarnContext(ctx, "could not pause the page's sends", "page", in.PageRef, "err", perr)
		}
		a.log().WarnContext(ctx, "page throttled by Meta: sends paused", "page", in.FacebookPageID, "code", out.Code, "pause", pause.String())
		return
	}
	if usage != nil && usage.Percent >= 75 {
		if serr := a.Store.SlowSends(ctx, in.PageRef, ratelimit.FactorFor(usage.Percent), now.Add(time.Minute)); serr != nil {
			a.log().WarnContext(ctx, "could not slow the page's sends", "page", in.PageRef, "err", serr)
		}
	}
}

// pageAuth reads what a call on behalf of the page needs: ErrNotFound when
// the page (or its account) was deleted.
func (a *Sender) pageAuth(ctx context.Context, pageRef string) (store.Page, messenger.PageAuth, error) {
	return pageAuthOf(ctx, a.Store, pageRef)
}

// pageAuthOf is what calls to the Graph API on a page's behalf need.
func pageAuthOf(ctx context.Context, st *store.Store, pageRef string) (store.Page, messenger.PageAuth, error) {
	page, err := st.GetPage(ctx, pageRef)
	if err != nil {
		return page, messenger.PageAuth{}, err
	}
	token, err := st.PageAccessToken(ctx, page.ID)
	if err != nil {
		return page, messenger.PageAuth{}, fmt.Errorf("page token: %w", err)
	}
	secret, err := st.AccountAppSecret(ctx, page.AccountID)
	if err != nil {
		return page, messenger.PageAuth{}, fmt.Errorf("app secret: %w", err)
	}
	return page, messenger.PageAuth{PageID: page.PageID, AccessToken: token, AppSecret: secret}, nil
}

// Error types of SendMessage, for failures before Meta was called.
const (
	SendNotAttemptedErrorType = "SendNotAttempted"
	SendImpossibleErrorType   = "SendImpossible"
)

// notAttempted types a failure before the Graph call: gone is the reason
// when the store no longer has what the send needs (permanent).
func notAttempted(err error, gone, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, store.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(gone, SendImpossibleErrorType, fmt.Errorf("%s: %w", what, err))
	}
	if errors.Is(err, store.ErrInvalid) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", what, err), SendImpossibleErrorType, err)
	}
	return temporal.NewApplicationErrorWithCause(fmt.Sprintf("%s: %v", what, err), SendNotAttemptedErrorType, err)
}

func (a *Sender) log() *slog.Logger { return orDefault(a.Log) }

// orDefault is l, or slog's default logger when l is nil.
func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

func classify(res messenger.SendResponse, err error) SendOutcome {
	if err == nil {
		return SendOutcome{Outcome: OutcomeSent, MID: res.MessageID}
	}
	if errors.Is(err, messenger.ErrInvalidRequest) {
		return SendOutcome{Outcome: OutcomeRefused, Class: string(messenger.ClassInvalidParameter), Reason: "Parley refused to send an invalid message: " + err.Error()}
	}
	ge, ok := messenger.AsGraphError(err)
	if !ok {
		// Network error, timeout, or a 2xx we could not read: Meta may have
		// accepted the message.
		return SendOutcome{Outcome: OutcomeUnknown, Reason: "no clear answer from Meta: " + err.Error()}
	}
	class := ge.Class()
	out := SendOutcome{Code: ge.Code, Subcode: ge.Subcode, Class: string(class), Reason: class.Reason()}
	switch class {
	case messenger.ClassThrottled:
		out.Outcome = OutcomeRetry
	case messenger.ClassTemporary:
		// "An unknown error occurred", "service temporarily unavailable", 5xx:
		// the message may have gone through.
		out.Outcome = OutcomeUnknown
	default:
		out.Outcome = OutcomeRefused
	}
	return out
}

// MarkSentInput confirms a message.
type MarkSentInput struct {
	MessageID string    `json:"message_id"`
	MID       string    `json:"mid"`
	At        time.Time `json:"at"`
}

// MarkMessageSent records that Meta accepted a message; for an agent's
// message, the store also records the agent's first reply in the
// conversation (a conversation event, in the same transaction) for the
// supervisors' first-response time.
func (a *Sender) MarkMessageSent(ctx context.Context, in MarkSentInput) error {
	err := a.Store.MarkMessageSent(ctx, in.MessageID, in.MID, in.At)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// An echo of a message from another Parley database: nothing to confirm.
		a.log().WarnContext(ctx, "echo for an unknown Parley message", "message", in.MessageID)
		return nil
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrInvalid):
		// Already failed, sent under another mid, or not an outbound
		// message: retrying cannot change it.
		a.log().WarnContext(ctx, "message cannot be marked sent", "message", in.MessageID, "mid", in.MID, "err", err)
		return nil
	}
	return err
}

// MarkFailedInput records why a message was not sent.
type MarkFailedInput struct {
	MessageID string `json:"message_id"`
	Code      int    `json:"code,omitempty"`
	Subcode   int    `json:"subcode,omitempty"`
	Reason    string `json:"reason"`
}

// MarkMessageFailed records a message Meta refused, or Parley gave up on.
func (a *Sender) MarkMessageFailed(ctx context.Context, in MarkFailedInput) error {
	err := a.Store.MarkMessageFailed(ctx, in.MessageID, in.Code, in.Subcode, in.Reason)
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
		// Invalid input is not retried: it would fail forever.
		return temporal.NewNonRetryableApplicationError(err.Error(), "Invalid", err)
	}
	return err
}

// TokenInvalidInput flags a page whose token Meta refused (code 190).
type TokenInvalidInput struct {
	PageRef string `json:"page_ref"`
	Code    int    `json:"code"`
	Subcode int    `json:"subcode"`
	Reason  string `json:"reason"`
}

// MarkPageTokenInvalid flips the page to token_invalid so admins see it
// before customers do.
func (a *Sender) MarkPageTokenInvalid(ctx context.Context, in TokenInvalidInput) error {
	msg := fmt.Sprintf("the Send API refused the page access token (code %d, subcode %d): %s", in.Code, in.Subcode, in.Reason)
	if _, err := a.Store.RecordTokenCheck(ctx, in.PageRef, store.TokenCheck{At: time.Now().UTC(), Valid: false, Error: msg}); err != nil {
		return fmt.Errorf("mark page %s token invalid: %w", in.PageRef, err)
	}
	a.log().ErrorContext(ctx, "page token invalid: admins must rotate it", "page", in.PageRef, "code", in.Code, "subcode", in.Subcode)
	return nil
}

// Settings are the workstream settings the workflow applies.
type Settings struct {
	HumanAgentTag       bool `json:"human_agent_tag"`
	CustomerAttachments bool `json:"customer_attachments"`
	// AutoCreateContacts: a contact for each named customer linked to none.
	AutoCreateContacts bool `json:"auto_create_contacts,omitempty"`
	// StandbyOpens: messages to another app of the page open work too.
	StandbyOpens     bool          `json:"standby_opens,omitempty"`
	AgentAttachments bool          `json:"agent_attachments"`
	AutoCloseOpen    time.Duration `json:"auto_close_open"`
	AutoCloseActive  time.Duration `json:"auto_close_active"`
	AutoCloseWaiting time.Duration `json:"auto_close_waiting"`
	WrapUp           time.Duration `json:"wrap_up"`
	// EndedMessage is the automated message sent when the agent ends the
	// conversation ("" = none).
	EndedMessage string `json:"ended_message,omitempty"`
	// Routing is the workstream's distribution; nil: assigned by hand.
	Routing *routing.Distribution `json:"routing,omitempty"`
	// Messages are the enabled automated messages of routing, by trigger.
	Messages map[string]string `json:"messages,omitempty"`
	// Translations of Messages, by trigger then language (issue 9); the
	// customer's locale chooses (store.MessageText).
	Translations map[string]map[string]string `json:"translations,omitempty"`
	// PositionStep and PositionEvery rate-limit queue_position: announced
	// again when the position changed by at least PositionStep places, at
	// most every PositionEvery.
	PositionStep  int           `json:"position_step,omitempty"`
	PositionEvery time.Duration `json:"position_every,omitempty"`
	// PostSurvey is the post-conversation survey (issue 9); nil: none.
	PostSurvey *PostSurveySettings `json:"post_survey,omitempty"`
	// PreSurvey is the pre-conversation survey (issue 9); nil: none.
	PreSurvey *PreSurveySettings `json:"pre_survey,omitempty"`
}

// routingTriggers are the automated messages the workflow sends by trigger
// (routing's, and the privacy notice).
var routingTriggers = []string{store.TriggerAgentAssigned, store.TriggerQueuePosition, store.TriggerOutOfHours,
	store.TriggerOverflowEnd, store.TriggerNoAgent, store.TriggerPrivacyNotice,
	store.TriggerGreeting, store.TriggerHoliday, store.TriggerTransferAccepted}

// SettingsOf maps a workstream to the settings the workflow applies.
func SettingsOf(w store.Workstream) Settings {
	s := Settings{
		HumanAgentTag:       w.HumanAgentTag,
		CustomerAttachments: w.CustomerAttachments,
		AutoCreateContacts:  w.AutoCreateContacts,
		StandbyOpens:        w.StandbyOpensConversations,
		AgentAttachments:    w.AgentAttachments,
		AutoCloseOpen:       w.AutoCloseOpen,
		AutoCloseActive:     w.AutoCloseActive,
		AutoCloseWaiting:    w.AutoCloseWaiting,
		WrapUp:              w.WrapUpDuration,
	}
	if m, ok := w.AutomatedMessages[store.TriggerConversationEnded]; ok && m.Enabled {
		s.EndedMessage = m.Text
		if len(m.Translations) > 0 {
			s.Translations = map[string]map[string]string{store.TriggerConversationEnded: maps.Clone(m.Translations)}
		}
	}
	if w.Distribution != nil {
		d := w.Distribution.WithDefaults()
		s.Routing = &d
	}
	for _, t := range routingTriggers {
		if m, ok := w.AutomatedMessages[t]; ok && m.Enabled && m.Text != "" {
			if s.Messages == nil {
				s.Messages = map[string]string{}
			}
			s.Messages[t] = m.Text
			if len(m.Translations) > 0 {
				if s.Translations == nil {
					s.Translations = map[string]map[string]string{}
				}
				s.Translations[t] = maps.Clone(m.Translations)
			}
		}
	}
	if m := w.AutomatedMessages[store.TriggerQueuePosition]; m.Enabled {
		s.PositionStep = m.Step
		s.PositionEvery = time.Duration(m.EveryMinutes) * time.Minute
	}
	return s
}

// LoadSettings reads the page's workstream (or the defaults) now: settings
// apply when they are read, never frozen at conversation start.
func (a *Sender) LoadSettings(ctx context.Context, pageRef string) (Settings, error) {
	w, err := a.Store.EffectiveWorkstream(ctx, pageRef)
	if err != nil {
		return Settings{}, fmt.Errorf("workstream of page %s: %w", pageRef, err)
	}
	s, err := withPostSurvey(ctx, a.Store, pageRef, a.PublicURL, SettingsOf(w))
	if err != nil {
		return Settings{}, err
	}
	return withPreSurvey(ctx, a.Store, pageRef, s)
}
