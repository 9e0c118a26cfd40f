package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/store"
)

// Contacts (issue 8): every role reads, creates and edits them (an agent
// links its customer to one); deleting is for supervisors and admins.
func (s *Server) registerContacts(v1 *echo.Group) {
	reader := requireRole(RoleAdmin, RoleSupervisor)
	anyone := requireRole(RoleAdmin, RoleSupervisor, RoleAgent)
	v1.POST("/contacts", s.createContact, anyone)
	v1.GET("/contacts", s.listContacts, anyone)
	v1.GET("/contacts/:id", s.getContact, anyone)
	v1.PATCH("/contacts/:id", s.updateContact, anyone)
	v1.DELETE("/contacts/:id", s.deleteContact, reader)
	v1.GET("/contacts/:id/summary", s.contactSummary, anyone)
	v1.POST("/conversations/:id/contact", s.linkContact, anyone)
	v1.POST("/pages/:id/customers/:psid/erase", s.eraseCustomer, reader)
}

type contactJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Emails      []string  `json:"emails"`
	Phones      []string  `json:"phones"`
	ExternalRef string    `json:"external_ref"`
	Notes       string    `json:"notes"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toContactJSON(c store.Contact) contactJSON {
	out := contactJSON{ID: c.ID, Name: c.Name, Emails: c.Emails, Phones: c.Phones, ExternalRef: c.ExternalRef, Notes: c.Notes,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if out.Emails == nil {
		out.Emails = []string{}
	}
	if out.Phones == nil {
		out.Phones = []string{}
	}
	return out
}

type contactRequest struct {
	Name        *string   `json:"name"`
	Emails      *[]string `json:"emails"`
	Phones      *[]string `json:"phones"`
	ExternalRef *string   `json:"external_ref"`
	Notes       *string   `json:"notes"`
}

func (s *Server) createContact(c echo.Context) error {
	ctx := c.Request().Context()
	var req contactRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	in := store.ContactInput{}
	setIf(&in.Name, req.Name)
	setIf(&in.Emails, req.Emails)
	setIf(&in.Phones, req.Phones)
	setIf(&in.ExternalRef, req.ExternalRef)
	setIf(&in.Notes, req.Notes)
	ct, err := s.opts.Store.CreateContact(ctx, in)
	if err != nil {
		return configError(err, "contact", "")
	}
	s.log.InfoContext(ctx, "contact created", "contact", ct.ID)
	return c.JSON(http.StatusCreated, toContactJSON(ct))
}

// listContacts lists contacts by name; q searches names, emails and phone
// numbers.
func (s *Server) listContacts(c echo.Context) error {
	ctx := c.Request().Context()
	limit, err := queryInt(c, "limit", 50, 200)
	if err != nil {
		return err
	}
	var afterName, afterID string
	if cursor := c.QueryParam("cursor"); cursor != "" {
		last, err := s.opts.Store.GetContact(ctx, cursor)
		if errors.Is(err, store.ErrNotFound) {
			return apierror.InvalidField("cursor", "unknown cursor: start again without it")
		}
		if err != nil {
			return apierror.Internal(err)
		}
		afterName, afterID = last.Name, last.ID
	}
	list, err := s.opts.Store.ListContacts(ctx, c.QueryParam("q"), limit+1, afterName, afterID)
	if err != nil {
		return apierror.Internal(err)
	}
	out := struct {
		Data       []contactJSON `json:"data"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{Data: []contactJSON{}}
	if len(list) > limit {
		list = list[:limit]
		out.NextCursor = list[limit-1].ID
	}
	for _, ct := range list {
		out.Data = append(out.Data, toContactJSON(ct))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getContact(c echo.Context) error {
	ct, err := s.opts.Store.GetContact(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "contact", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toContactJSON(ct))
}

func (s *Server) updateContact(c echo.Context) error {
	var req contactRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ct, err := s.opts.Store.UpdateContact(c.Request().Context(), c.Param("id"), store.ContactUpdate{Name: req.Name, Emails: req.Emails,
		Phones: req.Phones, ExternalRef: req.ExternalRef, Notes: req.Notes})
	if err != nil {
		return configError(err, "contact", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toContactJSON(ct))
}

func (s *Server) deleteContact(c echo.Context) error {
	ctx := c.Request().Context()
	switch c.QueryParam("erase") {
	case "true":
		return s.eraseContact(c, c.Param("id"))
	case "", "false":
	default:
		return apierror.InvalidField("erase", "must be true or false")
	}
	if err := s.opts.Store.DeleteContact(ctx, c.Param("id")); err != nil {
		return storeError(err, "contact", c.Param("id"))
	}
	s.log.InfoContext(ctx, "contact deleted", "contact", c.Param("id"))
	return c.NoContent(http.StatusNoContent)
}

// pastConversationJSON is one of a customer's conversations, in a summary.
type pastConversationJSON struct {
	ID           string     `json:"id"`
	Page         string     `json:"page"`
	PSID         string     `json:"psid"`
	State        string     `json:"state"`
	AgentID      string     `json:"agent_id,omitempty"`
	StartedAt    time.Time  `json:"started_at"`
	ClosedAt     *time.Time `json:"closed_at,omitempty"`
	ClosedReason string     `json:"closed_reason,omitempty"`
}

func toPastConversations(list []store.PastConversation, except string) []pastConversationJSON {
	out := []pastConversationJSON{}
	for _, p := range list {
		if p.ID == except {
			continue
		}
		j := pastConversationJSON{ID: p.ID, Page: p.PageRef, PSID: p.PSID, State: p.State, AgentID: p.AgentID, StartedAt: p.StartedAt,
			ClosedReason: p.ClosedReason}
		if !p.ClosedAt.IsZero() {
			j.ClosedAt = &p.ClosedAt
		}
		out = append(out, j)
	}
	return out
}

// contactSummary is a contact with its customers (profiles) and their
// latest conversations.
func (s *Server) contactSummary(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	ct, err := s.opts.Store.GetContact(ctx, id)
	if err != nil {
		return storeError(err, "contact", id)
	}
	customers, err := s.opts.Store.LinkedCustomers(ctx, id)
	if err != nil {
		return apierror.Internal(err)
	}
	convs, err := s.opts.Store.CustomerConversations(ctx, id, "", "")
	if err != nil {
		return apierror.Internal(err)
	}
	out := struct {
		Contact       contactJSON            `json:"contact"`
		Customers     []*customerJSON        `json:"customers"`
		Conversations []pastConversationJSON `json:"conversations"`
	}{Contact: toContactJSON(ct), Customers: []*customerJSON{}, Conversations: toPastConversations(convs, "")}
	for _, cu := range customers {
		out.Customers = append(out.Customers, toCustomerJSON(cu))
	}
	return c.JSON(http.StatusOK, out)
}

// linkContact links the conversation's customer (its page and PSID) to a
// contact: this conversation and every later one of the customer.
func (s *Server) linkContact(c echo.Context) error {
	ctx := c.Request().Context()
	cv, err := s.conversation(c) // an agent links its own conversation's customer
	if err != nil {
		return err
	}
	var req struct {
		ContactID string `json:"contact_id"`
	}
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.ContactID == "" {
		return apierror.InvalidField("contact_id", "is required")
	}
	if err := s.opts.Store.LinkCustomer(ctx, req.ContactID, cv.PageRef, cv.PSID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apierror.InvalidField("contact_id", "no contact %q", req.ContactID)
		}
		return apierror.Internal(err)
	}
	s.log.InfoContext(ctx, "customer linked to contact", "conversation", cv.ID, "contact", req.ContactID)
	return s.conversationResponse(c, cv)
}
