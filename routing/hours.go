package routing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of operating hours (as the API documents them).
const (
	MaxPeriods  = 100
	MaxHolidays = 1000
)

var weekdays = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"} // time.Weekday order

const dayList = "monday, tuesday, wednesday, thursday, friday, saturday or sunday"

func (h OperatingHours) validate() error {
	const path = "operating_hours"
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: path + "." + field, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case h.TimeZone == "":
		if len(h.Periods) > 0 || len(h.Holidays) > 0 {
			return bad("time_zone", "is required with periods or holidays: an IANA time zone such as Europe/Paris or UTC")
		}
	case h.TimeZone == "Local":
		return bad("time_zone", "must be an IANA time zone such as Europe/Paris, not Local")
	default:
		if _, err := location(h.TimeZone); err != nil {
			return bad("time_zone", "unknown time zone %q: want an IANA name such as Europe/Paris or UTC", h.TimeZone)
		}
	}
	if len(h.Periods) > MaxPeriods {
		return bad("periods", "must have at most %d periods, got %d", MaxPeriods, len(h.Periods))
	}
	for i, p := range h.Periods {
		field := fmt.Sprintf("periods[%d]", i)
		if !slices.Contains(weekdays, p.Day) {
			return bad(field+".day", "must be %s (lowercase), got %q", dayList, p.Day)
		}
		start, ok := clock(p.Start, false)
		if !ok {
			return bad(field+".start", "must be a time of day \"HH:MM\" from 00:00 to 23:59, such as \"09:00\", got %q", p.Start)
		}
		end, ok := clock(p.End, true)
		if !ok {
			return bad(field+".end", "must be a time of day \"HH:MM\" from 00:00 to 24:00, such as \"17:30\", got %q", p.End)
		}
		if start == end {
			return bad(field+".end", "equals the start, so the period is empty (a whole day is 00:00 to 24:00)")
		}
	}
	if len(h.Holidays) > MaxHolidays {
		return bad("holidays", "must have at most %d dates, got %d", MaxHolidays, len(h.Holidays))
	}
	for i, d := range h.Holidays {
		field := fmt.Sprintf("holidays[%d]", i)
		if _, err := time.Parse(time.DateOnly, d); err != nil || len(d) != len(time.DateOnly) {
			return bad(field, "must be a date \"YYYY-MM-DD\" such as \"2026-12-25\", got %q", d)
		}
		if slices.Contains(h.Holidays[:i], d) {
			return bad(field, "%s is listed twice", d)
		}
	}
	return nil
}

// clock parses "HH:MM" into minutes after midnight; "24:00" only for an
// end.
func clock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' || !digits(s[:2]) || !digits(s[3:]) {
		return 0, false
	}
	h, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[3:])
	switch {
	case end && h == 24 && m == 0:
		return 24 * 60, true
	case h > 23 || m > 59:
		return 0, false
	}
	return h*60 + m, true
}

func digits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}

func (h OperatingHours) openAt(t time.Time) bool {
	loc := time.UTC
	if h.TimeZone != "" {
		l, err := location(h.TimeZone)
		if err != nil {
			// Saved hours were validated: this is a missing tz database.
			// Open is the safe side: closed could end conversations.
			return true
		}
		loc = l
	}
	local := t.In(loc)
	if slices.Contains(h.Holidays, local.Format(time.DateOnly)) {
		return false
	}
	if len(h.Periods) == 0 {
		return true
	}
	// Wall-clock terms, so that DST changes move nothing: 09:00 is 09:00
	// on either side of them.
	now := local.Hour()*3600 + local.Minute()*60 + local.Second()
	today := weekdays[local.Weekday()]
	yesterday := weekdays[(local.Weekday()+6)%7]
	for _, p := range h.Periods {
		start, ok1 := clock(p.Start, false)
		end, ok2 := clock(p.End, true)
		if !ok1 || !ok2 || start == end {
			continue
		}
		start, end = start*60, end*60
		switch {
		case p.Day == today && start < end:
			if start <= now && now < end {
				return true
			}
		case p.Day == today: // past midnight: today's part
			if start <= now {
				return true
			}
		}
		if p.Day == yesterday && end < start && now < end { // yesterday's, past midnight
			return true
		}
	}
	return false
}

// locations caches time.LoadLocation, which reads the tz database each
// time. Only names that load are kept, so the cache stays small.
var locations sync.Map // name -> *time.Location

func location(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}
