package keyvault

import (
	"errors"
	"strings"
	"testing"
)

func TestCanonicalVault(t *testing.T) {
	for in, want := range map[string]string{
		"kv-prod-finance-001":   "kv-prod-finance-001",
		"KV-Prod-Finance-001":   "kv-prod-finance-001",
		"abc":                   "abc",
		strings.Repeat("a", 24): strings.Repeat("a", 24),
		"a1-b2":                 "a1-b2",
	} {
		got, err := CanonicalVault(in)
		if err != nil || got != want {
			t.Errorf("CanonicalVault(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "ab", strings.Repeat("a", 25), "1abc", "-abc", "abc-", "ab--c", "ab_c", "ab.c", "ab c", "abc ",
		" abc", "ab%2Dc", "abc\x00", "ab\u200bc", "ａbc", "\u212aey", "kv/x", "kv\\x", "ab\u00e9",
	} {
		if got, err := CanonicalVault(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalVault(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestCanonicalSecretPath(t *testing.T) {
	for in, want := range map[string]string{
		"prod/db":               "prod/db",
		"PROD/db":               "prod/db",
		"Prod/DB-Password":      "prod/db-password",
		"agent/app/db-password": "agent/app/db-password",
		"A":                     "a",
	} {
		got, err := CanonicalSecretPath(in)
		if err != nil || got != want {
			t.Errorf("CanonicalSecretPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "/", "prod/", "/prod/db", "prod//db", "prod/./db", "prod/../db", ".", "..", "prod/db ", " prod/db",
		"prod%2Fdb", "prod/db%2D1", "prod/db\x00", "prod/\u200bdb", "ｐrod/db", "prod/\u212aey", "pröd/db",
		"prod\\db", "prod/db--x", "prod/-db", "prod/db-", "prod/db_x", "prod/db.x", strings.Repeat("a", 128),
	} {
		if got, err := CanonicalSecretPath(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CanonicalSecretPath(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

// FuzzCanonicalVault: an accepted name's canonical form is in the grammar,
// is idempotent, and depends only on the ASCII-folded input.
func FuzzCanonicalVault(f *testing.F) {
	for _, s := range []string{"kv-prod", "KV-Prod", "ab", "a--b", "\u212av-x", "kv\x00x", "ａbc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CanonicalVault(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CanonicalVault(%q): %v", in, err)
			}
			return
		}
		if len(got) < 3 || len(got) > 24 || got[0] < 'a' || got[0] > 'z' || got[len(got)-1] == '-' || strings.Contains(got, "--") {
			t.Fatalf("CanonicalVault(%q) = %q: outside the grammar", in, got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("CanonicalVault(%q) = %q: bad character", in, got)
			}
		}
		if again, err := CanonicalVault(got); err != nil || again != got {
			t.Fatalf("CanonicalVault not idempotent on %q: %q, %v", got, again, err)
		}
		if low, err := CanonicalVault(strings.ToLower(in)); err != nil || low != got {
			t.Fatalf("CanonicalVault(lower(%q)) = %q, %v; want %q", in, low, err, got)
		}
	})
}

// FuzzCanonicalSecretPath: as FuzzCanonicalVault, and the canonical path
// maps to a valid Key Vault name that maps back to it.
func FuzzCanonicalSecretPath(f *testing.F) {
	for _, s := range []string{"prod/db", "PROD/db", "prod/../db", "prod/db%2D", "prod/\u212aey", "a/b-c/D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CanonicalSecretPath(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("CanonicalSecretPath(%q): %v", in, err)
			}
			return
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '/') {
				t.Fatalf("CanonicalSecretPath(%q) = %q: bad character", in, got)
			}
		}
		if again, err := CanonicalSecretPath(got); err != nil || again != got {
			t.Fatalf("CanonicalSecretPath not idempotent on %q: %q, %v", got, again, err)
		}
		if low, err := CanonicalSecretPath(strings.ToLower(in)); err != nil || low != got {
			t.Fatalf("CanonicalSecretPath(lower(%q)) = %q, %v; want %q", in, low, err, got)
		}
		name, err := ToName(got)
		if err != nil {
			t.Fatalf("ToName(%q): %v", got, err)
		}
		if back, ok := pathOf(name); !ok || back != got {
			t.Fatalf("pathOf(%q) = %q, %v; want %q", name, back, ok, got)
		}
	})
}
