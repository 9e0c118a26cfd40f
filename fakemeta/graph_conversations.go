package fakemeta

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"
)

// threadLookupScopes: Meta's Conversations API reads a Page's messages only
// with pages_read_engagement and pages_manage_metadata. As for any call the
// token lacks the permission for (messenger-platform.md, "User profile,
// permissions, app modes" and its error table), Meta answers an
// OAuthException; the fake uses (#10), which Parley classifies as
// permission_denied, never as a window or user error.
var threadLookupScopes = []string{"pages_read_engagement", "pages_manage_metadata"}

// maxThreadMessages is the most messages one page of the listing holds.
const maxThreadMessages = 25

var messagesLimit = regexp.MustCompile(`messages\.limit\((\d+)\)`)

// handleConversations serves GET /{v}/{page-id}/conversations?platform=
// messenger&user_id=PSID&fields=messages.limit(N){id,message,created_time,from}:
// the thread with that person and its newest messages first. Without the
// permissions Meta answers (#10), as for any call the token may not make.
func (s *Server) handleConversations(q *request, pathPage string) *response {
	return s.pageOp(q, pathPage, func(t token) *response {
		s.mu.Lock()
		scopes := s.scopesLocked(t.pageID)
		s.mu.Unlock()
		for _, sc := range threadLookupScopes {
			if !slices.Contains(scopes, sc) {
				e := newGraphError(10, 0)
				e.message = "(#10) This endpoint requires the '" + sc + "' permission"
				return s.errorResponse(e)
			}
		}
		if p := q.param("platform"); p != "" && p != "messenger" {
			return s.errorResponse(errParam("platform must be messenger or instagram"))
		}
		psid := q.param("user_id")
		limit := maxThreadMessages
		if m := messagesLimit.FindStringSubmatch(q.param("fields")); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
				limit = min(n, maxThreadMessages)
			}
		}
		type msg struct {
			id, text, from string
			at             time.Time
		}
		var all []msg
		s.mu.Lock()
		for _, m := range s.sent {
			if m.MessageID != "" && m.PageID == t.pageID && (psid == "" || m.PSID == psid) {
				all = append(all, msg{m.MessageID, m.Text, t.pageID, m.At})
			}
		}
		for _, m := range s.pages[t.pageID].inbound {
			if psid == "" || m.psid == psid {
				all = append(all, msg{m.mid, m.text, m.psid, m.at})
			}
		}
		s.mu.Unlock()
		if len(all) == 0 {
			return s.jsonResponse(orderedObject{{"data", []orderedObject{}}})
		}
		// Oldest first, keeping the order of recording within a second; then
		// newest first as Meta lists them.
		sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
		slices.Reverse(all)
		all = all[:min(len(all), limit)]
		data := make([]orderedObject, 0, len(all))
		for _, m := range all {
			o := orderedObject{{"id", m.id}, {"created_time", m.at.UTC().Format("2006-01-02T15:04:05-0700")}}
			o = append(o, kv{"from", orderedObject{{"id", m.from}}})
			if m.text != "" {
				o = append(o, kv{"message", m.text})
			}
			data = append(data, o)
		}
		thread := orderedObject{{"id", "t_" + t.pageID + "_" + psid}, {"messages", orderedObject{{"data", data}}}}
		return s.jsonResponse(orderedObject{{"data", []orderedObject{thread}}})
	})
}
