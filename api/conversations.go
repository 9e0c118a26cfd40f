package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"parley/activities"
	"parley/apierror"
	"parley/routing"
	"parley/store"
	"parley/workflows"
)

type conversationJSON struct {
	ID                     string     `json:"id"`
	Page                   string     `json:"page"`
	AccountID              string     `json:"account_id"`
	PageID                 string     `json:"page_id"`
	PSID                   string     `json:"psid"`
	State                  string     `json:"state"`
	AgentID                string     `json:"agent_id,omitempty"`
	WorkflowID             string     `json:"workflow_id"`
	MessageCount           int        `json:"message_count"`
	LastCustomerMessageAt  *time.Time `json:"last_customer_message_at,omitempty"`
	PreviousConversationID string     `json:"previous_conversation_id,omitempty"`
	StartedAt              time.Time  `json:"started_at"`
	UpdatedAt              time.Time  `json:"updated_at"`
	ClosedAt               *time.Time `json:"closed_at,omitempty"`
	ClosedReason           string     `json:"closed_reason,omitempty"`
	// ThreadOwner is the app that controls the customer's Messenger thread:
	// "parley", or another app's id (handover protocol), since
	// ThreadOwnerSince (absent while Parley has it).
	ThreadOwner      string     `json:"thread_owner"`
	ThreadOwnerSince *time.Time `json:"thread_owner_since,omitempty"`
	// ThreadRequestedBy is the app that asked Parley for the thread
	// (request_thread_control) and has no answer yet.
	ThreadRequestedBy string `json:"thread_requested_by,omitempty"`
	// ReplyMode says what an agent may send now (single conversation only).
	ReplyMode *replyModeJSON `json:"reply_mode,omitempty"`
	// Queue is where it waits, while it does (single conversation only).
	Queue *conversationQueueJSON `json:"queue,omitempty"`
	// Customer is who writes (single conversation only).
	Customer *customerJSON `json:"customer,omitempty"`
	// PreSurvey is the pre-conversation survey's answers (single
	// conversation only; absent when none ran).
	PreSurvey *preSurveyResultJSON `json:"pre_survey,omitempty"`
}

// customerJSON is the customer as Meta's profile API gave it, if it did:
// an unknown name is absent, never a placeholder; the PSID is the identity.
type customerJSON struct {
	PSID                 string     `json:"psid"`
	NameKnown            bool       `json:"name_known"`
	Name                 string     `json:"name,omitempty"`
	FirstName            string     `json:"first_name,omitempty"`
	LastName             string     `json:"last_name,omitempty"`
	PictureURL           string     `json:"picture_url,omitempty"`
	ProfileStatus        string     `json:"profile_status"`
	ProfileError         string     `json:"profile_error,omitempty"`
	ProfileFetchedAt     *time.Time `json:"profile_fetched_at,omitempty"`
	NextProfileAttemptAt *time.Time `json:"next_profile_attempt_at,omitempty"`
	// Contact and PastConversations are the customer's summary, in a
	// conversation's response.
	Contact           *contactRefJSON        `json:"contact,omitempty"`
	PastConversations []pastConversationJSON `json:"past_conversations,omitempty"`
}

// contactRefJSON names the contact a customer is linked to.
type contactRefJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func toCustomerJSON(c store.Customer) *customerJSON {
	name := strings.TrimSpace(c.FirstName + " " + c.LastName)
	out := &customerJSON{PSID: c.PSID, NameKnown: name != "", Name: name, FirstName: c.FirstName, LastName: c.LastName,
		PictureURL: c.PictureURL, ProfileStatus: c.ProfileStatus, ProfileError: c.ProfileError}
	if !c.ProfileFetchedAt.IsZero() {
		out.ProfileFetchedAt = &c.ProfileFetchedAt
	}
	if !c.NextProfileAttemptAt.IsZero() {
		out.NextProfileAttemptAt = &c.NextProfileAttemptAt
	}
	return out
}

