package routing

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func wantFieldError(t *testing.T, err error, field, message string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want a *FieldError for %s", err, field)
	}
	if fe.Field != field || !strings.Contains(fe.Message, message) {
		t.Fatalf("error = {%q %q}, want {%q ...%q...}", fe.Field, fe.Message, field, message)
	}
	if strings.Contains(fe.Message, "%!") {
		t.Fatalf("message %q is badly formatted", fe.Message)
	}
}

func TestOperatingHoursValidate(t *testing.T) {
	week := []Period{{Day: "monday", Start: "09:00", End: "17:30"}, {Day: "friday", Start: "22:00", End: "06:00"}, {Day: "saturday", Start: "00:00", End: "24:00"}}
	for _, h := range []OperatingHours{
		{},
		{TimeZone: "UTC"},
		{TimeZone: "Europe/Paris", Periods: week},
		{TimeZone: "America/New_York", Holidays: []string{"2026-12-25", "2027-01-01"}},
		{TimeZone: "Asia/Kolkata", Periods: []Period{{Day: "sunday", Start: "23:59", End: "00:00"}}},
	} {
		if err := h.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v, want nil", h, err)
		}
	}
	period := func(day, start, end string) OperatingHours {
		return OperatingHours{TimeZone: "Europe/Paris", Periods: append(week[:1:1], Period{Day: day, Start: start, End: end})}
	}
	tooMany := OperatingHours{TimeZone: "UTC", Periods: make([]Period, MaxPeriods+1)}
	for i := range tooMany.Periods {
		tooMany.Periods[i] = week[0]
	}
	for _, tc := range []struct {
		what    string
		h       OperatingHours
		field   string
		message string
	}{
		{"periods without a time zone", OperatingHours{Periods: week}, "operating_hours.time_zone", "is required with periods or holidays"},
		{"holidays without a time zone", OperatingHours{Holidays: []string{"2026-12-25"}}, "operating_hours.time_zone", "is required"},
		{"unknown time zone", OperatingHours{TimeZone: "Europe/Atlantis"}, "operating_hours.time_zone", `unknown time zone "Europe/Atlantis"`},
		{"Local", OperatingHours{TimeZone: "Local"}, "operating_hours.time_zone", "not Local"},
		{"capitalized day", period("Monday", "09:00", "10:00"), "operating_hours.periods[1].day", "monday, tuesday"},
		{"short day", period("mon", "09:00", "10:00"), "operating_hours.periods[1].day", `got "mon"`},
		{"no day", period("", "09:00", "10:00"), "operating_hours.periods[1].day", "must be monday"},
		{"one-digit hour", period("monday", "9:00", "10:00"), "operating_hours.periods[1].start", `got "9:00"`},
		{"start at 24:00", period("monday", "24:00", "10:00"), "operating_hours.periods[1].start", "00:00 to 23:59"},
		{"minute 60", period("monday", "23:60", "10:00"), "operating_hours.periods[1].start", "HH:MM"},
		{"signed start", period("monday", "+9:00", "10:00"), "operating_hours.periods[1].start", "HH:MM"},
		{"seconds", period("monday", "09:00:00", "10:00"), "operating_hours.periods[1].start", "HH:MM"},
		{"end past 24:00", period("monday", "09:00", "24:01"), "operating_hours.periods[1].end", "00:00 to 24:00"},
		{"end at 25:00", period("monday", "09:00", "25:00"), "operating_hours.periods[1].end", "HH:MM"},
		{"empty end", period("monday", "09:00", ""), "operating_hours.periods[1].end", "HH:MM"},
		{"empty period", period("monday", "09:00", "09:00"), "operating_hours.periods[1].end", "equals the start"},
		{"too many periods", tooMany, "operating_hours.periods", "at most 100"},
		{"bad month", OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-13-01"}}, "operating_hours.holidays[0]", "YYYY-MM-DD"},
		{"one-digit month", OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-12-24", "2026-1-05"}}, "operating_hours.holidays[1]", `got "2026-1-05"`},
		{"a time, not a date", OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-12-25T00:00:00Z"}}, "operating_hours.holidays[0]", "YYYY-MM-DD"},
		{"February 30", OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-02-30"}}, "operating_hours.holidays[0]", "YYYY-MM-DD"},
		{"twice the same holiday", OperatingHours{TimeZone: "UTC", Holidays: []string{"2026-12-25", "2026-12-26", "2026-12-25"}}, "operating_hours.holidays[2]", "listed twice"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			wantFieldError(t, tc.h.Validate(), tc.field, tc.message)
		})
	}
}

func TestOpenAt(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { // Paris wall clock, given to OpenAt in UTC
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	utc := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	office := OperatingHours{TimeZone: "Europe/Paris", Periods: []Period{
		{Day: "monday", Start: "09:00", End: "17:30"},
		{Day: "friday", Start: "22:00", End: "06:00"},   // into saturday
		{Day: "sunday", Start: "01:00", End: "02:30"},   // across both 2026 DST changes
		{Day: "saturday", Start: "18:00", End: "24:00"}, // to midnight
	}, Holidays: []string{"2026-12-25", "2026-03-30"}}
	weekend := OperatingHours{TimeZone: "Europe/Paris", Periods: []Period{{Day: "sunday", Start: "20:00", End: "02:00"}}} // into monday
	allDay := OperatingHours{TimeZone: "Europe/Paris", Holidays: []string{"2026-12-25"}}
	for _, tc := range []struct {
		what string
		h    OperatingHours
		t    time.Time
		want bool
	}{
		{"no hours at all", OperatingHours{}, utc("2026-12-25 03:00:00"), true},
		{"monday before opening", office, at("2026-03-23 08:59:59"), false},
		{"monday at opening", office, at("2026-03-23 09:00:00"), true},
		{"monday just before closing", office, at("2026-03-23 17:29:59"), true},
		{"monday at closing", office, at("2026-03-23 17:30:00"), false},
		{"tuesday: no period", office, at("2026-03-24 10:00:00"), false},
		// 07:30 UTC is 08:30 in winter (closed), 09:30 in summer (open).
		{"07:30 UTC in winter", office, utc("2026-03-23 07:30:00"), false},
		{"07:30 UTC in summer", office, utc("2026-04-06 07:30:00"), true},
		{"16:00 UTC in winter", office, utc("2026-03-23 16:00:00"), true},
		{"16:00 UTC in summer", office, utc("2026-04-06 16:00:00"), false},
		// Spring forward, 29 March 2026: 02:00 CET is 03:00 CEST.
		{"spring forward: 01:30 CET", office, utc("2026-03-29 00:30:00"), true},
		{"spring forward: 01:59 CET", office, utc("2026-03-29 00:59:59"), true},
		{"spring forward: 03:00 CEST, an hour later", office, utc("2026-03-29 01:00:00"), false},
		// Fall back, 25 October 2026: 02:00 to 03:00 happens twice.
		{"fall back: 00:59 CEST", office, utc("2026-10-24 22:59:00"), false},
		{"fall back: 01:00 CEST", office, utc("2026-10-24 23:00:00"), true},
		{"fall back: first 02:15 (CEST)", office, utc("2026-10-25 00:15:00"), true},
		{"fall back: second 02:15 (CET)", office, utc("2026-10-25 01:15:00"), true},
		{"fall back: 02:30 CET", office, utc("2026-10-25 01:30:00"), false},
		// Overnight periods.
		{"friday before the night", office, at("2026-03-27 21:59:59"), false},
		{"friday night", office, at("2026-03-27 22:00:00"), true},
		{"saturday midnight", office, at("2026-03-28 00:00:00"), true},
		{"saturday early", office, at("2026-03-28 05:59:59"), true},
		{"saturday at the night's end", office, at("2026-03-28 06:00:00"), false},
		{"friday early: not thursday's night", office, at("2026-03-27 01:00:00"), false},
		{"saturday to midnight", office, at("2026-03-28 23:59:59"), true},
		{"sunday midnight after a 24:00 end", office, at("2026-03-29 00:00:00"), false},
		{"sunday evening", weekend, at("2026-03-22 20:00:00"), true},
		{"monday, in sunday's night: week wraps", weekend, at("2026-03-23 01:59:59"), true},
		{"monday at the night's end", weekend, at("2026-03-23 02:00:00"), false},
		{"sunday before the night", weekend, at("2026-03-22 19:59:59"), false},
		{"saturday: sunday's night is not saturday's", weekend, at("2026-03-28 01:00:00"), false},
		// Holidays, by the local date.
		{"a monday holiday", office, at("2026-03-30 10:00:00"), false},
		{"the monday after", office, at("2026-04-06 10:00:00"), true},
		{"friday night of a holiday", office, at("2026-12-25 23:00:00"), false},
		{"saturday after a holiday: not a holiday", office, at("2026-12-26 01:00:00"), true},
		{"24x7: christmas eve, 23:30 in Paris", allDay, utc("2026-12-24 22:30:00"), true},
		{"24x7: christmas, 00:30 in Paris, 23:30 UTC the day before", allDay, utc("2026-12-24 23:30:00"), false},
		{"24x7: christmas end", allDay, at("2026-12-25 23:59:59"), false},
		{"24x7: the day after", allDay, at("2026-12-26 00:00:00"), true},
	} {
		t.Run(tc.what, func(t *testing.T) {
			if err := tc.h.Validate(); err != nil {
				t.Fatalf("the hours are invalid: %v", err)
			}
			if got := tc.h.OpenAt(tc.t); got != tc.want {
				t.Fatalf("OpenAt(%s, Paris %s) = %v, want %v", tc.t.Format(time.RFC3339), tc.t.In(paris).Format("Mon 15:04:05 MST"), got, tc.want)
			}
		})
	}
}
