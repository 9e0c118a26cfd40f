package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/routing"
)

// Workstream is how the conversations of one page are handled. A page has
// at most one live workstream; a page without one gets DefaultWorkstream.
// The conversation workflow reads these settings when they apply.
type Workstream struct {
	ID       string
	Name     string
	PageRef  string // our page id (Page.ID)
	Language string // canonical, e.g. "en" or "fr-CA"
	// HumanAgentTag allows agent replies with Meta's HUMAN_AGENT tag from
	// 24 hours to 7 days after the customer's last message.
	HumanAgentTag       bool
	CustomerAttachments bool
	AgentAttachments    bool
	// AutoCreateContacts creates a contact for each customer whose name is
	// known and who is linked to none (issue 8).
	AutoCreateContacts bool
	// StandbyOpensConversations: a customer's messages to another app of
	// the page (standby, handover protocol) open work for agents too.
	StandbyOpensConversations bool
	// Inactivity after which a conversation in that state is closed; 0 is never.
	AutoCloseOpen    time.Duration
	AutoCloseActive  time.Duration
	AutoCloseWaiting time.Duration
	// WrapUpDuration is how long wrap_up lasts before closed; 0 closes at once.
	WrapUpDuration time.Duration
	// AutomatedMessages maps a trigger (Triggers) to its message. Reads
	// always return a non-nil map.
	AutomatedMessages map[string]AutomatedMessage
	// Distribution is how conversations reach agents: queues, routing
	// rules, push or pick. nil: routing is off, admins assign by hand.
	// Stored with routing's defaults applied (Distribution.WithDefaults).
	Distribution *routing.Distribution
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DeletedAt    *time.Time
}

// AutomatedMessage is the text sent on a trigger, when enabled: Text in the
// workstream's language, Translations by other languages (see Text).
type AutomatedMessage struct {
	Enabled      bool              `json:"enabled"`
	Text         string            `json:"text"`
	Translations map[string]string `json:"translations,omitempty"`
	// Step and EveryMinutes apply to queue_position only: announce again
	// when the position changed by at least Step places (0: 1), at most
	// every EveryMinutes minutes (0: no limit).
	Step         int `json:"step,omitempty"`
	EveryMinutes int `json:"every_minutes,omitempty"`
}

// WorkstreamUpdate changes the non-nil fields of a workstream; its page
// cannot change. AutomatedMessages, when set, replaces every message.
type WorkstreamUpdate struct {
	Name                *string
	Language            *string
	HumanAgentTag       *bool
	CustomerAttachments *bool
	AgentAttachments    *bool
	AutoCreateContacts  *bool
	StandbyOpens        *bool
	AutoCloseOpen       *time.Duration
	AutoCloseActive     *time.Duration
	AutoCloseWaiting    *time.Duration
	WrapUpDuration      *time.Duration
	AutomatedMessages   *map[string]AutomatedMessage
	// Distribution, when set, replaces the whole distribution (turning
	// routing on if it was off). Its mode cannot change once routing is
	// on (ErrConflict); an empty mode keeps the current one.
	Distribution *routing.Distribution
	// ClearDistribution turns routing off (Distribution must be nil). It is
	// refused (ErrConflict) while a conversation of the page waits in a
	// queue. Once off, routing may be turned on again with either mode.
	ClearDistribution bool
}

// Automated message triggers. More come with later issues.
const (
	// TriggerConversationEnded is sent when the agent ends the conversation.
	TriggerConversationEnded = "conversation_ended"
)

var triggers = []string{TriggerConversationEnded, TriggerAgentAssigned, TriggerQueuePosition, TriggerOutOfHours,
	TriggerOverflowEnd, TriggerNoAgent, TriggerPrivacyNotice, TriggerGreeting, TriggerHoliday, TriggerTransferAccepted}

// Triggers returns the automated message triggers Parley knows.
func Triggers() []string { return slices.Clone(triggers) }

// MaxAutomatedMessageText is Messenger's limit on a text message, in characters.
const MaxAutomatedMessageText = 2000

