package didkey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func seq(start byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestKnownDIDs(t *testing.T) {
	rfc, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	tests := []struct {
		name string
		seed []byte
		want string
	}{
		{"RFC 8032 test 1", rfc, "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"},
		{"conformance agent", seq(1), "did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"},
		{"conformance gateway", seq(100), "did:key:z6MkfF4ykuxdK3Cea9xDqWgLLgMBvxcypy6Tv1K45Eahxy3m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := ed25519.NewKeyFromSeed(tt.seed).Public().(ed25519.PublicKey)
			if got := Encode(pub); got != tt.want {
				t.Fatalf("Encode = %s, want %s", got, tt.want)
			}
			back, err := PublicKey(tt.want)
			if err != nil || !bytes.Equal(back, pub) {
				t.Fatalf("PublicKey = %x, %v", back, err)
			}
		})
	}
}

func TestPublicKeyErrors(t *testing.T) {
	for _, did := range []string{
		"", "did:web:example.com", "did:key:6Mk", "did:key:z", "did:key:z0OIl",
		"did:key:zWRONG", // 'W','R','O': O is not base58
		"did:key:z" + Base58Encode([]byte{0xec, 0x01, 1, 2}),
	} {
		if _, err := PublicKeyBytes(did); err == nil {
			t.Errorf("PublicKeyBytes(%q) succeeded", did)
		}
	}
	// Right prefix, wrong length: extractable bytes, but not a key.
	short := "did:key:z" + Base58Encode([]byte{0xed, 0x01, 1, 2, 3})
	if _, err := PublicKeyBytes(short); err != nil {
		t.Errorf("short key bytes: %v", err)
	}
	if _, err := PublicKey(short); err == nil {
		t.Error("PublicKey accepted a 3-byte key")
	}
	if NewKey([]byte{1, 2, 3}).Verify([]byte("m"), make([]byte, 64)) {
		t.Error("short key verified")
	}
}

func TestIsValidFormat(t *testing.T) {
	tests := []struct {
		did  string
		want bool
	}{
		{"did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7", true},
		{"did:web:clawproxy.com", true},
		{"did:web:example.com:path", false},
		{"did:ion:abc", false},
		{"did:key:", false},
		{"did:key:a b", false},
		{"DID:key:abc", false},
	}
	for _, tt := range tests {
		if got := IsValidFormat(tt.did); got != tt.want {
			t.Errorf("IsValidFormat(%q) = %v", tt.did, got)
		}
	}
}

func TestBase58RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		b := make([]byte, r.IntN(40))
		for j := range b {
			if r.IntN(4) > 0 {
				b[j] = byte(r.Uint32())
			}
		}
		got, err := Base58Decode(Base58Encode(b))
		if len(b) == 0 {
			continue // empty encodes to "" which Decode refuses
		}
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip %x -> %x, %v", b, got, err)
		}
	}
	if got := Base58Encode([]byte{0, 0, 1}); got != "112" {
		t.Errorf("leading zeros: %s", got)
	}
}

// TestVerifyMatchesStdlib checks that the cached-point verifier agrees with
// crypto/ed25519 on valid signatures and on every single-bit corruption.
func TestVerifyMatchesStdlib(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	k := NewKey(pub)
	msg := []byte("Q93BAJydvhGEdSO1FOx5FI4Dcw0dT7EKJP2IrZmdXtQ")
	sig := ed25519.Sign(priv, msg)
	if !k.Verify(msg, sig) {
		t.Fatal("valid signature refused")
	}
	for i := 0; i < len(sig)*8; i++ {
		bad := append([]byte(nil), sig...)
		bad[i/8] ^= 1 << (i % 8)
		if got, want := k.Verify(msg, bad), ed25519.Verify(pub, msg, bad); got != want {
			t.Fatalf("bit %d: got %v, stdlib %v", i, got, want)
		}
	}
	if k.Verify(append(msg, 'x'), sig) {
		t.Fatal("changed message verified")
	}
	r := NewResolver(2)
	for i := 0; i < 5; i++ {
		p := ed25519.NewKeyFromSeed(seq(byte(i))).Public().(ed25519.PublicKey)
		kk, err := r.Resolve(Encode(p))
		if err != nil || !bytes.Equal(kk.Bytes(), p) {
			t.Fatal(err)
		}
	}
	n := 0
	r.keys.Range(func(any, any) bool { n++; return true })
	if n > 2 {
		t.Fatalf("cache grew to %d", n)
	}
}

