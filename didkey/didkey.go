// Package didkey converts between Ed25519 public keys and did:key
// identifiers (did:key:z + base58btc(0xed 0x01 ‖ key)) and verifies
// Ed25519 signatures with keys resolved from them.
//
// Verification follows RFC 8032 exactly as crypto/ed25519 does (canonical
// S, cofactorless equation); a resolved key keeps its decompressed point,
// so verifying many signatures by one signer skips that work, and a key
// that verifies many signatures gets a precomputed table (table.go).
package didkey

import (
	"crypto/ed25519"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"filippo.io/edwards25519"
)

// Prefix starts every did:key identifier in base58btc multibase form.
const Prefix = "did:key:z"

// ErrFormat means the text is not a did:key with an Ed25519 key.
var ErrFormat = errors.New("didkey: not an Ed25519 did:key")

// Encode returns the did:key of an Ed25519 public key.
func Encode(pub ed25519.PublicKey) string {
	buf := make([]byte, 0, 2+len(pub))
	buf = append(buf, 0xed, 0x01)
	buf = append(buf, pub...)
	return Prefix + Base58Encode(buf)
}

// PublicKeyBytes extracts the key bytes of a did:key the way the reference
// verifier does: prefix did:key:z, valid base58btc, multicodec 0xed01. The
// length is not checked here; a key of the wrong length fails verification.
func PublicKeyBytes(did string) ([]byte, error) {
	if !strings.HasPrefix(did, Prefix) {
		return nil, ErrFormat
	}
	raw, err := Base58Decode(did[len(Prefix):])
	if err != nil || len(raw) < 2 || raw[0] != 0xed || raw[1] != 0x01 {
		return nil, ErrFormat
	}
	return raw[2:], nil
}

// PublicKey extracts a 32-byte Ed25519 public key from a did:key.
func PublicKey(did string) (ed25519.PublicKey, error) {
	b, err := PublicKeyBytes(did)
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, ErrFormat
	}
	return ed25519.PublicKey(b), nil
}

// IsValidFormat reports whether did passes the reference verifier's gate
// ^did:(key|web):[a-zA-Z0-9._%-]+$ (no colon after the method).
func IsValidFormat(did string) bool {
	var rest string
	switch {
	case strings.HasPrefix(did, "did:key:"):
		rest = did[len("did:key:"):]
	case strings.HasPrefix(did, "did:web:"):
		rest = did[len("did:web:"):]
	default:
		return false
	}
	if rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '%' || c == '-') {
			return false
		}
	}
	return true
}

// Key is a resolved verifying key.
type Key struct {
	raw    []byte
	negA   *edwards25519.Point // nil when raw is not a valid point
	tables tableState
}

// NewKey prepares raw public key bytes for verification. Keys that are not
// 32 bytes or not a curve point are kept, and every signature fails against
// them.
func NewKey(raw []byte) *Key {
	k := &Key{raw: append([]byte(nil), raw...)}
	if len(raw) == ed25519.PublicKeySize {
		if A, err := new(edwards25519.Point).SetBytes(raw); err == nil {
			k.negA = new(edwards25519.Point).Negate(A)
		}
	}
	return k
}

// Bytes returns the raw public key.
func (k *Key) Bytes() []byte { return k.raw }

// Verify reports whether sig is a valid Ed25519 signature of msg.
func (k *Key) Verify(msg, sig []byte) bool {
	if k.negA == nil || len(sig) != ed25519.SignatureSize || sig[63]&224 != 0 {
		return false
	}
	S, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	// k = SHA-512(R || A || msg). Short messages (a payload hash, as every
	// envelope signs) are hashed from one stack buffer, without a hasher
	// on the heap.
	var digest [64]byte
	if len(msg) <= 192 {
		var in [256]byte
		n := copy(in[:], sig[:32])
		n += copy(in[n:], k.raw)
		n += copy(in[n:], msg)
		digest = sha512.Sum512(in[:n])
	} else {
		h := sha512.New()
		h.Write(sig[:32])
		h.Write(k.raw)
		h.Write(msg)
		h.Sum(digest[:0])
	}
	var kh edwards25519.Scalar
	if _, err := kh.SetUniformBytes(digest[:]); err != nil {
		return false
	}
	var R edwards25519.Point
	if t := k.maybeTable(); t != nil {
		R.Set(edwards25519.NewIdentityPoint())
		baseTable().multAdd(&R, S)
		t.multAdd(&R, &kh)
	} else {
		R.VarTimeDoubleScalarBaseMult(&kh, k.negA, S)
	}
	return subtle.ConstantTimeCompare(R.Bytes(), sig[:32]) == 1
}

// Resolver resolves did:key identifiers to verifying keys and remembers a
// bounded number of them. It is safe for concurrent use; a hit takes no
// lock, since every receipt of a bundle checked on several cores resolves
// its signer.
type Resolver struct {
	keys sync.Map // did -> *Key
	n    atomic.Int64
	max  int64
}

// NewResolver returns a resolver that caches up to max keys (at least 1).
func NewResolver(limit int) *Resolver {
	return &Resolver{max: int64(max(limit, 1))}
}

// Resolve returns the key of did, or ErrFormat.
func (r *Resolver) Resolve(did string) (*Key, error) {
	if k, ok := r.keys.Load(did); ok {
		return k.(*Key), nil
	}
	raw, err := PublicKeyBytes(did)
	if err != nil {
		return nil, err
	}
	k, loaded := r.keys.LoadOrStore(did, NewKey(raw))
	if !loaded && r.n.Add(1) > r.max {
		// Simple and bounded; signers per bundle are few.
		r.keys.Clear()
		r.n.Store(0)
		r.keys.Store(did, k)
		r.n.Add(1)
	}
	return k.(*Key), nil
}
