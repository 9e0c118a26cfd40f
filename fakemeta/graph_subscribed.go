package fakemeta

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// handleSubscribedApps serves GET|POST|DELETE /{v}/{page-id}/subscribed_apps.
//
// GET lists the apps subscribed to the page: {"data":[{"id","name",
// "subscribed_fields"}]}. POST subscribes the token's app with the
// subscribed_fields parameter (query or form; comma-separated or a JSON
// array; required, messaging fields only) and answers {"success":true}.
// DELETE unsubscribes the token's app. Webhooks reach an app only for the
// fields both its webhook and its page subscription hold.
func (s *Server) handleSubscribedApps(q *request, pathPage string) *response {
	return s.pageOp(q, pathPage, func(t token) *response {
		switch q.r.Method {
		case http.MethodGet:
			s.mu.Lock()
			p := s.pages[t.pageID]
			data := []orderedObject{}
			for _, id := range sortedKeys(p.apps) {
				pa := p.apps[id]
				if !pa.subscribed {
					continue
				}
				data = append(data, orderedObject{
					{"name", s.apps[id].name},
					{"id", id},
					{"subscribed_fields", slices.Clone(pa.fields)},
				})
			}
			s.mu.Unlock()
			return s.jsonResponse(orderedObject{{"data", data}})

		case http.MethodPost:
			raw := q.param("subscribed_fields")
			if raw == "" {
				return s.errorResponse(errParam("The parameter subscribed_fields is required"))
			}
			fields, gerr := parseFieldList(raw)
			if gerr != nil {
				return s.errorResponse(gerr)
			}
			s.mu.Lock()
			pa := s.pages[t.pageID].apps[t.appID]
			pa.subscribed, pa.fields = true, fields
			s.mu.Unlock()
			return s.jsonResponse(orderedObject{{"success", true}})

		default: // DELETE
			s.mu.Lock()
			pa := s.pages[t.pageID].apps[t.appID]
			pa.subscribed, pa.fields = false, nil
			s.mu.Unlock()
			return s.jsonResponse(orderedObject{{"success", true}})
		}
	})
}

// parseFieldList reads "a,b" or ["a","b"] and checks every field.
func parseFieldList(raw string) ([]string, *graphError) {
	var fields []string
	if strings.HasPrefix(strings.TrimSpace(raw), "[") {
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			return nil, errParam("Param subscribed_fields must be an array of strings")
		}
	} else {
		for _, f := range strings.Split(raw, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
	}
	known := MessagingFields()
	var out []string
	for i, f := range fields {
		if !slices.Contains(known, f) {
			return nil, errParam("Param subscribed_fields[%d] must be one of {%s} - got %q", i, strings.Join(known, ", "), f)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, errParam("The parameter subscribed_fields is required")
	}
	return out, nil
}
