package servicebus

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalNamespace(t *testing.T) {
	for in, want := range map[string]string{
		"sb-orders":             "sb-orders",
		"SB-Orders-001":         "sb-orders-001",
		"abcdef":                "abcdef",
		strings.Repeat("a", 50): strings.Repeat("a", 50),
	} {
		got, err := CanonicalNamespace(in)
		if err != nil || got != want {
			t.Errorf("CanonicalNamespace(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "abcde", strings.Repeat("a", 51), "1abcdef", "-abcdef", "abcdef-", "abc_def", "abc.def", "abc def",
		"abcdef ", "abc%2Ddef", "abcdef\x00", "abc\u200bdef", "ａbcdef", "\u212aabcdef", "sb-ordérs", "sb/orders",
	} {
		if got, err := CanonicalNamespace(in); !errors.Is(err, ErrInvalidNamespace) {
			t.Errorf("CanonicalNamespace(%q) = %q, %v; want ErrInvalidNamespace", in, got, err)
		}
	}
}

func TestCanonicalEntity(t *testing.T) {
	for in, want := range map[string]string{
		"orders-prod":                     "orders-prod",
		"Orders-PROD":                     "orders-prod",
		"Shop/Events/SUBSCRIPTIONS/Audit": "shop/events/subscriptions/audit",
		"a_b-c.d":                         "a_b-c.d",
	} {
		got, err := CanonicalEntity(in)
		if err != nil || got != want {
			t.Errorf("CanonicalEntity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "orders-prod ", " orders-prod", "orders%2Dprod", "orders-prod\x00", "orders\u200b-prod", "ｏrders-prod",
		"\u212aafka", "orders/./prod", "orders/../prod", ".", "..", "orders-prod.", "-orders", "_orders", "orders_",
		"orders-prod/", "orders//prod", "orders-prod/$deadletterqueue", "orders prod", "orders\tprod",
		strings.Repeat("q", maxPathLen+1),
	} {
		if got, err := CanonicalEntity(in); !errors.Is(err, ErrInvalidEntity) {
			t.Errorf("CanonicalEntity(%q) = %q, %v; want ErrInvalidEntity", in, got, err)
		}
	}
}

func inEntityGrammar(s string) bool {
	if s == "" || len(s) > maxPathLen+len("/subscriptions/")+maxSubscriptionLen {
		return false
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "" || !alnum(seg[0]) || !alnum(seg[len(seg)-1]) {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// FuzzCanonicalNamespace: an accepted name's canonical form is in the
// grammar, idempotent, and depends only on the lower-cased input.
func FuzzCanonicalNamespace(f *testing.F) {
	for _, s := range []string{"sb-orders", "SB-Orders", "abcde", "\u212aabcdef", "abcdef\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CanonicalNamespace(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidNamespace) {
				t.Fatalf("CanonicalNamespace(%q): %v", in, err)
			}
			return
		}
		if len(got) < 6 || len(got) > 50 || got[0] < 'a' || got[0] > 'z' || got[len(got)-1] == '-' {
			t.Fatalf("CanonicalNamespace(%q) = %q: outside the grammar", in, got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("CanonicalNamespace(%q) = %q: bad character", in, got)
			}
		}
		if again, err := CanonicalNamespace(got); err != nil || again != got {
			t.Fatalf("not idempotent on %q: %q, %v", got, again, err)
		}
		if low, err := CanonicalNamespace(strings.ToLower(in)); err != nil || low != got {
			t.Fatalf("CanonicalNamespace(lower(%q)) = %q, %v; want %q", in, low, err, got)
		}
	})
}

// FuzzCanonicalEntity: as FuzzCanonicalNamespace for entity strings.
func FuzzCanonicalEntity(f *testing.F) {
	for _, s := range []string{"orders-prod", "Orders-PROD", "t/Subscriptions/S", "a/../b", "q%2D", "\u212aafka", "q/$DeadLetterQueue"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CanonicalEntity(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidEntity) {
				t.Fatalf("CanonicalEntity(%q): %v", in, err)
			}
			return
		}
		if !inEntityGrammar(got) {
			t.Fatalf("CanonicalEntity(%q) = %q: outside the grammar", in, got)
		}
		if again, err := CanonicalEntity(got); err != nil || again != got {
			t.Fatalf("not idempotent on %q: %q, %v", got, again, err)
		}
		if low, err := CanonicalEntity(strings.ToLower(in)); err != nil || low != got {
			t.Fatalf("CanonicalEntity(lower(%q)) = %q, %v; want %q", in, low, err, got)
		}
	})
}
