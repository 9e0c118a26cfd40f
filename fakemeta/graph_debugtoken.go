package fakemeta

import (
	"slices"
	"strings"
	"time"
)

// pageScopes are the permissions every page token of the fake carries.
var pageScopes = []string{"pages_show_list", "pages_messaging", "pages_manage_metadata", "pages_read_engagement", "public_profile"}

// dataAccessPeriod is how long after issue a token's data access lasts.
const dataAccessPeriod = 90 * 24 * time.Hour

// handleDebugToken serves GET /{v}/debug_token?input_token=..&access_token=
// <app_id>|<app_secret>. Only an app access token is accepted as
// access_token: a missing one answers 104, a wrong one 190 "Invalid OAuth
// access token - Cannot parse access token" (HTTP 400). The answer for the
// input token is always HTTP 200: {"data":{...,"is_valid":...}}, with an
// "error" object when it is not valid.
func (s *Server) handleDebugToken(q *request) *response {
	at := q.param("access_token")
	if at == "" {
		return s.errorResponse(newGraphError(104, 0))
	}
	appID, secret, ok := strings.Cut(at, "|")
	s.mu.Lock()
	a, known := s.apps[appID]
	valid := ok && known && a.secret == secret && secret != ""
	s.mu.Unlock()
	if !valid {
		return s.errorResponse(newGraphError(190, 0))
	}
	q.appID = appID

	in := q.param("input_token")
	if in == "" {
		return s.errorResponse(errParam("The parameter input_token is required"))
	}
	s.mu.Lock()
	t, found := s.tokens[in]
	var tc token
	var appName string
	if found {
		tc = *t
		appName = s.apps[t.appID].name
		q.pageID = t.pageID
	}
	s.mu.Unlock()

	return s.withFailures(q, func() *response {
		if !found {
			return s.jsonResponse(orderedObject{{"data", orderedObject{
				{"error", orderedObject{{"code", 190}, {"message", lookupError(190, 0).Message}}},
				{"is_valid", false},
				{"scopes", []string{}},
			}}})
		}
		s.mu.Lock()
		scopes := slices.Clone(s.scopesLocked(tc.pageID))
		s.mu.Unlock()
		var granular []orderedObject
		for _, sc := range scopes {
			if strings.HasPrefix(sc, "pages_") {
				granular = append(granular, orderedObject{{"scope", sc}, {"target_ids", []string{tc.pageID}}})
			}
		}
		data := orderedObject{
			{"app_id", tc.appID},
			{"type", "PAGE"},
			{"application", appName},
			{"data_access_expires_at", tc.dataAccessExpiry().Unix()},
		}
		if tc.invalidSubcode != 0 {
			data = append(data, kv{"error", orderedObject{
				{"code", 190},
				{"message", lookupError(190, tc.invalidSubcode).Message},
				{"subcode", tc.invalidSubcode},
			}})
		}
		data = append(data,
			kv{"expires_at", unixOrZero(tc.expiresAt)},
			kv{"is_valid", tc.invalidSubcode == 0},
			kv{"issued_at", tc.issuedAt.Unix()},
			kv{"profile_id", tc.pageID},
			kv{"scopes", scopes},
			kv{"granular_scopes", granular},
			kv{"user_id", tc.userID},
		)
		return s.jsonResponse(orderedObject{{"data", data}})
	})
}

func (t token) dataAccessExpiry() time.Time {
	if !t.dataAccessEnds.IsZero() {
		return t.dataAccessEnds
	}
	return t.issuedAt.Add(dataAccessPeriod)
}

// unixOrZero is Meta's 0 for "never".
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
