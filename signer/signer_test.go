package signer

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawea/clawea/b64u"
)

func TestKeyFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "k.json")
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, k, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	if err := WriteFile(path, k, false); !errors.Is(err, ErrExist) {
		t.Errorf("second write: %v", err)
	}
	back, err := LoadFile(path)
	if err != nil || back.DID() != k.DID() {
		t.Fatalf("load: %v", err)
	}
	k2, _ := Generate()
	if err := WriteFile(path, k2, true); err != nil {
		t.Fatal(err)
	}
	if back, _ := LoadFile(path); back.DID() != k2.DID() {
		t.Error("overwrite did not replace the key")
	}
	msg := []byte("m")
	sig, _ := k.Sign(msg)
	if !ed25519.Verify(k.Public(), msg, sig) {
		t.Error("signature")
	}
	if len(KID(k.Public())) != 16 {
		t.Error("kid length")
	}
}

func TestParseForms(t *testing.T) {
	seed := make([]byte, 32)
	seed[0] = 7
	k, _ := FromSeed(seed)
	if got, err := Parse([]byte(b64u.Encode(seed) + "\n")); err != nil || got.DID() != k.DID() {
		t.Errorf("bare seed: %v", err)
	}
	if got, err := Parse([]byte(b64u.Encode(append(seed, k.Public()...)))); err != nil || got.DID() != k.DID() {
		t.Errorf("64-byte key: %v", err)
	}
	for _, bad := range []string{"", "{", `{"kty":"RSA"}`, `{"kty":"OKP","crv":"Ed25519","d":"!!"}`, "not base64 !",
		`{"kty":"OKP","crv":"Ed25519","d":"` + b64u.Encode(seed) + `","x":"` + b64u.Encode(make([]byte, 32)) + `"}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := FromSeed([]byte{1, 2}); err == nil || !strings.Contains(err.Error(), "32 or 64") {
		t.Errorf("short seed: %v", err)
	}
}
