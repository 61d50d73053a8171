package keyvault

import (
	"errors"
	"strings"
	"testing"
)

func TestToNameFromNameRoundTrip(t *testing.T) {
	for path, name := range map[string]string{
		"a":                      "a",
		"db-password":            "db-password",
		"agent/app/db-password":  "agent--app--db-password",
		"A1/b-2/C":               "A1--b-2--C",
		"x/y/z/w":                "x--y--z--w",
		strings.Repeat("a", 127): strings.Repeat("a", 127),
		strings.Repeat("a", 62) + "/" + strings.Repeat("b", 63): strings.Repeat("a", 62) + "--" + strings.Repeat("b", 63),
	} {
		got, err := ToName(path)
		if err != nil || got != name {
			t.Errorf("ToName(%q) = %q, %v; want %q", path, got, err, name)
			continue
		}
		if back := FromName(got); back != path {
			t.Errorf("FromName(%q) = %q; want %q", got, back, path)
		}
	}
}

func TestToNameRefuses(t *testing.T) {
	for _, path := range []string{
		"", "/", "a/", "/a", "a//b", "a--b", "-a", "a-", "a/-b", "a-/b", "a---b",
		"a_b", "a b", "a.b", "a\\b", "é", "a\x00", "a/b/", strings.Repeat("a", 128),
		strings.Repeat("a/", 43) + "a", // 44 segments: 44 + 43*2 = 130 characters
	} {
		if name, err := ToName(path); !errors.Is(err, ErrInvalid) {
			t.Errorf("ToName(%q) = %q, %v; want ErrInvalid", path, name, err)
		}
	}
	// 43 segments: 43 + 42*2 = 127 characters, the limit.
	if _, err := ToName(strings.Repeat("a/", 42) + "a"); err != nil {
		t.Errorf("ToName of a 127-character name: %v", err)
	}
}

// FuzzToName checks that every accepted path maps to a valid Key Vault name
// that maps back to the same path.
func FuzzToName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "a-b/c", "a--b", "-", "/", "a/-b", strings.Repeat("ab/", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		name, err := ToName(path)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ToName(%q): %v", path, err)
			}
			return
		}
		if len(name) == 0 || len(name) > 127 {
			t.Fatalf("ToName(%q) = %q: bad length", path, name)
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("ToName(%q) = %q: bad character", path, name)
			}
		}
		if back := FromName(name); back != path {
			t.Fatalf("FromName(ToName(%q)) = %q", path, back)
		}
		if again, ok := pathOf(name); !ok || again != lowerASCII(path) {
			t.Fatalf("pathOf(%q) = %q, %v", name, again, ok)
		}
	})
}