// tabled returns a key with its table built.
func tabled(pub []byte) *Key {
	k := NewKey(pub)
	k.Precompute()
	return k
}

// agree checks that the plain path, the table path and crypto/ed25519 give
// the same answer.
func agree(t testing.TB, pub, msg, sig []byte) {
	want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
	if got := NewKey(pub).Verify(msg, sig); got != want {
		t.Fatalf("plain path %v, stdlib %v (pub %x sig %x)", got, want, pub, sig)
	}
	if got := tabled(pub).Verify(msg, sig); got != want {
		t.Fatalf("table path %v, stdlib %v (pub %x sig %x)", got, want, pub, sig)
	}
}

func TestTableMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 40; n++ {
		seed := make([]byte, 32)
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		k := tabled(pub)
		for m := 0; m < 5; m++ {
			msg := make([]byte, rng.IntN(700))
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			sig := ed25519.Sign(priv, msg)
			if !k.Verify(msg, sig) {
				t.Fatalf("key %d: valid signature refused by the table path", n)
			}
			bad := append([]byte(nil), sig...)
			bad[rng.IntN(64)] ^= 1 << rng.IntN(8)
			agree(t, pub, msg, bad)
		}
	}
	// Edge keys and signatures: the identity and small-order points as
	// keys and as R, S = 0, S = L (not canonical).
	L := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	identity := append([]byte{1}, make([]byte, 31)...)
	order2, _ := hex.DecodeString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	order4, _ := hex.DecodeString("0000000000000000000000000000000000000000000000000000000000000000")
	for _, pub := range [][]byte{identity, order2, order4} {
		for _, r := range [][]byte{identity, order2, order4} {
			for _, s := range [][]byte{make([]byte, 32), L} {
				agree(t, pub, []byte("m"), append(append([]byte(nil), r...), s...))
			}
		}
	}
}

func TestAutomaticTable(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(seq(9))
	k := NewKey(priv.Public().(ed25519.PublicKey))
	sig := ed25519.Sign(priv, []byte("x"))
	for i := 0; i < autoTableAfter+1; i++ {
		if !k.Verify([]byte("x"), sig) {
			t.Fatalf("verification %d failed", i)
		}
	}
	if k.tables.table.Load() == nil {
		t.Fatal("no table after many verifications")
	}
}

func FuzzVerify(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(seq(3))
	pub := priv.Public().(ed25519.PublicKey)
	f.Add([]byte(pub), []byte("msg"), ed25519.Sign(priv, []byte("msg")))
	f.Add(make([]byte, 32), []byte{}, make([]byte, 64))
	plain := map[string]*Key{}
	withTable := map[string]*Key{}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
		if plain[string(pub)] == nil && len(plain) < 16 {
			plain[string(pub)], withTable[string(pub)] = NewKey(pub), tabled(pub)
		}
		if k := plain[string(pub)]; k != nil {
			if k.Verify(msg, sig) != want || withTable[string(pub)].Verify(msg, sig) != want {
				t.Fatalf("disagrees with crypto/ed25519 (want %v)", want)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(seq(5))
	pub := priv.Public().(ed25519.PublicKey)
	msg := make([]byte, 600)
	sig := ed25519.Sign(priv, msg)
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("key", func(b *testing.B) {
		k := NewKey(pub)
		k.tables.uses.Store(-1 << 30) // never builds a table
		for b.Loop() {
			k.Verify(msg, sig)
		}
	})
	b.Run("table", func(b *testing.B) {
		k := tabled(pub)
		for b.Loop() {
			k.Verify(msg, sig)
		}
	})
}