// DefaultWorkstream is what applies to a page without a workstream:
// Dynamics' defaults for social channels (auto-close Open and Active after
// 30 days, wrap-up 1 day), Waiting after 7 days, attachments allowed both
// ways, no HUMAN_AGENT tag, no automated messages.
func DefaultWorkstream() Workstream {
	return Workstream{
		Language:            "en",
		HumanAgentTag:       false,
		CustomerAttachments: true,
		AgentAttachments:    true,
		AutoCloseOpen:       30 * 24 * time.Hour,
		AutoCloseActive:     30 * 24 * time.Hour,
		AutoCloseWaiting:    7 * 24 * time.Hour,
		WrapUpDuration:      24 * time.Hour,
		AutomatedMessages:   map[string]AutomatedMessage{},
	}
}

// languageTag is a language (2 or 3 letters) with an optional region (2
// letters or 3 digits, as in es-419).
var languageTag = regexp.MustCompile(`^[a-z]{2,3}(-([A-Z]{2}|[0-9]{3}))?$`)

// CanonicalLanguage returns tag in canonical case ("EN-us" -> "en-US") and
// whether it is a language code Parley accepts.
func CanonicalLanguage(tag string) (string, bool) {
	lang, region, hasRegion := strings.Cut(tag, "-")
	canon := strings.ToLower(lang)
	if hasRegion {
		canon += "-" + strings.ToUpper(region)
	}
	if !languageTag.MatchString(canon) {
		return "", false
	}
	return canon, true
}

// normalize checks w's settings and canonicalizes them.
func (w *Workstream) normalize() error {
	if strings.TrimSpace(w.Name) == "" {
		return invalidf("workstream name is required")
	}
	lang, ok := CanonicalLanguage(w.Language)
	if !ok {
		return invalidf("language %q: want a code such as en or fr-CA", w.Language)
	}
	w.Language = lang
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"auto-close open", w.AutoCloseOpen},
		{"auto-close active", w.AutoCloseActive},
		{"auto-close waiting", w.AutoCloseWaiting},
		{"wrap-up duration", w.WrapUpDuration},
	} {
		if d.v < 0 {
			return invalidf("%s %v is negative", d.name, d.v)
		}
		// Stored in milliseconds: finer values would not read back.
		if d.v%time.Millisecond != 0 {
			return invalidf("%s %v is not a whole number of milliseconds", d.name, d.v)
		}
	}
	// A copy: canonicalizing translations must not change the caller's map.
	w.AutomatedMessages = maps.Clone(w.AutomatedMessages)
	for _, trigger := range slices.Sorted(maps.Keys(w.AutomatedMessages)) {
		m := w.AutomatedMessages[trigger]
		if !slices.Contains(triggers, trigger) {
			return invalidf("unknown automated message trigger %q", trigger)
		}
		if err := m.Check(trigger); err != nil {
			return err
		}
		if len(m.Translations) > 0 {
			canon := make(map[string]string, len(m.Translations))
			for lang, text := range m.Translations {
				c, _ := CanonicalLanguage(lang) // Check accepted it
				canon[c] = text
			}
			m.Translations = canon
			w.AutomatedMessages[trigger] = m
		}
	}
	if w.AutomatedMessages == nil {
		w.AutomatedMessages = map[string]AutomatedMessage{}
	}
	return nil
}

type workstreamRow struct {
	ID                  string         `db:"id"`
	Name                string         `db:"name"`
	PageRef             string         `db:"page_ref"`
	Language            string         `db:"language"`
	HumanAgentTag       bool           `db:"human_agent_tag"`
	CustomerAttachments bool           `db:"customer_attachments"`
	AgentAttachments    bool           `db:"agent_attachments"`
	AutoCreateContacts  bool           `db:"auto_create_contacts"`
	StandbyOpens        bool           `db:"standby_opens_conversations"`
	AutoCloseOpenMS     int64          `db:"auto_close_open_ms"`
	AutoCloseActiveMS   int64          `db:"auto_close_active_ms"`
	AutoCloseWaitingMS  int64          `db:"auto_close_waiting_ms"`
	WrapUpMS            int64          `db:"wrap_up_ms"`
	AutomatedMessages   string         `db:"automated_messages"`
	Distribution        sql.NullString `db:"distribution"`
	FallbackQueueID     sql.NullString `db:"fallback_queue_id"`
	CreatedAt           time.Time      `db:"created_at"`
	UpdatedAt           time.Time      `db:"updated_at"`
	DeletedAt           sql.NullTime   `db:"deleted_at"`
}