// conversationQueueJSON is a waiting conversation's place and open offer.
type conversationQueueJSON struct {
	QueueID        string     `json:"queue_id"`
	QueueName      string     `json:"queue_name"`
	Position       int        `json:"position"`
	Mode           string     `json:"mode"`
	WaitingSince   time.Time  `json:"waiting_since"`
	OfferedTo      string     `json:"offered_to,omitempty"`
	OfferExpiresAt *time.Time `json:"offer_expires_at,omitempty"`
	Note           string     `json:"note,omitempty"`
}

// replyModeJSON is Meta's rule applied now: response (inside 24 h),
// human_agent (24 h - 7 d with the workstream's tag on), or none, with why.
type replyModeJSON struct {
	Mode                   string     `json:"mode"`
	MessagingType          string     `json:"messaging_type,omitempty"`
	Tag                    string     `json:"tag,omitempty"`
	Reason                 string     `json:"reason,omitempty"`
	ReplyWindowEndsAt      *time.Time `json:"reply_window_ends_at,omitempty"`
	HumanAgentWindowEndsAt *time.Time `json:"human_agent_window_ends_at,omitempty"`
	HumanAgentTag          bool       `json:"human_agent_tag"`
}

func toConversationJSON(c store.Conversation) conversationJSON {
	return conversationJSON{
		ID: c.ID, Page: c.PageRef, AccountID: c.AccountID, PageID: c.FacebookPageID, PSID: c.PSID, State: c.State,
		AgentID: c.AgentID, WorkflowID: c.WorkflowID, MessageCount: c.MessageCount, LastCustomerMessageAt: c.LastCustomerMessageAt,
		PreviousConversationID: c.PreviousConversationID, StartedAt: c.StartedAt, UpdatedAt: c.UpdatedAt, ClosedAt: c.ClosedAt,
		ClosedReason: c.ClosedReason, ThreadOwner: activities.ThreadOwnerName(c.ThreadOwner), ThreadOwnerSince: c.ThreadOwnerSince,
		ThreadRequestedBy: c.ThreadRequestedBy,
	}
}

var conversationStates = []string{workflows.StateOpen, workflows.StateActive, workflows.StateWaiting, workflows.StateWrapUp, workflows.StateClosed}

