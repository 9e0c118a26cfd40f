package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"parley/apierror"
	"parley/routing"
	"parley/store"
)

// registerWorkstreams mounts /api/v1/workstreams (admin only).
func (s *Server) registerWorkstreams(v1 *echo.Group) {
	admin := requireRole(RoleAdmin)
	v1.POST("/workstreams", s.createWorkstream, admin)
	v1.GET("/workstreams", s.listWorkstreams, admin)
	v1.GET("/workstreams/:id", s.getWorkstream, admin)
	v1.PATCH("/workstreams/:id", s.updateWorkstream, admin)
	v1.DELETE("/workstreams/:id", s.deleteWorkstream, admin)
}

// workstreamJSON is a workstream as the API shows it. Settings are grouped
// under top-level keys by topic, so that later ones (routing, distribution)
// arrive as new keys without changing these.
type workstreamJSON struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Page          string          `json:"page"`
	Language      string          `json:"language"`
	HumanAgentTag bool            `json:"human_agent_tag"`
	Attachments   attachmentsJSON `json:"attachments"`
	// AutoCreateContacts: a contact for each named customer linked to none.
	AutoCreateContacts bool `json:"auto_create_contacts"`
	// StandbyOpensConversations: messages to another app open work too.
	StandbyOpensConversations bool          `json:"standby_opens_conversations"`
	AutoClose                 autoCloseJSON `json:"auto_close"`
	WrapUpDuration            string        `json:"wrap_up_duration"`
	// Every known trigger is listed, configured or not, so that clients
	// can show them all.
	AutomatedMessages map[string]store.AutomatedMessage `json:"automated_messages"`
	// Distribution is null while routing is off.
	Distribution *distributionJSON `json:"distribution"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

type attachmentsJSON struct {
	Customer bool `json:"customer"`
	Agent    bool `json:"agent"`
}

type autoCloseJSON struct {
	Open    string `json:"open"`
	Active  string `json:"active"`
	Waiting string `json:"waiting"`
}

func toWorkstreamJSON(w store.Workstream) workstreamJSON {
	msgs := map[string]store.AutomatedMessage{}
	for _, trigger := range store.Triggers() {
		msgs[trigger] = w.AutomatedMessages[trigger]
	}
	return workstreamJSON{
		ID: w.ID, Name: w.Name, Page: w.PageRef, Language: w.Language, HumanAgentTag: w.HumanAgentTag,
		Attachments:        attachmentsJSON{Customer: w.CustomerAttachments, Agent: w.AgentAttachments},
		AutoCreateContacts: w.AutoCreateContacts, StandbyOpensConversations: w.StandbyOpensConversations,
		AutoClose:         autoCloseJSON{Open: w.AutoCloseOpen.String(), Active: w.AutoCloseActive.String(), Waiting: w.AutoCloseWaiting.String()},
		WrapUpDuration:    w.WrapUpDuration.String(),
		AutomatedMessages: msgs,
		Distribution:      toDistributionJSON(w.Distribution),
		CreatedAt:         w.CreatedAt,
		UpdatedAt:         w.UpdatedAt,
	}
}

// workstreamRequest is the body of POST (name and page required, the rest
// defaulting to store.DefaultWorkstream) and PATCH (any subset but page).
// Nested objects stay raw here and are decoded by workstreamUpdate, which
// names their fields by dotted path.
type workstreamRequest struct {
	Name               *string         `json:"name"`
	Page               *string         `json:"page"`
	Language           *string         `json:"language"`
	HumanAgentTag      *bool           `json:"human_agent_tag"`
	Attachments        json.RawMessage `json:"attachments"`
	AutoCreateContacts *bool           `json:"auto_create_contacts"`
	StandbyOpens       *bool           `json:"standby_opens_conversations"`
	AutoClose          json.RawMessage `json:"auto_close"`
	WrapUpDuration     *string         `json:"wrap_up_duration"`
	AutomatedMessages  json.RawMessage `json:"automated_messages"`
	// Distribution replaces the whole distribution; null turns routing off.
	Distribution json.RawMessage `json:"distribution"`
}

type attachmentsRequest struct {
	Customer *bool `json:"customer"`
	Agent    *bool `json:"agent"`
}

type autoCloseRequest struct {
	Open    *string `json:"open"`
	Active  *string `json:"active"`
	Waiting *string `json:"waiting"`
}

type automatedMessageRequest struct {
	Enabled *bool   `json:"enabled"`
	Text    *string `json:"text"`
	// Translations, when sent, replace every translation (null clears them).
	Translations json.RawMessage `json:"translations"`
	Step         *int            `json:"step"`
	EveryMinutes *int            `json:"every_minutes"`
}

// workstreamUpdate validates the settings of req into an update. The
// automated messages of req are applied field by field to current.
func (req workstreamRequest) workstreamUpdate(current map[string]store.AutomatedMessage) (store.WorkstreamUpdate, error) {
	var u store.WorkstreamUpdate
	if req.Name != nil {
		if err := required("name", *req.Name, 200); err != nil {
			return u, err
		}
		u.Name = req.Name
	}
	if req.Language != nil {
		lang, ok := store.CanonicalLanguage(*req.Language)
		if !ok {
			return u, apierror.InvalidField("language", "must be a language code such as \"en\" or \"fr-CA\", got %q", *req.Language)
		}
		u.Language = &lang
	}
	u.HumanAgentTag = req.HumanAgentTag
	u.AutoCreateContacts = req.AutoCreateContacts
	u.StandbyOpens = req.StandbyOpens
	if present(req.Attachments) {
		var a attachmentsRequest
		if err := decodePart("attachments", req.Attachments, &a); err != nil {
			return u, err
		}
		u.CustomerAttachments, u.AgentAttachments = a.Customer, a.Agent
	}
	if present(req.AutoClose) {
		var a autoCloseRequest
		if err := decodePart("auto_close", req.AutoClose, &a); err != nil {
			return u, err
		}
		for _, d := range []struct {
			field string
			v     *string
			dst   **time.Duration
		}{
			{"auto_close.open", a.Open, &u.AutoCloseOpen},
			{"auto_close.active", a.Active, &u.AutoCloseActive},
			{"auto_close.waiting", a.Waiting, &u.AutoCloseWaiting},
		} {
			if err := setDuration(d.dst, d.field, d.v); err != nil {
				return u, err
			}
		}
	}
	if err := setDuration(&u.WrapUpDuration, "wrap_up_duration", req.WrapUpDuration); err != nil {
		return u, err
	}
	if present(req.AutomatedMessages) {
		msgs, err := mergeAutomatedMessages(current, req.AutomatedMessages)
		if err != nil {
			return u, err
		}
		u.AutomatedMessages = &msgs
	}
	switch {
	case present(req.Distribution):
		d, err := decodeDistribution(req.Distribution)
		if err != nil {
			return u, err
		}
		u.Distribution = &d
	case len(req.Distribution) > 0: // null
		u.ClearDistribution = true
	}
	return u, nil
}

// setDuration parses an optional Go duration ("720h", "90s"; "0s" for
// never) into *dst.
func setDuration(dst **time.Duration, field string, v *string) error {
	if v == nil {
		return nil
	}
	d, err := time.ParseDuration(*v)
	switch {
	case err != nil:
		return apierror.InvalidField(field, "must be a duration such as \"720h\", \"90m\" or \"0s\", got %q", *v)
	case d < 0:
		return apierror.InvalidField(field, "must not be negative, got %q", *v)
	case d%time.Millisecond != 0:
		return apierror.InvalidField(field, "must be a whole number of milliseconds, got %q", *v)
	}
	*dst = &d
	return nil
}

// mergeAutomatedMessages applies the triggers of raw, field by field, to a
// copy of current, so that {"conversation_ended":{"enabled":false}} keeps
// the text.
func mergeAutomatedMessages(current map[string]store.AutomatedMessage, raw json.RawMessage) (map[string]store.AutomatedMessage, error) {
	var byTrigger map[string]json.RawMessage
	if err := decodePart("automated_messages", raw, &byTrigger); err != nil {
		return nil, err
	}
	known := store.Triggers()
	out := maps.Clone(current)
	if out == nil {
		out = map[string]store.AutomatedMessage{}
	}
	for _, trigger := range slices.Sorted(maps.Keys(byTrigger)) {
		field := "automated_messages." + trigger
		if !slices.Contains(known, trigger) {
			return nil, apierror.InvalidField(field, "unknown trigger; the known triggers are %s", strings.Join(known, ", "))
		}
		var req automatedMessageRequest
		if present(byTrigger[trigger]) {
			if err := decodePart(field, byTrigger[trigger], &req); err != nil {
				return nil, err
			}
		}
		m := out[trigger]
		if req.Enabled != nil {
			m.Enabled = *req.Enabled
		}
		if req.Text != nil {
			m.Text = *req.Text
		}
		if present(req.Translations) {
			var tr map[string]string
			if err := decodePart(field+".translations", req.Translations, &tr); err != nil {
				return nil, err
			}
			m.Translations = tr
		} else if len(req.Translations) > 0 { // null
			m.Translations = nil
		}
		if req.Step != nil || req.EveryMinutes != nil {
			if trigger != store.TriggerQueuePosition {
				return nil, apierror.InvalidField(field, "step and every_minutes apply to %s only", store.TriggerQueuePosition)
			}
			for _, f := range []struct {
				name string
				v    *int
				dst  *int
			}{{"step", req.Step, &m.Step}, {"every_minutes", req.EveryMinutes, &m.EveryMinutes}} {
				if f.v == nil {
					continue
				}
				if *f.v < 0 {
					return nil, apierror.InvalidField(field+"."+f.name, "must not be negative, got %d", *f.v)
				}
				*f.dst = *f.v
			}
		}
		if m.Enabled && strings.TrimSpace(m.Text) == "" {
			return nil, apierror.InvalidField(field+".text", "is required when the message is enabled")
		}
		if err := checkMessageText(field+".text", m.Text); err != nil {
			return nil, err
		}
		canon := make(map[string]string, len(m.Translations))
		for _, lang := range slices.Sorted(maps.Keys(m.Translations)) {
			tf := field + ".translations." + lang
			c, ok := store.CanonicalLanguage(lang)
			switch {
			case !ok:
				return nil, apierror.InvalidField(tf, "must be keyed by a language code such as \"fr\" or \"fr-CA\", got %q", lang)
			case canon[c] != "":
				return nil, apierror.InvalidField(tf, "language %s is given twice", c)
			case strings.TrimSpace(m.Translations[lang]) == "":
				return nil, apierror.InvalidField(tf, "must not be empty")
			}
			if err := checkMessageText(tf, m.Translations[lang]); err != nil {
				return nil, err
			}
			canon[c] = m.Translations[lang]
		}
		m.Translations = nil
		if len(canon) > 0 {
			m.Translations = canon
		}
		out[trigger] = m
	}
	return out, nil
}

// checkMessageText checks an automated message's text: Messenger's length
// limit and known {variables} only (the error names the unknown one).
func checkMessageText(field, text string) error {
	if utf8.RuneCountInString(text) > store.MaxAutomatedMessageText {
		return apierror.InvalidField(field, "must be at most %d characters (Messenger's limit)", store.MaxAutomatedMessageText)
	}
	if v := store.UnknownVariable(text); v != "" {
		return apierror.InvalidField(field, "unknown variable {%s}; the variables are {%s}", v, strings.Join(store.Variables(), "}, {"))
	}
	return nil
}

// present reports whether an optional nested object was sent; null counts
// as absent, as it does for the other fields.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// decodePart decodes a nested value of a body that decode already read,
// as strictly, naming fields by their dotted path from the body's root
// (encoding/json names unknown nested fields without their parents).
func decodePart(path string, raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		return nil
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := path
		if typ.Field != "" {
			field += "." + typ.Field
		}
		kind := jsonKind(typ.Type.Kind().String())
		article := "a"
		if kind == "object" || kind == "array" {
			article = "an"
		}
		return apierror.InvalidField(field, "must be %s %s, not a JSON %s", article, kind, typ.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unquoted, uerr := strconv.Unquote(name); uerr == nil {
			name = unquoted
		}
		return apierror.InvalidField(path+"."+name, "unknown field")
	}
	return apierror.InvalidField(path, "%v", err)
}

func (s *Server) createWorkstream(c echo.Context) error {
	ctx := c.Request().Context()
	var req workstreamRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return apierror.InvalidField("name", "is required")
	}
	if req.Page == nil {
		return apierror.InvalidField("page", "is required: the id of the page (GET /api/v1/pages) whose conversations this workstream handles")
	}
	if err := required("page", *req.Page, 200); err != nil {
		return err
	}
	w := store.DefaultWorkstream()
	u, err := req.workstreamUpdate(w.AutomatedMessages)
	if err != nil {
		return err
	}
	u.Apply(&w)
	w.PageRef = *req.Page
	w, err = s.opts.Store.CreateWorkstream(ctx, w)
	var fe *store.FieldError
	switch {
	case errors.As(err, &fe):
		return configError(err, "workstream", *req.Name)
	case errors.Is(err, store.ErrNotFound):
		// The URL names no resource here: the body's page is at fault.
		return apierror.InvalidField("page", "no page %q (GET /api/v1/pages lists them)", *req.Page)
	case errors.Is(err, store.ErrConflict):
		return &apierror.Error{Status: http.StatusConflict, Code: "conflict", Err: err,
			Message: "page " + strconv.Quote(*req.Page) + " already has a workstream; change it with PATCH, or delete it first"}
	case err != nil:
		return storeError(err, "workstream", *req.Name)
	}
	s.log.InfoContext(ctx, "workstream created", "workstream", w.ID, "page", w.PageRef)
	s.settingsChanged(ctx, w.PageRef)
	return c.JSON(http.StatusCreated, toWorkstreamJSON(w))
}

func (s *Server) listWorkstreams(c echo.Context) error {
	list, err := s.opts.Store.ListWorkstreams(c.Request().Context())
	if err != nil {
		return storeError(err, "workstreams", "")
	}
	out := make([]workstreamJSON, 0, len(list))
	for _, w := range list {
		out = append(out, toWorkstreamJSON(w))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}

func (s *Server) getWorkstream(c echo.Context) error {
	w, err := s.opts.Store.GetWorkstream(c.Request().Context(), c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	return c.JSON(http.StatusOK, toWorkstreamJSON(w))
}

func (s *Server) updateWorkstream(c echo.Context) error {
	ctx := c.Request().Context()
	var req workstreamRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Page != nil {
		return apierror.InvalidField("page", "cannot be changed; delete this workstream and create one for the other page")
	}
	// The current messages, to merge those of the request into.
	cur, err := s.opts.Store.GetWorkstream(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	u, err := req.workstreamUpdate(cur.AutomatedMessages)
	if err != nil {
		return err
	}
	w, err := s.opts.Store.UpdateWorkstream(ctx, c.Param("id"), u)
	if err != nil {
		return configError(err, "workstream", c.Param("id"))
	}
	s.log.InfoContext(ctx, "workstream updated", "workstream", w.ID, "page", w.PageRef)
	s.settingsChanged(ctx, w.PageRef)
	return c.JSON(http.StatusOK, toWorkstreamJSON(w))
}

func (s *Server) deleteWorkstream(c echo.Context) error {
	ctx := c.Request().Context()
	w, err := s.opts.Store.GetWorkstream(ctx, c.Param("id"))
	if err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	if err := s.opts.Store.DeleteWorkstream(ctx, c.Param("id")); err != nil {
		return storeError(err, "workstream", c.Param("id"))
	}
	s.log.InfoContext(ctx, "workstream deleted; its page gets the default settings", "workstream", c.Param("id"))
	s.settingsChanged(ctx, w.PageRef)
	return c.NoContent(http.StatusNoContent)
}

// distributionJSON is a workstream's distribution as the API shows it
// (durations as Go duration strings).
type distributionJSON struct {
	Mode                      string            `json:"mode"`
	CapacityUnits             int               `json:"capacity_units"`
	AllowedPresences          []string          `json:"allowed_presences"`
	KeepSameAgent             keepSameAgentJSON `json:"keep_same_agent"`
	BlockCapacityDuringWrapUp wrapUpBlockJSON   `json:"block_capacity_during_wrap_up"`
	OfferTimeout              string            `json:"offer_timeout"`
	// MissedOfferPresence: "inactive", or "" to leave the agent's presence alone.
	MissedOfferPresence string            `json:"missed_offer_presence"`
	FallbackQueue       string            `json:"fallback_queue"`
	RoutingRules        []routingRuleJSON `json:"routing_rules"`
}

type keepSameAgentJSON struct {
	Enabled bool   `json:"enabled"`
	Wait    string `json:"wait"`
}

type wrapUpBlockJSON struct {
	Mode     string `json:"mode"`
	Duration string `json:"duration,omitempty"` // mode duration only
}

type routingRuleJSON struct {
	Name       string                 `json:"name"`
	Conditions []routingConditionJSON `json:"conditions"`
	Queue      string                 `json:"queue"`
}

type routingConditionJSON struct {
	Field    string   `json:"field"`
	Operator string   `json:"operator"`
	Value    string   `json:"value,omitempty"`
	Values   []string `json:"values,omitempty"`
}

func toDistributionJSON(d *routing.Distribution) *distributionJSON {
	if d == nil {
		return nil
	}
	out := &distributionJSON{
		Mode: d.Mode, CapacityUnits: d.CapacityUnits, AllowedPresences: append([]string{}, d.AllowedPresences...),
		KeepSameAgent:             keepSameAgentJSON{Enabled: d.KeepSameAgent.Enabled, Wait: d.KeepSameAgent.Wait.D().String()},
		BlockCapacityDuringWrapUp: wrapUpBlockJSON{Mode: d.BlockCapacityDuringWrapUp.Mode},
		OfferTimeout:              d.OfferTimeout.D().String(),
		MissedOfferPresence:       d.MissedOfferPresence,
		FallbackQueue:             d.FallbackQueueID,
		RoutingRules:              []routingRuleJSON{},
	}
	if d.BlockCapacityDuringWrapUp.Mode == routing.WrapUpDuration {
		out.BlockCapacityDuringWrapUp.Duration = d.BlockCapacityDuringWrapUp.Duration.D().String()
	}
	for _, r := range d.Rules {
		rj := routingRuleJSON{Name: r.Name, Queue: r.QueueID, Conditions: []routingConditionJSON{}}
		for _, c := range r.Conditions {
			rj.Conditions = append(rj.Conditions, routingConditionJSON{Field: c.Field, Operator: c.Operator, Value: c.Value,
				Values: append([]string(nil), c.Values...)})
		}
		out.RoutingRules = append(out.RoutingRules, rj)
	}
	return out
}

// distributionRequest is the distribution of POST and PATCH: it replaces
// the whole distribution. Omitted settings take routing's defaults
// (routing.Distribution.WithDefaults); on PATCH, an omitted mode keeps the
// current one.
type distributionRequest struct {
	Mode                      *string         `json:"mode"`
	CapacityUnits             *int            `json:"capacity_units"`
	AllowedPresences          json.RawMessage `json:"allowed_presences"`
	KeepSameAgent             json.RawMessage `json:"keep_same_agent"`
	BlockCapacityDuringWrapUp json.RawMessage `json:"block_capacity_during_wrap_up"`
	OfferTimeout              *string         `json:"offer_timeout"`
	MissedOfferPresence       *string         `json:"missed_offer_presence"`
	FallbackQueue             *string         `json:"fallback_queue"`
	RoutingRules              json.RawMessage `json:"routing_rules"`
}

type keepSameAgentRequest struct {
	Enabled *bool   `json:"enabled"`
	Wait    *string `json:"wait"`
}

type wrapUpBlockRequest struct {
	Mode     *string `json:"mode"`
	Duration *string `json:"duration"`
}

type routingRuleRequest struct {
	Name       string          `json:"name"`
	Conditions json.RawMessage `json:"conditions"`
	Queue      string          `json:"queue"`
}

// decodeDistribution reads a distribution, naming each field by its path;
// the store checks the values.
func decodeDistribution(raw json.RawMessage) (routing.Distribution, error) {
	const path = "distribution"
	var d routing.Distribution
	var req distributionRequest
	if err := decodePart(path, raw, &req); err != nil {
		return d, err
	}
	setIf(&d.Mode, req.Mode)
	setIf(&d.CapacityUnits, req.CapacityUnits)
	setIf(&d.MissedOfferPresence, req.MissedOfferPresence)
	setIf(&d.FallbackQueueID, req.FallbackQueue)
	presences, err := decodeArray(path+".allowed_presences", req.AllowedPresences)
	if err != nil {
		return d, err
	}
	for i, raw := range presences {
		var p string
		if err := decodePart(fmt.Sprintf("%s.allowed_presences[%d]", path, i), raw, &p); err != nil {
			return d, err
		}
		d.AllowedPresences = append(d.AllowedPresences, p)
	}
	if present(req.KeepSameAgent) {
		var k keepSameAgentRequest
		if err := decodePart(path+".keep_same_agent", req.KeepSameAgent, &k); err != nil {
			return d, err
		}
		setIf(&d.KeepSameAgent.Enabled, k.Enabled)
		if err := setRoutingDuration(&d.KeepSameAgent.Wait, path+".keep_same_agent.wait", k.Wait); err != nil {
			return d, err
		}
	}
	if present(req.BlockCapacityDuringWrapUp) {
		var b wrapUpBlockRequest
		if err := decodePart(path+".block_capacity_during_wrap_up", req.BlockCapacityDuringWrapUp, &b); err != nil {
			return d, err
		}
		setIf(&d.BlockCapacityDuringWrapUp.Mode, b.Mode)
		if err := setRoutingDuration(&d.BlockCapacityDuringWrapUp.Duration, path+".block_capacity_during_wrap_up.duration", b.Duration); err != nil {
			return d, err
		}
	}
	if err := setRoutingDuration(&d.OfferTimeout, path+".offer_timeout", req.OfferTimeout); err != nil {
		return d, err
	}
	rules, err := decodeArray(path+".routing_rules", req.RoutingRules)
	if err != nil {
		return d, err
	}
	for i, raw := range rules {
		field := fmt.Sprintf("%s.routing_rules[%d]", path, i)
		var r routingRuleRequest
		if err := decodePart(field, raw, &r); err != nil {
			return d, err
		}
		rule := routing.Rule{Name: r.Name, QueueID: r.Queue, Conditions: []routing.Condition{}}
		conds, err := decodeArray(field+".conditions", r.Conditions)
		if err != nil {
			return d, err
		}
		for j, raw := range conds {
			var c routingConditionJSON
			if err := decodePart(fmt.Sprintf("%s.conditions[%d]", field, j), raw, &c); err != nil {
				return d, err
			}
			rule.Conditions = append(rule.Conditions, routing.Condition(c))
		}
		d.Rules = append(d.Rules, rule)
	}
	return d, nil
}

// setRoutingDuration parses an optional, non-negative Go duration.
func setRoutingDuration(dst *routing.Duration, field string, v *string) error {
	if v == nil {
		return nil
	}
	d, err := time.ParseDuration(*v)
	switch {
	case err != nil:
		return apierror.InvalidField(field, "must be a duration such as \"90s\" or \"2m\", got %q", *v)
	case d < 0:
		return apierror.InvalidField(field, "must not be negative, got %q", *v)
	}
	*dst = routing.Duration(d)
	return nil
}
