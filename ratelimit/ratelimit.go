// Package ratelimit holds the arithmetic of Parley's per-page send limits
// (issue 10): Meta allows 300 Send API calls a second per page for text,
// 10 for audio and video, less when its X-Business-Use-Case-Usage header
// says the page's budget is nearly spent, and none until
// estimated_time_to_regain_access once it throttles. The store keeps one
// limiter per page and lane, shared by every worker.
package ratelimit

import (
	"math"
	"time"
)

// Lanes of the Send API limits.
const (
	LaneText  = "text"  // text, images, files, quick replies
	LaneMedia = "media" // audio and video
)

// Limits are a lane's rate (calls a second) and burst (calls at once).
type Limits struct {
	Rate  float64
	Burst int
}

// Meta's documented limits per page.
var Meta = map[string]Limits{
	LaneText:  {Rate: 300, Burst: 300},
	LaneMedia: {Rate: 10, Burst: 10},
}

// LaneOf is the lane of a message with this attachment type.
func LaneOf(attachmentType string) string {
	switch attachmentType {
	case "audio", "video":
		return LaneMedia
	}
	return LaneText
}

// Reserve is the generic cell rate algorithm: tat is the lane's theoretical
// arrival time (zero: never used). It returns the new one and how long the
// caller must wait before its call; the call is counted either way.
func Reserve(tat, now time.Time, l Limits) (newTAT time.Time, wait time.Duration) {
	if l.Rate <= 0 {
		return tat, 0
	}
	interval := time.Duration(float64(time.Second) / l.Rate)
	tolerance := time.Duration(max(l.Burst-1, 0)) * interval
	if tat.Before(now) {
		tat = now
	}
	if w := tat.Sub(now) - tolerance; w > 0 {
		wait = w
	}
	return tat.Add(interval), wait
}

// Scaled is l slowed by factor (0 < factor <= 1), never below a call a
// second nor a burst of one.
func (l Limits) Scaled(factor float64) Limits {
	if factor <= 0 || factor >= 1 {
		return l
	}
	return Limits{Rate: math.Max(1, l.Rate*factor), Burst: max(1, int(float64(l.Burst)*factor))}
}

// FactorFor is how much of the lane's rate to use when Meta says the
// page's budget is pct% used: all of it below 75%, half up to 90%, a tenth
// beyond.
func FactorFor(pct int) float64 {
	switch {
	case pct >= 90:
		return 0.1
	case pct >= 75:
		return 0.5
	}
	return 1
}
