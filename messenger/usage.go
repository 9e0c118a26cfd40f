package messenger

import (
	"encoding/json"
	"net/http"
	"time"
)

// Usage is Meta's X-Business-Use-Case-Usage header on an answer: how much
// of the page's rate budget is used, and, once throttled, how long until
// calls are accepted again.
type Usage struct {
	// Percent is the highest of call_count, total_cputime and total_time.
	Percent int `json:"percent"`
	// RegainAccess is estimated_time_to_regain_access (Meta gives minutes).
	RegainAccess time.Duration `json:"regain_access,omitempty"`
}

// UsageHeader is where Meta reports the page's rate budget.
const UsageHeader = "X-Business-Use-Case-Usage"

// parseUsage reads the header; nil when absent or unreadable (it is
// advice: a malformed one never fails a call).
func parseUsage(h http.Header) *Usage {
	v := h.Get(UsageHeader)
	if v == "" {
		return nil
	}
	var byObject map[string][]struct {
		CallCount    flexInt64 `json:"call_count"`
		TotalCPUTime flexInt64 `json:"total_cputime"`
		TotalTime    flexInt64 `json:"total_time"`
		Regain       flexInt64 `json:"estimated_time_to_regain_access"`
	}
	if json.Unmarshal([]byte(v), &byObject) != nil {
		return nil
	}
	u := &Usage{}
	for _, entries := range byObject {
		for _, e := range entries {
			u.Percent = max(u.Percent, int(e.CallCount), int(e.TotalCPUTime), int(e.TotalTime))
			u.RegainAccess = max(u.RegainAccess, time.Duration(e.Regain)*time.Minute)
		}
	}
	return u
}

// usageCarrier is an answer that keeps the usage header.
type usageCarrier interface{ setUsage(*Usage) }

func (r *SendResponse) setUsage(u *Usage) { r.Usage = u }