const workstreamColumns = `id, name, page_ref, language, human_agent_tag, customer_attachments, agent_attachments,
	auto_create_contacts, auto_close_open_ms, auto_close_active_ms, auto_close_waiting_ms, wrap_up_ms, automated_messages,
	distribution, fallback_queue_id, created_at, updated_at, deleted_at, standby_opens_conversations`

func (r workstreamRow) workstream() (Workstream, error) {
	msgs := map[string]AutomatedMessage{}
	if err := json.Unmarshal([]byte(r.AutomatedMessages), &msgs); err != nil {
		return Workstream{}, fmt.Errorf("workstream %s: automated messages: %w", r.ID, err)
	}
	var dist *routing.Distribution
	if r.Distribution.Valid {
		dist = &routing.Distribution{}
		if err := json.Unmarshal([]byte(r.Distribution.String), dist); err != nil {
			return Workstream{}, fmt.Errorf("workstream %s: distribution: %w", r.ID, err)
		}
	}
	return Workstream{
		ID:                        r.ID,
		Name:                      r.Name,
		PageRef:                   r.PageRef,
		Language:                  r.Language,
		HumanAgentTag:             r.HumanAgentTag,
		CustomerAttachments:       r.CustomerAttachments,
		AgentAttachments:          r.AgentAttachments,
		AutoCreateContacts:        r.AutoCreateContacts,
		StandbyOpensConversations: r.StandbyOpens,
		AutoCloseOpen:             time.Duration(r.AutoCloseOpenMS) * time.Millisecond,
		AutoCloseActive:           time.Duration(r.AutoCloseActiveMS) * time.Millisecond,
		AutoCloseWaiting:          time.Duration(r.AutoCloseWaitingMS) * time.Millisecond,
		WrapUpDuration:            time.Duration(r.WrapUpMS) * time.Millisecond,
		AutomatedMessages:         msgs,
		Distribution:              dist,
		CreatedAt:                 r.CreatedAt.UTC(),
		UpdatedAt:                 r.UpdatedAt.UTC(),
		DeletedAt:                 timePtr(r.DeletedAt),
	}, nil
}

func workstreamRowOf(w Workstream) (workstreamRow, error) {
	msgs, err := json.Marshal(w.AutomatedMessages)
	if err != nil {
		return workstreamRow{}, err
	}
	var dist, fallback sql.NullString
	if w.Distribution != nil {
		b, err := json.Marshal(w.Distribution)
		if err != nil {
			return workstreamRow{}, err
		}
		dist = sql.NullString{String: string(b), Valid: true}
		fallback = nullString(w.Distribution.FallbackQueueID)
	}
	return workstreamRow{
		ID:                  w.ID,
		Name:                w.Name,
		PageRef:             w.PageRef,
		Language:            w.Language,
		HumanAgentTag:       w.HumanAgentTag,
		CustomerAttachments: w.CustomerAttachments,
		AgentAttachments:    w.AgentAttachments,
		AutoCreateContacts:  w.AutoCreateContacts,
		StandbyOpens:        w.StandbyOpensConversations,
		AutoCloseOpenMS:     w.AutoCloseOpen.Milliseconds(),
		AutoCloseActiveMS:   w.AutoCloseActive.Milliseconds(),
		AutoCloseWaitingMS:  w.AutoCloseWaiting.Milliseconds(),
		WrapUpMS:            w.WrapUpDuration.Milliseconds(),
		AutomatedMessages:   string(msgs),
		Distribution:        dist,
		FallbackQueueID:     fallback,
		CreatedAt:           w.CreatedAt,
		UpdatedAt:           w.UpdatedAt,
	}, nil
}

