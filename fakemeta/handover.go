package fakemeta

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// PageInboxAppID is Meta's Page Inbox, always allowed as a handover target.
const PageInboxAppID = "263902037430900"

// handleHandover serves POST /{v}/{page-id}/pass_thread_control and
// take_thread_control: {recipient:{id}, target_app_id (pass), metadata}.
// Passing needs the thread (or no handover yet); taking is the primary
// app's right. The app that gains control gets pass_thread_control, the
// one that loses it take_thread_control (webhook field
// messaging_handovers).
func (s *Server) handleHandover(q *request, pathPage, action string) *response {
	return s.pageOp(q, pathPage, func(t token) *response {
		var req struct {
			Recipient struct {
				ID string `json:"id"`
			} `json:"recipient"`
			TargetAppID json.Number `json:"target_app_id"`
			Metadata    string      `json:"metadata"`
		}
		if q.isJSON() {
			if err := json.Unmarshal(q.body, &req); err != nil {
				return s.errorResponse(errParam("Invalid JSON in request body"))
			}
		}
		if req.Recipient.ID == "" {
			return s.errorResponse(errParam("The parameter recipient is required"))
		}
		target := req.TargetAppID.String()
		s.mu.Lock()
		p := s.pages[t.pageID]
		u := s.userLocked(t.pageID, req.Recipient.ID)
		prev := u.owner
		if prev == "" {
			prev = t.appID
		}
		switch action {
		case OpPassThread:
			_, linked := p.apps[target]
			switch {
			case target == "":
				s.mu.Unlock()
				return s.errorResponse(errParam("The parameter target_app_id is required"))
			case !linked && target != PageInboxAppID:
				s.mu.Unlock()
				return s.errorResponse(errParam("Invalid app ID: app %s has no role on this page", target))
			case prev != t.appID:
				s.mu.Unlock()
				return s.errorResponse(&graphError{status: http.StatusForbidden, code: 10, typ: typeOAuth,
					message: "(#10) Application does not have permission for this action: it does not control the thread"})
			}
			u.owner = target
		case OpTakeThread:
			target = t.appID
			u.owner = t.appID
		}
		s.mu.Unlock()
		s.announceHandover(q.r.Context(), t.pageID, req.Recipient.ID, prev, target, req.Metadata)
		return s.jsonResponse(orderedObject{{"success", true}})
	})
}

// announceHandover tells the new owner (pass_thread_control) and the
// previous one (take_thread_control) that control moved, each only if it is
// a webhook app of the page (the Page Inbox has none here).
func (s *Server) announceHandover(ctx context.Context, pageID, psid, from, to, metadata string) {
	if from == to {
		return
	}
	ev := func(field string, body orderedObject) json.RawMessage {
		return s.handoverEvent(pageID, psid, field, body)
	}
	pass := ev("pass_thread_control", orderedObject{{"new_owner_app_id", to}, {"previous_owner_app_id", from}, {"metadata", metadata}})
	take := ev("take_thread_control", orderedObject{{"previous_owner_app_id", from}, {"new_owner_app_id", to}, {"metadata", metadata}})
	for _, d := range []struct {
		app string
		ev  json.RawMessage
	}{{to, pass}, {from, take}} {
		if err := s.deliverToApp(ctx, pageID, d.app, d.ev); err != nil {
			s.log.Info("handover event not delivered", "app_id", d.app, "page_id", pageID, "err", err)
		}
	}
}

// handoverEvent is a messaging_handovers event of the thread with psid, now.
func (s *Server) handoverEvent(pageID, psid, field string, body orderedObject) json.RawMessage {
	return mustJSON(orderedObject{
		{"sender", orderedObject{{"id", psid}}},
		{"recipient", orderedObject{{"id", pageID}}},
		{"timestamp", s.now().UnixMilli()},
		{field, body},
	})
}

// deliverToApp delivers one messaging_handovers event to one app of the
// page, if it has a verified webhook, a subscription and the field.
func (s *Server) deliverToApp(ctx context.Context, pageID, appID string, ev json.RawMessage) error {
	s.mu.Lock()
	p, ok := s.pages[pageID]
	var t *deliveryTarget
	if ok {
		for _, tt := range s.targetsLocked(p, []json.RawMessage{ev}, nil) {
			if tt.appID == appID {
				t = &tt
			}
		}
	}
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	if _, err := s.attempt(ctx, s.newDelivery(*t, pageID, s.now())); err != nil {
		return fmt.Errorf("deliver to app %s: %w", appID, err)
	}
	return nil
}

// ThreadOwner is the app that controls the thread with psid ("" before any
// handover).
func (s *Server) ThreadOwner(pageID, psid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userLocked(pageID, psid).owner
}

