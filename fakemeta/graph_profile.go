package fakemeta

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// profileFields are the User Profile API fields a page token may read;
// locale, timezone and gender need permissions the fake never grants.
var profileFields = map[string]bool{"id": true, "name": true, "first_name": true, "last_name": true, "profile_pic": true}

// handleNode serves GET /{v}/{id}: the page itself (id "me" or the token's
// page id) or a person's profile (id = a PSID).
func (s *Server) handleNode(q *request, id string) *response {
	s.mu.Lock()
	_, isPage := s.pages[id]
	s.mu.Unlock()
	if id == "me" || isPage {
		q.op = OpPage
		if q.r.Method != http.MethodGet {
			return s.errorResponse(errUnsupported(q.r.Method, id))
		}
		return s.pageOp(q, id, func(t token) *response {
			s.mu.Lock()
			name := s.pages[t.pageID].name
			s.mu.Unlock()
			return s.jsonResponse(orderedObject{{"name", name}, {"id", t.pageID}})
		})
	}
	q.op = OpProfile
	if q.r.Method != http.MethodGet {
		return s.errorResponse(errUnsupported(q.r.Method, id))
	}
	return s.pageOp(q, "", func(t token) *response { return s.profile(q, t, id) })
}

func (s *Server) profile(q *request, t token, psid string) *response {
	fields := []string{"name", "id"}
	if f := q.param("fields"); f != "" {
		fields = nil
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				fields = append(fields, name)
			}
		}
	}
	for _, f := range fields {
		if !profileFields[f] {
			return s.errorResponse(errParam("Tried accessing nonexisting field (%s) on node type (User)", f))
		}
	}

	s.mu.Lock()
	u, ok := s.users[userKey{t.pageID, psid}]
	var first, last string
	visible := ok && u.profileSet && u.visible
	if visible {
		first, last = u.first, u.last
	}
	now := s.now()
	s.mu.Unlock()
	if !visible {
		return s.errorResponse(errUnsupported(http.MethodGet, psid))
	}

	// Graph always answers the id, after the requested fields.
	obj := orderedObject{}
	for _, f := range fields {
		switch f {
		case "name":
			obj = append(obj, kv{"name", strings.TrimSpace(first + " " + last)})
		case "first_name":
			obj = append(obj, kv{"first_name", first})
		case "last_name":
			obj = append(obj, kv{"last_name", last})
		case "profile_pic":
			obj = append(obj, kv{"profile_pic", profilePicURL(psid, now)})
		}
	}
	obj = append(obj, kv{"id", psid})
	return s.jsonResponse(obj)
}

// profilePicURL looks like Meta's: it expires (ext) a few days from now.
func profilePicURL(psid string, now time.Time) string {
	v := url.Values{}
	v.Set("psid", psid)
	v.Set("width", "1024")
	v.Set("ext", strconv.FormatInt(now.Add(72*time.Hour).Unix(), 10))
	v.Set("hash", fbtraceID())
	return "https://platform-lookaside.fbsbx.com/platform/profilepic/?" + v.Encode()
}
