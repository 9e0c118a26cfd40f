package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
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
}

func toConversationJSON(c store.Conversation) conversationJSON {
	return conversationJSON{
		ID: c.ID, Page: c.PageRef, AccountID: c.AccountID, PageID: c.FacebookPageID, PSID: c.PSID, State: c.State,
		AgentID: c.AgentID, WorkflowID: c.WorkflowID, MessageCount: c.MessageCount, LastCustomerMessageAt: c.LastCustomerMessageAt,
		PreviousConversationID: c.PreviousConversationID, StartedAt: c.StartedAt, UpdatedAt: c.UpdatedAt, ClosedAt: c.ClosedAt,
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
		Limit:          limit,
		Cursor:         c.QueryParam("cursor"),
	}
	if f.FacebookPageID != "" {
		if err := digits("page_id", f.FacebookPageID); err != nil {
			return err
		}
	}
	if f.State != "" && !contains(conversationStates, f.State) {
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
	cv, err := s.opts.Store.GetConversation(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "conversation", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toConversationJSON(cv))
}

type messageJSON struct {
	ID           string          `json:"id"`
	Seq          int64           `json:"seq"`
	Direction    string          `json:"direction"`
	Sender       string          `json:"sender"`
	Kind         string          `json:"kind"`
	MID          string          `json:"mid,omitempty"`
	Text         string          `json:"text,omitempty"`
	Attachments  json.RawMessage `json:"attachments,omitempty"`
	Status       string          `json:"status"`
	ErrorCode    int             `json:"error_code,omitempty"`
	ErrorSubcode int             `json:"error_subcode,omitempty"`
	ErrorReason  string          `json:"error_reason,omitempty"`
	SentAt       time.Time       `json:"sent_at"`
	CreatedAt    time.Time       `json:"created_at"`
}

func (s *Server) listMessages(c echo.Context) error {
	ctx := c.Request().Context()
	if _, err := s.opts.Store.GetConversation(ctx, c.Param("id")); err != nil {
		return storeError(err, "conversation", c.Param("id"))
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
	out := make([]messageJSON, 0, len(list))
	for _, m := range list {
		out = append(out, messageJSON{
			ID: m.ID, Seq: m.Seq, Direction: m.Direction, Sender: m.Sender, Kind: m.Kind, MID: m.MID, Text: m.Text,
			Attachments: m.Attachments, Status: m.Status, ErrorCode: m.ErrorCode, ErrorSubcode: m.ErrorSubcode,
			ErrorReason: m.ErrorReason, SentAt: m.SentAt, CreatedAt: m.CreatedAt,
		})
	}
	body := map[string]any{"data": out}
	if len(list) == limit {
		body["next_after_seq"] = list[len(list)-1].Seq
	}
	return c.JSON(http.StatusOK, body)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
