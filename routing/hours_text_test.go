package routing

import (
	"testing"
	"time"
)

func TestHolidayAtAndHoursText(t *testing.T) {
	h := OperatingHours{TimeZone: "Europe/Paris", Holidays: []string{"2026-12-25"},
		Periods: []Period{{Day: "monday", Start: "09:00", End: "17:00"}, {Day: "tuesday", Start: "09:00", End: "12:30"}}}
	// 23:30 UTC on the 24th is already the 25th in Paris.
	if !h.HolidayAt(time.Date(2026, 12, 24, 23, 30, 0, 0, time.UTC)) {
		t.Error("HolidayAt(Christmas in Paris) = false")
	}
	if h.HolidayAt(time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)) {
		t.Error("HolidayAt(Christmas Eve) = true")
	}
	if got, want := h.String(), "Mon 09:00-17:00, Tue 09:00-12:30 (Europe/Paris)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (OperatingHours{}).String(); got != "24/7" {
		t.Errorf("String(no periods) = %q, want 24/7", got)
	}
}