// OtherAppTakesThread models another app of the page (the Page Inbox, a
// bot) taking the thread: the apps that controlled it get
// take_thread_control, and the customer's next messages reach them as
// standby.
func (s *Server) OtherAppTakesThread(ctx context.Context, pageID, psid, appID string) {
	s.mu.Lock()
	u := s.userLocked(s.mustPageLocked("OtherAppTakesThread", pageID).id, psid)
	losers := s.controllersLocked(pageID, u.owner)
	u.owner = appID
	s.mu.Unlock()
	for _, l := range losers {
		if l != appID {
			s.announceHandover(ctx, pageID, psid, l, appID, "")
		}
	}
}

// controllersLocked are the apps that control a thread whose owner is
// owner: every app of the page before any handover ("").
func (s *Server) controllersLocked(pageID, owner string) []string {
	if owner == "" {
		return sortedKeys(s.pages[pageID].apps)
	}
	return []string{owner}
}

// OtherAppRequestsThread models another app of the page asking for the
// thread: the app that controls it (every other app before any handover)
// gets request_thread_control with requested_owner_app_id; the thread
// does not move.
func (s *Server) OtherAppRequestsThread(ctx context.Context, pageID, psid, appID, metadata string) {
	s.mu.Lock()
	u := s.userLocked(s.mustPageLocked("OtherAppRequestsThread", pageID).id, psid)
	owners := s.controllersLocked(pageID, u.owner)
	s.mu.Unlock()
	ev := s.handoverEvent(pageID, psid, "request_thread_control", orderedObject{{"requested_owner_app_id", appID}, {"metadata", metadata}})
	for _, o := range owners {
		if o == appID {
			continue
		}
		if err := s.deliverToApp(ctx, pageID, o, ev); err != nil {
			s.log.Info("handover event not delivered", "app_id", o, "page_id", pageID, "err", err)
		}
	}
}

// OtherAppPassesThread models the app controlling the thread passing it to
// toAppID, which gets pass_thread_control.
func (s *Server) OtherAppPassesThread(ctx context.Context, pageID, psid, toAppID string) {
	s.mu.Lock()
	u := s.userLocked(s.mustPageLocked("OtherAppPassesThread", pageID).id, psid)
	from := u.owner
	u.owner = toAppID
	s.mu.Unlock()
	s.announceHandover(ctx, pageID, psid, from, toAppID, "")
}

// ownerLocked is the app controlling the thread an event belongs to ("":
// no handover yet, every app gets it as messaging[]).
func (s *Server) ownerLocked(pageID string, ev json.RawMessage) string {
	var m struct {
		Sender, Recipient struct {
			ID string `json:"id"`
		}
		Message *struct {
			IsEcho bool `json:"is_echo"`
		} `json:"message"`
	}
	if json.Unmarshal(ev, &m) != nil {
		return ""
	}
	psid := m.Sender.ID
	if m.Message != nil && m.Message.IsEcho {
		psid = m.Recipient.ID
	}
	u, ok := s.users[userKey{pageID, psid}]
	if !ok {
		return ""
	}
	return u.owner
}

// ctlThread: another app of the page takes the thread ("take"), passes
// it to to_app_id ("pass"), or asks for it ("request", with metadata).
func (s *Server) ctlThread(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PageID   string `json:"page_id"`
		PSID     string `json:"psid"`
		Action   string `json:"action"`
		AppID    string `json:"app_id"`
		ToAppID  string `json:"to_app_id"`
		Metadata string `json:"metadata"`
	}
	if !ctlDecode(w, r, &in) || !ctlRequire(w, "page_id", in.PageID, "psid", in.PSID, "action", in.Action) {
		return
	}
	if !s.hasPage(in.PageID) {
		ctlError(w, http.StatusNotFound, "unknown page "+in.PageID)
		return
	}
	switch in.Action {
	case "take":
		if in.AppID == "" {
			in.AppID = PageInboxAppID
		}
		s.OtherAppTakesThread(r.Context(), in.PageID, in.PSID, in.AppID)
	case "pass":
		if !ctlRequire(w, "to_app_id", in.ToAppID) {
			return
		}
		s.OtherAppPassesThread(r.Context(), in.PageID, in.PSID, in.ToAppID)
	case "request":
		if in.AppID == "" {
			in.AppID = PageInboxAppID
		}
		s.OtherAppRequestsThread(r.Context(), in.PageID, in.PSID, in.AppID, in.Metadata)
	default:
		ctlError(w, http.StatusBadRequest, `action must be "take", "pass" or "request"`)
		return
	}
	ctlOK(w)
}
