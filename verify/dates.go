package verify

import (
	"strconv"
	"strings"
	"time"
)

// isRFC3339 reports whether s is a JSON Schema date-time: full-date, a 'T',
// 't' or space, full-time with an optional fraction, and a required zone
// (Z, z, ±hh:mm, ±hhmm or ±hh). Calendar days and times are range-checked;
// a leap second is accepted only at 23:59 UTC.
func isRFC3339(s string) bool {
	_, ok := parseRFC3339(s)
	return ok
}

func parseRFC3339(s string) (time.Time, bool) {
	if len(s) < 20 {
		return time.Time{}, false
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, false
	}
	switch s[10] {
	case 'T', 't', ' ':
	default:
		return time.Time{}, false
	}
	rest := s[11:]
	if len(rest) < 9 || rest[2] != ':' || rest[5] != ':' {
		return time.Time{}, false
	}
	hh, ok1 := digits(rest[0:2])
	mm, ok2 := digits(rest[3:5])
	ss, ok3 := digits(rest[6:8])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	rest = rest[8:]
	nanos := 0
	if rest != "" && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		frac := rest[1:i]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, _ := strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
		nanos = n
		rest = rest[i:]
	}
	offset := 0
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) >= 3 && (rest[0] == '+' || rest[0] == '-'):
		oh, ok := digits(rest[1:3])
		if !ok {
			return time.Time{}, false
		}
		om := 0
		tail := rest[3:]
		switch {
		case tail == "":
		case len(tail) == 3 && tail[0] == ':':
			om, ok = digits(tail[1:])
		case len(tail) == 2:
			om, ok = digits(tail)
		default:
			ok = false
		}
		if !ok {
			return time.Time{}, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	if hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	if ss == 60 {
		utc := (hh*60+mm)*60 - offset
		utcMin := ((utc/60)%1440 + 1440) % 1440
		if utcMin != 23*60+59 {
			return time.Time{}, false
		}
		ss = 59 // time.Time has no leap seconds
	}
	t := time.Date(y, time.Month(mo), d, hh, mm, ss, nanos, time.UTC).Add(-time.Duration(offset) * time.Second)
	return t, true
}

func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseLenientDate parses a date the way the reference's isValidIsoDate
// (JavaScript Date.parse) accepts the forms producers actually write: the
// ECMAScript date-time string format (date-only forms, optional seconds and
// fraction, zone optional: date-only is UTC, date-time without zone is read
// as UTC here), RFC 3339 variants, and RFC 1123 / RFC 850 dates.
// Date.parse accepts further legacy forms; clawea does not.
func parseLenientDate(s string) (time.Time, bool) {
	if t, ok := parseRFC3339(s); ok {
		return t.Truncate(time.Millisecond), true
	}
	for _, layout := range []string{
		"2006", "2006-01", "2006-01-02",
		"2006-01-02T15:04", "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999",
		time.RFC1123, time.RFC1123Z, time.RFC850, "Mon, 2 Jan 2006 15:04:05 MST",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Millisecond), true
		}
	}
	return time.Time{}, false
}