func (s *Server) listConversations(c echo.Context) error {
	limit, err := queryInt(c, "limit", 50, 200)
	if err != nil {
		return err
	}
	f := store.ConversationFilter{
		FacebookPageID: c.QueryParam("page_id"),
		PSID:           c.QueryParam("psid"),
		State:          c.QueryParam("state"),
		AgentID:        c.QueryParam("agent_id"),
		Limit:          limit,
		Cursor:         c.QueryParam("cursor"),
	}
	if p := PrincipalFrom(c); p.Role == RoleAgent {
		// Agents see the conversations given to them.
		if f.AgentID != "" && f.AgentID != p.AgentID {
			return apierror.New(http.StatusForbidden, "forbidden", "agents see only their own conversations")
		}
		f.AgentID = p.AgentID
	}
	if f.FacebookPageID != "" {
		if err := digits("page_id", f.FacebookPageID); err != nil {
			return err
		}
	}
	if f.State != "" && !slices.Contains(conversationStates, f.State) {
		return apierror.InvalidField("state", "must be one of %v", conversationStates)
	}
	list, next, err := s.opts.Store.ListConversations(c.Request().Context(), f)
	if errors.Is(err, store.ErrInvalidCursor) {
		return apierror.InvalidField("cursor", "is not a cursor this API returned")
	}
	if err != nil {
		return storeError(err, "conversations", "")
	}
	out := make([]conversationJSON, 0, len(list))
	for _, cv := range list {
		out = append(out, toConversationJSON(cv))
	}
	body := map[string]any{"data": out}
	if next != "" {
		body["next_cursor"] = next
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) getConversation(c echo.Context) error {
	cv, err := s.readableConversation(c)
	if err != nil {
		return err
	}
	return s.conversationResponse(c, cv)
}

// conversationResponse answers with one conversation, its reply mode and
// its place in a queue.
func (s *Server) conversationResponse(c echo.Context, cv store.Conversation) error {
	ctx := c.Request().Context()
	out := toConversationJSON(cv)
	mode, err := s.replyMode(ctx, cv)
	if err != nil {
		return err
	}
	out.ReplyMode = &mode
	cust, err := s.opts.Store.GetCustomer(ctx, cv.PageRef, cv.PSID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		cust = store.Customer{PSID: cv.PSID, ProfileStatus: store.ProfileUnknown}
	case err != nil:
		return apierror.Internal(err)
	}
	out.Customer = toCustomerJSON(cust)
	if err := s.customerSummary(ctx, cv, out.Customer); err != nil {
		return err
	}
	q, queued, err := s.opts.Store.ConversationInQueue(ctx, cv.ID)
	if err != nil {
		return apierror.Internal(err)
	}
	if queued {
		qj := &conversationQueueJSON{QueueID: q.QueueID, QueueName: q.QueueName, Position: q.Position, Mode: q.Mode,
			WaitingSince: q.WaitingSince, OfferedTo: q.OfferedTo, Note: q.Note}
		if !q.OfferExpiresAt.IsZero() {
			qj.OfferExpiresAt = &q.OfferExpiresAt
		}
		out.Queue = qj
	}
	if out.PreSurvey, err = s.preSurveyOf(ctx, cv.ID); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// customerSummary adds the customer's contact, if linked, and its other
// conversations (of every customer of that contact).
func (s *Server) customerSummary(ctx context.Context, cv store.Conversation, out *customerJSON) error {
	ct, linked, err := s.opts.Store.ContactOfCustomer(ctx, cv.PageRef, cv.PSID)
	if err != nil {
		return apierror.Internal(err)
	}
	contactID := ""
	if linked {
		out.Contact = &contactRefJSON{ID: ct.ID, Name: ct.Name}
		contactID = ct.ID
	}
	past, err := s.opts.Store.CustomerConversations(ctx, contactID, cv.PageRef, cv.PSID)
	if err != nil {
		return apierror.Internal(err)
	}
	out.PastConversations = toPastConversations(past, cv.ID)
	return nil
}

// readableConversation is conversation, and also lets an agent read (not
// act on) a conversation offered to them, or waiting to be picked in one
// of their queues: what they need to decide.
func (s *Server) readableConversation(c echo.Context) (store.Conversation, error) {
	ctx := c.Request().Context()
	cv, err := s.loadConversation(c)
	if err != nil {
		return cv, err
	}
	p := PrincipalFrom(c)
	if p.Role != RoleAgent || cv.AgentID == p.AgentID {
		return cv, nil
	}
	q, queued, err := s.opts.Store.ConversationInQueue(ctx, cv.ID)
	if err != nil {
		return cv, apierror.Internal(err)
	}
	if queued && q.OfferedTo == p.AgentID {
		return cv, nil
	}
	if queued && q.Mode == routing.ModePick {
		mine, err := s.opts.Store.QueueIDsOfAgent(ctx, p.AgentID)
		if err != nil {
			return cv, apierror.Internal(err)
		}
		if slices.Contains(mine, q.QueueID) {
			return cv, nil
		}
	}
	return cv, apierror.NotFound("conversation", c.Param("id"))
}

// conversation loads the conversation of the URL, which an agent may see
// only when it is given to them.
func (s *Server) conversation(c echo.Context) (store.Conversation, error) {
	cv, err := s.loadConversation(c)
	if err != nil {
		return cv, err
	}
	if p := PrincipalFrom(c); p.Role == RoleAgent && cv.AgentID != p.AgentID {
		return cv, apierror.NotFound("conversation", c.Param("id"))
	}
	return cv, nil
}

// workstream is the page's workstream now, or the defaults.
func (s *Server) workstream(ctx context.Context, pageRef string) (store.Workstream, error) {
	w, err := s.opts.Store.EffectiveWorkstream(ctx, pageRef)
	if err != nil {
		return w, apierror.Internal(fmt.Errorf("workstream of page %s: %w", pageRef, err))
	}
	return w, nil
}

func (s *Server) replyMode(ctx context.Context, cv store.Conversation) (replyModeJSON, error) {
	w, err := s.workstream(ctx, cv.PageRef)
	if err != nil {
		return replyModeJSON{}, err
	}
	// What a reply would get now, the state included.
	m := workflows.AgentReplyMode(cv.State, s.opts.Now(), cv.LastCustomerMessageAt, s.opts.Windows, w.HumanAgentTag)
	var since time.Time
	if cv.ThreadOwnerSince != nil {
		since = *cv.ThreadOwnerSince
	}
	m = workflows.ThreadMode(m, cv.ThreadOwner, since, cv.ID)
	out := replyModeJSON{Mode: m.Mode, MessagingType: m.MessagingType, Tag: m.Tag, Reason: m.Reason, HumanAgentTag: w.HumanAgentTag}
	if !m.ReplyDeadline.IsZero() {
		out.ReplyWindowEndsAt, out.HumanAgentWindowEndsAt = &m.ReplyDeadline, &m.HumanAgentDeadline
	}
	return out, nil
}

type messageJSON struct {
	ID            string          `json:"id"`
	Seq           int64           `json:"seq"`
	Direction     string          `json:"direction"`
	Sender        string          `json:"sender"`
	Kind          string          `json:"kind"`
	AgentID       string          `json:"agent_id,omitempty"`
	MessagingType string          `json:"messaging_type,omitempty"`
	Tag           string          `json:"tag,omitempty"`
	MID           string          `json:"mid,omitempty"`
	Text          string          `json:"text,omitempty"`
	Attachments   json.RawMessage `json:"attachments,omitempty"`
	Status        string          `json:"status"`
	ErrorCode     int             `json:"error_code,omitempty"`
	ErrorSubcode  int             `json:"error_subcode,omitempty"`
	ErrorReason   string          `json:"error_reason,omitempty"`
	SentAt        time.Time       `json:"sent_at"`
	CreatedAt     time.Time       `json:"created_at"`
}

func (s *Server) listMessages(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := s.readableConversation(c); err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 100, 1000)
	if err != nil {
		return err
	}
	var after int64
	if v := c.QueryParam("after_seq"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return apierror.InvalidField("after_seq", "must be a whole number, 0 or more")
		}
	}
	list, err := s.opts.Store.ListMessages(ctx, c.Param("id"), after, limit)
	if err != nil {
		return storeError(err, "messages of conversation", c.Param("id"))
	}
	files, err := s.messageFiles(ctx, c.Param("id"), list)
	if err != nil {
		return err
	}
	out := make([]messageJSON, 0, len(list))
	for _, m := range list {
		atts := m.Attachments
		if f, ok := files[m.ID]; ok {
			atts = f
		}
		out = append(out, messageJSON{
			ID: m.ID, Seq: m.Seq, Direction: m.Direction, Sender: m.Sender, Kind: m.Kind, AgentID: m.AgentID,
			MessagingType: m.MessagingType, Tag: m.Tag, MID: m.MID, Text: hideSurveyLink(m.Sender, m.Text),
			Attachments: atts, Status: m.Status, ErrorCode: m.ErrorCode, ErrorSubcode: m.ErrorSubcode,
			ErrorReason: m.ErrorReason, SentAt: m.SentAt, CreatedAt: m.CreatedAt,
		})
	}
	body := map[string]any{"data": out}
	if len(list) == limit {
		body["next_after_seq"] = list[len(list)-1].Seq
	}
	return c.JSON(http.StatusOK, body)
}
