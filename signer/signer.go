// Package signer holds Ed25519 signing keys, their did:key identities and
// the key file format clawea writes (an OKP JSON Web Key, mode 0600).
//
// Signing sits behind the Signer interface so that a key held elsewhere (a
// KMS such as Azure Key Vault keys) can replace a local file.
package signer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/didkey"
)

// Signer signs messages with an Ed25519 key.
type Signer interface {
	// DID returns the did:key of the public key.
	DID() string
	// Public returns the 32-byte public key.
	Public() ed25519.PublicKey
	// Sign returns the 64-byte Ed25519 signature of msg.
	Sign(msg []byte) ([]byte, error)
}

// Key is an in-memory Ed25519 key. It is safe for concurrent use.
type Key struct {
	priv ed25519.PrivateKey
	did  string
}

var _ Signer = (*Key)(nil)

// FromSeed returns the key for a 32-byte seed, or the first 32 bytes of a
// 64-byte private key, as the reference services accept both.
func FromSeed(seed []byte) (*Key, error) {
	switch len(seed) {
	case ed25519.SeedSize, ed25519.PrivateKeySize:
	default:
		return nil, fmt.Errorf("signer: key must be 32 or 64 bytes, got %d", len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed[:ed25519.SeedSize])
	return &Key{priv: priv, did: didkey.Encode(priv.Public().(ed25519.PublicKey))}, nil
}

// Generate returns a new random key.
func Generate() (*Key, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return FromSeed(seed)
}

// DID returns the did:key of the key.
func (k *Key) DID() string { return k.did }

// Public returns the public key.
func (k *Key) Public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

// Seed returns the 32-byte private seed.
func (k *Key) Seed() []byte { return k.priv.Seed() }

// Sign signs msg.
func (k *Key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// KID returns the first 16 hex characters of SHA-256 of the public key, the
// key id the protocol uses in JWT headers and JWKS.
func KID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])[:16]
}

// jwk is the key file: an OKP JSON Web Key (RFC 8037) plus its did:key.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	D   string `json:"d,omitempty"`
	Kid string `json:"kid,omitempty"`
	DID string `json:"did,omitempty"`
}

// ErrExist is returned by WriteFile when the file exists and overwrite is
// false.
var ErrExist = errors.New("signer: key file already exists")

// WriteFile writes k to path as a JWK with mode 0600, creating parent
// directories (0700). It refuses to replace an existing file unless
// overwrite is set, and then replaces it atomically.
func WriteFile(path string, k *Key, overwrite bool) error {
	data, err := json.MarshalIndent(jwk{
		Kty: "OKP", Crv: "Ed25519",
		X:   b64u.Encode(k.Public()),
		D:   b64u.Encode(k.Seed()),
		Kid: KID(k.Public()),
		DID: k.DID(),
	}, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	if !overwrite {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExist, path)
		}
		if err != nil {
			return fmt.Errorf("signer: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("signer: %w", err)
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("signer: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("signer: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("signer: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// LoadFile reads a key file: a JWK as written by WriteFile, or a bare
// base64url seed (32 or 64 bytes) on one line. Files readable by group or
// others are refused, since they hold a private key.
func LoadFile(path string) (*Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signer: key file %s has mode %#o; it must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return Parse(data)
}

// Parse decodes key file contents (see LoadFile).
func Parse(data []byte) (*Key, error) {
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "{") {
		var j jwk
		if err := json.Unmarshal([]byte(text), &j); err != nil {
			return nil, fmt.Errorf("signer: key file is not a JWK: %w", err)
		}
		if j.Kty != "OKP" || j.Crv != "Ed25519" || j.D == "" {
			return nil, errors.New("signer: key file must be an Ed25519 OKP JWK with a private part (d)")
		}
		seed, err := b64u.Decode(j.D)
		if err != nil {
			return nil, fmt.Errorf("signer: JWK d: %w", err)
		}
		k, err := FromSeed(seed)
		if err != nil {
			return nil, err
		}
		if j.X != "" && j.X != b64u.Encode(k.Public()) {
			return nil, errors.New("signer: JWK x does not match its private key")
		}
		return k, nil
	}
	seed, err := b64u.Decode(text)
	if err != nil {
		return nil, errors.New("signer: key file is neither a JWK nor a base64url seed")
	}
	return FromSeed(seed)
}
