package token

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/signer"
)

// MaxTokenBytes bounds the tokens the parser reads.
const MaxTokenBytes = 8 << 10

// Header is a CST's JOSE header.
type Header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid,omitempty"`
}

// Sign encodes claims as a compact JWS signed with s: header
// {"alg":"EdDSA","typ":"JWT","kid":<first 16 hex of SHA-256(pub)>}, each
// segment base64url of the compact JSON.
func Sign(c *Claims, s signer.Signer) (string, error) {
	h, err := canon.Marshal(Header{Alg: "EdDSA", Typ: "JWT", Kid: signer.KID(s.Public())})
	if err != nil {
		return "", err
	}
	p, err := canon.Marshal(c)
	if err != nil {
		return "", err
	}
	input := b64u.Encode(h) + "." + b64u.Encode(p)
	sig, err := s.Sign([]byte(input))
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return input + "." + b64u.Encode(sig), nil
}

// Hash returns token_hash: lowercase hex SHA-256 of the compact token.
func Hash(token string) string { return b64u.SHA256Hex([]byte(token)) }

// NewID returns a random UUID (version 4), as jti and nonce are.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	var out [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hexd[c>>4], hexd[c&0xf]
		j += 2
	}
	return string(out[:])
}

// Parsed is a token split and decoded, not yet verified.
type Parsed struct {
	Raw          string
	Header       Header
	Claims       Claims
	SigningInput string
	Signature    []byte
}

// Parse splits and decodes a compact token. It checks the structure only:
// three base64url segments, JSON objects, alg EdDSA (TOKEN_MALFORMED,
// TOKEN_UNSUPPORTED_ALG) and the claims shape (TOKEN_INVALID_CLAIMS).
func Parse(tok string) (*Parsed, error) {
	if len(tok) > MaxTokenBytes {
		return nil, errf(CodeMalformed, "token is longer than %d bytes", MaxTokenBytes)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, errf(CodeMalformed, "token must have three dot-separated parts")
	}
	hb, err1 := b64u.Decode(parts[0])
	pb, err2 := b64u.Decode(parts[1])
	sig, err3 := b64u.Decode(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errf(CodeMalformed, "token segments must be base64url")
	}
	p := &Parsed{Raw: tok, SigningInput: parts[0] + "." + parts[1], Signature: sig}
	hv, err := canon.Parse(hb)
	if err != nil || !hv.IsObject() {
		return nil, errf(CodeMalformed, "token header is not a JSON object")
	}
	for _, f := range []struct {
		k   string
		dst *string
	}{{"alg", &p.Header.Alg}, {"typ", &p.Header.Typ}, {"kid", &p.Header.Kid}} {
		if m := hv.Get(f.k); m != nil {
			if !m.IsString() {
				return nil, errf(CodeMalformed, "token header %s must be a string", f.k)
			}
			*f.dst = m.Str
		}
	}
	if p.Header.Alg != "EdDSA" {
		return nil, errf(CodeUnsupportedAlg, "alg must be EdDSA, not %q", p.Header.Alg)
	}
	pv, err := canon.Parse(pb)
	if err != nil || !pv.IsObject() {
		return nil, errf(CodeMalformed, "token payload is not a JSON object")
	}
	if err := p.Claims.fromValue(&pv); err != nil {
		return nil, errf(CodeInvalidClaims, "%v", err)
	}
	if err := p.Claims.checkShape(); err != nil {
		return nil, errf(CodeInvalidClaims, "%v", err)
	}
	return p, nil
}
