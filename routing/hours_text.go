package routing

import (
	"strings"
	"time"
)

// HolidayAt reports whether t falls on one of h's holidays (local date), so
// that a closed queue can say "holiday" rather than "out of hours".
func (h OperatingHours) HolidayAt(t time.Time) bool {
	loc := time.UTC
	if h.TimeZone != "" {
		l, err := location(h.TimeZone)
		if err != nil {
			return false // as openAt: a missing tz database counts as open
		}
		loc = l
	}
	day := t.In(loc).Format(time.DateOnly)
	for _, d := range h.Holidays {
		if d == day {
			return true
		}
	}
	return false
}

// String describes the hours for customers, compactly: "Mon 09:00-17:00,
// Tue 09:00-17:00 (Europe/Paris)" in the order given, "24/7" without
// periods. Days are abbreviated in English: Meta's locale is not known
// when the hours are read.
func (h OperatingHours) String() string {
	if len(h.Periods) == 0 {
		return "24/7"
	}
	parts := make([]string, 0, len(h.Periods))
	for _, p := range h.Periods {
		day := p.Day
		if len(day) >= 3 {
			day = strings.ToUpper(day[:1]) + day[1:3]
		}
		parts = append(parts, day+" "+p.Start+"-"+p.End)
	}
	s := strings.Join(parts, ", ")
	if h.TimeZone != "" {
		s += " (" + h.TimeZone + ")"
	}
	return s
}