// CreateWorkstream binds a new workstream to a page. It returns ErrNotFound
// if the page does not exist (or is deleted), ErrConflict if the page
// already has a live workstream and ErrInvalid for bad settings (a
// *FieldError for the distribution: see prepareDistribution).
func (s *Store) CreateWorkstream(ctx context.Context, w Workstream) (_ Workstream, err error) {
	defer wrap(&err, "store.CreateWorkstream(page %q)", w.PageRef)
	if w.PageRef == "" {
		return Workstream{}, invalidf("page is required")
	}
	if err := w.normalize(); err != nil {
		return Workstream{}, err
	}
	if w.ID, err = newID(); err != nil {
		return Workstream{}, err
	}
	now := s.clock()
	w.CreatedAt, w.UpdatedAt, w.DeletedAt = now, now, nil
	r, err := workstreamRowOf(w)
	if err != nil {
		return Workstream{}, err
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		// On PostgreSQL, FOR SHARE holds off a concurrent DeletePage until
		// we commit; SQLite's immediate transactions exclude other writers.
		lockPage := `SELECT id FROM pages WHERE id = ? AND deleted_at IS NULL`
		if s.dialect == DialectPostgres {
			lockPage += ` FOR SHARE`
		}
		var pageRef string
		if err := get(ctx, tx, &pageRef, lockPage, w.PageRef); err != nil {
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("page %s: %w", w.PageRef, ErrNotFound)
			}
			return err
		}
		var existing string
		err := get(ctx, tx, &existing, `SELECT id FROM workstreams WHERE page_ref = ? AND deleted_at IS NULL`, w.PageRef)
		switch {
		case err == nil:
			return fmt.Errorf("%w: page %s already has workstream %s", ErrConflict, w.PageRef, existing)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		if w.Distribution != nil {
			d, err := s.prepareDistribution(ctx, tx, *w.Distribution)
			if err != nil {
				return err
			}
			w.Distribution = &d
			if r, err = workstreamRowOf(w); err != nil {
				return err
			}
		}
		_, err = exec(ctx, tx, `
			INSERT INTO workstreams (id, name, page_ref, language, human_agent_tag, customer_attachments, agent_attachments,
				auto_create_contacts, auto_close_open_ms, auto_close_active_ms, auto_close_waiting_ms, wrap_up_ms, automated_messages,
				distribution, fallback_queue_id, created_at, updated_at, standby_opens_conversations)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Name, r.PageRef, r.Language, r.HumanAgentTag, r.CustomerAttachments, r.AgentAttachments,
			r.AutoCreateContacts, r.AutoCloseOpenMS, r.AutoCloseActiveMS, r.AutoCloseWaitingMS, r.WrapUpMS, r.AutomatedMessages,
			r.Distribution, r.FallbackQueueID, s.timestamp(r.CreatedAt), s.timestamp(r.UpdatedAt), r.StandbyOpens)
		if isUniqueViolation(err) {
			// A concurrent CreateWorkstream for the same page won.
			return fmt.Errorf("%w: page %s already has a workstream: %w", ErrConflict, w.PageRef, err)
		}
		return err
	})
	if err != nil {
		return Workstream{}, err
	}
	return r.workstream()
}

// GetWorkstream returns a live workstream.
func (s *Store) GetWorkstream(ctx context.Context, id string) (_ Workstream, err error) {
	defer wrap(&err, "store.GetWorkstream(%q)", id)
	return getWorkstream(ctx, s.db, `id = ?`, id)
}

// WorkstreamForPage returns the page's live workstream; ErrNotFound when it
// has none (DefaultWorkstream applies then).
func (s *Store) WorkstreamForPage(ctx context.Context, pageRef string) (_ Workstream, err error) {
	defer wrap(&err, "store.WorkstreamForPage(%q)", pageRef)
	return getWorkstream(ctx, s.db, `page_ref = ?`, pageRef)
}

// EffectiveWorkstream is what applies to the page's conversations now: its
// live workstream, or DefaultWorkstream when it has none.
func (s *Store) EffectiveWorkstream(ctx context.Context, pageRef string) (Workstream, error) {
	w, err := s.WorkstreamForPage(ctx, pageRef)
	if errors.Is(err, ErrNotFound) {
		w = DefaultWorkstream()
		w.PageRef = pageRef
		return w, nil
	}
	return w, err
}

// getWorkstream returns the live workstream matching where.
func getWorkstream(ctx context.Context, q querier, where string, args ...any) (Workstream, error) {
	var r workstreamRow
	if err := get(ctx, q, &r, `SELECT `+workstreamColumns+` FROM workstreams WHERE deleted_at IS NULL AND `+where, args...); err != nil {
		return Workstream{}, err
	}
	return r.workstream()
}

// ListWorkstreams returns the live workstreams, oldest first.
func (s *Store) ListWorkstreams(ctx context.Context) (_ []Workstream, err error) {
	defer wrap(&err, "store.ListWorkstreams")
	var rows []workstreamRow
	if err := list(ctx, s.db, &rows, `SELECT `+workstreamColumns+` FROM workstreams WHERE deleted_at IS NULL ORDER BY created_at, id`); err != nil {
		return nil, err
	}
	out := make([]Workstream, len(rows))
	for i, r := range rows {
		if out[i], err = r.workstream(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UpdateWorkstream changes the fields of u that are not nil. It returns
// ErrInvalid (a *FieldError for the distribution), and changes nothing,
// when the result would be invalid; ErrConflict for a change of
// distribution mode, or for turning routing off while conversations of the
// page wait in queues.
func (s *Store) UpdateWorkstream(ctx context.Context, id string, u WorkstreamUpdate) (_ Workstream, err error) {
	defer wrap(&err, "store.UpdateWorkstream(%q)", id)
	if u.ClearDistribution && u.Distribution != nil {
		return Workstream{}, invalidf("a distribution and ClearDistribution together")
	}
	// FOR UPDATE: two concurrent updates must not both start from the same row.
	lock := ""
	if s.dialect == DialectPostgres {
		lock = ` FOR UPDATE`
	}
	// A change of distribution runs as a ledger transaction: no
	// conversation is queued meanwhile (turning routing off checks that
	// none waits).
	run := s.inTx
	if u.Distribution != nil || u.ClearDistribution {
		run = s.ledgerTx
	}
	var out Workstream
	err = run(ctx, func(tx *sqlx.Tx) error {
		w, err := getWorkstream(ctx, tx, `id = ?`+lock, id)
		if err != nil {
			return err
		}
		cur := w.Distribution
		if u.Distribution != nil && cur != nil {
			if u.Distribution.Mode == "" {
				d := *u.Distribution
				d.Mode = cur.Mode
				u.Distribution = &d
			}
			if u.Distribution.Mode != cur.Mode {
				return conflictf("distribution.mode is fixed once set (%s); create a new workstream to change it", cur.Mode)
			}
		}
		if u.ClearDistribution && cur != nil {
			var waiting int
			if err := get(ctx, tx, &waiting, `SELECT COUNT(*) FROM queue_items WHERE page_ref = ?`, w.PageRef); err != nil {
				return fmt.Errorf("queued conversations: %w", err)
			}
			if waiting > 0 {
				return conflictf("routing cannot be turned off while %d conversation(s) of the page wait in queues", waiting)
			}
		}
		u.Apply(&w)
		if err := w.normalize(); err != nil {
			return err
		}
		if u.Distribution != nil {
			d, err := s.prepareDistribution(ctx, tx, *w.Distribution)
			if err != nil {
				return err
			}
			w.Distribution = &d
		}
		w.UpdatedAt = s.clock()
		r, err := workstreamRowOf(w)
		if err != nil {
			return err
		}
		if err := execOne(ctx, tx, `
			UPDATE workstreams SET name = ?, language = ?, human_agent_tag = ?, customer_attachments = ?,
				agent_attachments = ?, auto_create_contacts = ?, auto_close_open_ms = ?, auto_close_active_ms = ?, auto_close_waiting_ms = ?,
				wrap_up_ms = ?, automated_messages = ?, distribution = ?, fallback_queue_id = ?, updated_at = ?,
				standby_opens_conversations = ?
			WHERE id = ? AND deleted_at IS NULL`,
			r.Name, r.Language, r.HumanAgentTag, r.CustomerAttachments,
			r.AgentAttachments, r.AutoCreateContacts, r.AutoCloseOpenMS, r.AutoCloseActiveMS, r.AutoCloseWaitingMS,
			r.WrapUpMS, r.AutomatedMessages, r.Distribution, r.FallbackQueueID, s.timestamp(r.UpdatedAt), r.StandbyOpens, id); err != nil {
			return err
		}
		out, err = r.workstream()
		return err
	})
	return out, err
}

// Apply sets the non-nil fields of u on w (copies of the messages map and
// of the distribution).
func (u WorkstreamUpdate) Apply(w *Workstream) {
	setIf(&w.Name, u.Name)
	setIf(&w.Language, u.Language)
	setIf(&w.HumanAgentTag, u.HumanAgentTag)
	setIf(&w.CustomerAttachments, u.CustomerAttachments)
	setIf(&w.AgentAttachments, u.AgentAttachments)
	setIf(&w.AutoCreateContacts, u.AutoCreateContacts)
	setIf(&w.StandbyOpensConversations, u.StandbyOpens)
	setIf(&w.AutoCloseOpen, u.AutoCloseOpen)
	setIf(&w.AutoCloseActive, u.AutoCloseActive)
	setIf(&w.AutoCloseWaiting, u.AutoCloseWaiting)
	setIf(&w.WrapUpDuration, u.WrapUpDuration)
	if u.AutomatedMessages != nil {
		w.AutomatedMessages = maps.Clone(*u.AutomatedMessages)
	}
	switch {
	case u.ClearDistribution:
		w.Distribution = nil
	case u.Distribution != nil:
		d := cloneDistribution(*u.Distribution)
		w.Distribution = &d
	}
}

// cloneDistribution copies d's slices.
func cloneDistribution(d routing.Distribution) routing.Distribution {
	d.AllowedPresences = slices.Clone(d.AllowedPresences)
	d.Rules = slices.Clone(d.Rules)
	for i, r := range d.Rules {
		r.Conditions = slices.Clone(r.Conditions)
		for j, c := range r.Conditions {
			c.Values = slices.Clone(c.Values)
			r.Conditions[j] = c
		}
		d.Rules[i] = r
	}
	return d
}

// Limits of a distribution: routing's.
const (
	MaxRoutingRules      = routing.MaxRules
	MinOfferTimeout      = routing.MinOfferTimeout
	MaxOfferTimeout      = routing.MaxOfferTimeout
	MaxKeepSameAgentWait = routing.MaxKeepSameAgentWait
	MinWrapUpBlock       = routing.MinWrapUpBlock
	MaxWrapUpBlock       = routing.MaxWrapUpBlock
)

// prepareDistribution applies routing's defaults to d and checks it: field
// by field first (a *FieldError naming "distribution.…"), the queues it
// names in tx (live, and locked against deletion on PostgreSQL until tx
// ends), then with routing's own validation (its *routing.FieldError or
// *routing.RuleError becomes a *FieldError naming "distribution.…").
func (s *Store) prepareDistribution(ctx context.Context, tx querier, d routing.Distribution) (routing.Distribution, error) {
	const path = "distribution"
	// Negative values first: routing's defaults might replace them.
	switch {
	case d.CapacityUnits < 0:
		return d, fieldErrorf(path+".capacity_units", "must be from 1 to %d, got %d", MaxCapacityUnits, d.CapacityUnits)
	case d.OfferTimeout < 0:
		return d, fieldErrorf(path+".offer_timeout", "must not be negative, got %q", d.OfferTimeout.D().String())
	case d.KeepSameAgent.Wait < 0:
		return d, fieldErrorf(path+".keep_same_agent.wait", "must not be negative, got %q", d.KeepSameAgent.Wait.D().String())
	case d.BlockCapacityDuringWrapUp.Duration < 0:
		return d, fieldErrorf(path+".block_capacity_during_wrap_up.duration", "must not be negative, got %q", d.BlockCapacityDuringWrapUp.Duration.D().String())
	}
	d = cloneDistribution(d.WithDefaults())
	switch d.Mode {
	case routing.ModePush, routing.ModePick:
	default:
		return d, fieldErrorf(path+".mode", "must be %s or %s, got %q", routing.ModePush, routing.ModePick, d.Mode)
	}
	if d.CapacityUnits < 1 || d.CapacityUnits > routing.MaxCapacityUnits {
		return d, fieldErrorf(path+".capacity_units", "must be from 1 to %d, got %d", routing.MaxCapacityUnits, d.CapacityUnits)
	}
	known := append(routing.ChoosablePresences(), routing.PresenceInactive)
	if len(d.AllowedPresences) == 0 {
		return d, fieldErrorf(path+".allowed_presences", "must name at least one presence")
	}
	for i, p := range d.AllowedPresences {
		field := fmt.Sprintf("%s.allowed_presences[%d]", path, i)
		if !slices.Contains(known, p) {
			return d, fieldErrorf(field, "must be one of %s, got %q", strings.Join(known, ", "), p)
		}
		if slices.Contains(d.AllowedPresences[:i], p) {
			return d, fieldErrorf(field, "%s is listed twice", p)
		}
	}
	if w := d.KeepSameAgent.Wait.D(); w < 0 || w > MaxKeepSameAgentWait {
		return d, fieldErrorf(path+".keep_same_agent.wait", "must be a duration from 0s to %v, got %q", MaxKeepSameAgentWait, w.String())
	}
	b := d.BlockCapacityDuringWrapUp
	switch b.Mode {
	case routing.WrapUpAlways, routing.WrapUpNever:
		if b.Duration != 0 {
			return d, fieldErrorf(path+".block_capacity_during_wrap_up.duration", "is only for mode %s", routing.WrapUpDuration)
		}
	case routing.WrapUpDuration:
		if b.Duration.D() < MinWrapUpBlock || b.Duration.D() > MaxWrapUpBlock {
			return d, fieldErrorf(path+".block_capacity_during_wrap_up.duration", "must be from %v to %v, got %q", MinWrapUpBlock, MaxWrapUpBlock, b.Duration.D().String())
		}
	default:
		return d, fieldErrorf(path+".block_capacity_during_wrap_up.mode", "must be %s, %s or %s, got %q",
			routing.WrapUpAlways, routing.WrapUpNever, routing.WrapUpDuration, b.Mode)
	}
	if t := d.OfferTimeout.D(); t < MinOfferTimeout || t > MaxOfferTimeout {
		return d, fieldErrorf(path+".offer_timeout", "must be from %v to %v, got %q", MinOfferTimeout, MaxOfferTimeout, t.String())
	}
	if d.MissedOfferPresence != "" && d.MissedOfferPresence != routing.PresenceInactive {
		return d, fieldErrorf(path+".missed_offer_presence", "must be %s, or empty to leave the agent's presence alone, got %q",
			routing.PresenceInactive, d.MissedOfferPresence)
	}
	if len(d.Rules) > MaxRoutingRules {
		return d, fieldErrorf(path+".routing_rules", "must have at most %d rules", MaxRoutingRules)
	}
	if d.Rules == nil {
		d.Rules = []routing.Rule{}
	}
	live := s.liveQueuesIn(ctx, tx)
	if d.FallbackQueueID == "" {
		return d, fieldErrorf(path+".fallback_queue", "is required: the id of the queue for conversations no rule sends elsewhere (GET /api/v1/queues)")
	}
	ok := live.exists(d.FallbackQueueID)
	if live.err != nil {
		return d, live.err
	}
	if !ok {
		return d, fieldErrorf(path+".fallback_queue", "no queue %q (GET /api/v1/queues lists them)", d.FallbackQueueID)
	}
	for i, r := range d.Rules {
		if r.QueueID == "" {
			continue // routing's validation names it
		}
		ok := live.exists(r.QueueID)
		if live.err != nil {
			return d, live.err
		}
		if !ok {
			return d, fieldErrorf(fmt.Sprintf("%s.routing_rules[%d].queue", path, i), "no queue %q (GET /api/v1/queues lists them)", r.QueueID)
		}
	}
	err := d.Validate(live.exists)
	if live.err != nil {
		return d, live.err
	}
	if err != nil {
		return d, routingFieldError(path+".", path, err)
	}
	return d, nil
}

// setIf sets *dst to *v unless v is nil.
func setIf[T any](dst, v *T) {
	if v != nil {
		*dst = *v
	}
}

// DeleteWorkstream soft-deletes a workstream: its page gets the defaults
// until another workstream is created for it.
func (s *Store) DeleteWorkstream(ctx context.Context, id string) (err error) {
	defer wrap(&err, "store.DeleteWorkstream(%q)", id)
	now := s.timestamp(s.clock())
	return execOne(ctx, s.db, `UPDATE workstreams SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL`, now, now, id)
}
