package servicebus

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEntity(t *testing.T) {
	ok := []struct {
		in   string
		want entityRef
	}{
		{"orders", entityRef{Queue: "orders"}},
		{"shop/orders.v2", entityRef{Queue: "shop/orders.v2"}},
		{"a_b-c.d", entityRef{Queue: "a_b-c.d"}},
		{"events/subscriptions/audit", entityRef{Topic: "events", Subscription: "audit"}},
		{"shop/events/Subscriptions/audit", entityRef{Topic: "shop/events", Subscription: "audit"}},
		{"subscriptions", entityRef{Queue: "subscriptions"}},
		{"x/subscriptions", entityRef{Queue: "x/subscriptions"}},
		{"a/subscriptions/b/c", entityRef{Queue: "a/subscriptions/b/c"}},
		{strings.Repeat("q", maxPathLen), entityRef{Queue: strings.Repeat("q", maxPathLen)}},
	}
	for _, c := range ok {
		got, err := parseEntity(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseEntity(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"", "/orders", "orders/", "a//b", "q/$DeadLetterQueue", "q/$management", "$cbs",
		"a b", "ä", "q?x", "q#", "q\x00", "\xff", "/subscriptions/s", "t/subscriptions/",
		"t/subscriptions/" + strings.Repeat("s", maxSubscriptionLen+1),
		strings.Repeat("q", maxPathLen+1),
	}
	for _, in := range bad {
		if got, err := parseEntity(in); !errors.Is(err, ErrInvalidEntity) {
			t.Errorf("parseEntity(%q) = %+v, %v; want ErrInvalidEntity", in, got, err)
		}
	}
}

func TestEntityStringAndKey(t *testing.T) {
	e, err := parseEntity("Shop/Events/SUBSCRIPTIONS/Audit")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.String(), "Shop/Events/subscriptions/Audit"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := e.key(), "shop/events/subscriptions/audit"; got != want {
		t.Errorf("key() = %q, want %q", got, want)
	}
}

// FuzzParseEntity checks that parsing never panics, that accepted strings
// have the documented shape, and that the canonical form parses back to the
// same entity.
func FuzzParseEntity(f *testing.F) {
	for _, s := range []string{
		"orders", "shop/orders", "t/subscriptions/s", "T/Subscriptions/S", "a/subscriptions/b/c",
		"q/$DeadLetterQueue", "", "/", "a//b", "subscriptions/subscriptions/subscriptions", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseEntity(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidEntity) {
				t.Fatalf("parseEntity(%q) error %v does not wrap ErrInvalidEntity", s, err)
			}
			return
		}
		if e.IsSubscription() == (e.Queue != "") || (e.Topic == "") != (e.Subscription == "") {
			t.Fatalf("parseEntity(%q) = %+v: inconsistent fields", s, e)
		}
		if strings.Contains(e.String(), "$") || strings.Contains(e.String(), "//") || strings.Trim(e.String(), "/") != e.String() {
			t.Fatalf("parseEntity(%q) accepted a malformed path %q", s, e.String())
		}
		again, err := parseEntity(e.String())
		if err != nil || again != e {
			t.Fatalf("canonical %q of %q parses to %+v, %v; want %+v", e.String(), s, again, err, e)
		}
		if e.key() != strings.ToLower(e.String()) {
			t.Fatalf("key() of %q is %q", s, e.key())
		}
	})
}
