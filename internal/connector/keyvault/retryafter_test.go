package keyvault

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		k, v string
		want time.Duration
	}{
		{"Retry-After", "5", 5 * time.Second},
		{"Retry-After", " 5 ", 5 * time.Second},
		{"Retry-After", "0", 0},
		{"Retry-After", "-3", 0},
		{"Retry-After", "x", 0},
		{"Retry-After", "99999999999999999999", 0},
		{"Retry-After", "86400", MaxRetryAfter},
		{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Retry-After", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Retry-After-Ms", "1500", 1500 * time.Millisecond},
		{"X-Ms-Retry-After-Ms", "250", 250 * time.Millisecond},
		{"X-Ms-Retry-After-Ms", "9223372036854775807", MaxRetryAfter},
		{"X-Ms-Retry-After-Ms", "-1", 0},
	} {
		h := http.Header{}
		h.Set(tc.k, tc.v)
		if got := parseRetryAfter(h, now); got != tc.want {
			t.Errorf("%s: %q = %v, want %v", tc.k, tc.v, got, tc.want)
		}
	}
}

// FuzzParseRetryAfter: any header values give a wait in [0, MaxRetryAfter].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"5", "0", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "1e9", "99999999999999999999", ""} {
		f.Add(s, s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, ms string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		h.Set("X-Ms-Retry-After-Ms", ms)
		if d := parseRetryAfter(h, now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("Retry-After %q, ms %q: %v", ra, ms, d)
		}
	})
}
