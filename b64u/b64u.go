// Package b64u implements the unpadded base64url encoding (RFC 4648 §5)
// that every *_b64u field of the Clawsig protocol uses, and the SHA-256
// digests written in it.
package b64u

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// ErrInvalid is returned for text that is not unpadded base64url.
var ErrInvalid = errors.New("b64u: invalid base64url")

// Encode returns b as unpadded base64url.
func Encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Decode decodes unpadded base64url. Like the reference it tolerates
// trailing '=' padding, but it refuses any other character and impossible
// lengths.
func Decode(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if !IsValid(s) && s != "" {
		return nil, ErrInvalid
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, ErrInvalid
	}
	return b, nil
}

// IsValid reports whether s is non-empty and uses only the base64url
// alphabet, the only check the reference applies (^[A-Za-z0-9_-]+$).
func IsValid(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alphabet[s[i]] {
			return false
		}
	}
	return true
}

var alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// IsValidMin reports whether s is valid and at least min characters long,
// the schema rule for hash and signature fields (min is usually 8).
func IsValidMin(s string, min int) bool { return len(s) >= min && IsValid(s) }

// IsDigest reports whether s looks like a b64u SHA-256 digest: exactly 43
// base64url characters.
func IsDigest(s string) bool { return len(s) == 43 && IsValid(s) }

// SHA256 returns the unpadded base64url SHA-256 digest of b.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SHA256Hex returns the lowercase hex SHA-256 digest of b.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	const hexd = "0123456789abcdef"
	out := make([]byte, 64)
	for i, c := range sum {
		out[2*i] = hexd[c>>4]
		out[2*i+1] = hexd[c&0xF]
	}
	return string(out)
}
