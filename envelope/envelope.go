// Package envelope implements the Clawsig SignedEnvelope: a typed payload,
// the base64url SHA-256 of its canonical bytes, and an Ed25519 signature
// over the ASCII of that hash by a did:key signer.
//
// Most envelope types hash the payload's order-preserving compact form
// (canon.Compact); work policy contracts hash its RFC 8785 form. Sign
// builds the payload from a Go value whose field order is the key order.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/signer"
)

// Protocol constants.
const (
	Version1      = "1"
	Version2      = "2" // tool receipt envelopes with co-signatures
	HashSHA256    = "SHA-256"
	AlgEd25519    = "Ed25519"
	TimeLayout    = "2006-01-02T15:04:05.000Z"
	MaxCoSigs     = 16
	TypeWPC       = "work_policy_contract"
	TypeBundle    = "proof_bundle"
	TypeGateway   = "gateway_receipt"
	TypeTool      = "tool_receipt"
	TypeAggregate = "aggregate_bundle"
)

// Envelope is a SignedEnvelope. Field order is the order written; Payload
// holds the canonical payload bytes.
type Envelope struct {
	EnvelopeVersion string        `json:"envelope_version"`
	EnvelopeType    string        `json:"envelope_type"`
	Payload         canon.Value   `json:"payload"`
	PayloadHash     string        `json:"payload_hash_b64u"`
	HashAlgorithm   string        `json:"hash_algorithm"`
	Signature       string        `json:"signature_b64u"`
	Algorithm       string        `json:"algorithm"`
	SignerDID       string        `json:"signer_did"`
	IssuedAt        string        `json:"issued_at"`
	ExpiresAt       string        `json:"expires_at,omitempty"`
	CoSignatures    []CoSignature `json:"co_signatures,omitempty"`
}

// CoSignature is an additional signature over the same payload hash
// (tool receipt envelope v2).
type CoSignature struct {
	Signature string `json:"signature_b64u"`
	Algorithm string `json:"algorithm"`
	SignerDID string `json:"signer_did"`
	IssuedAt  string `json:"issued_at"`
	Role      string `json:"role"` // proxy, approver, auditor or supervisor
}

// Co-signature roles.
var CoSignatureRoles = []string{"proxy", "approver", "auditor", "supervisor"}

// Options adjust Sign.
type Options struct {
	// Version defaults to "1".
	Version string
	// JCS hashes the payload's RFC 8785 form (work policy contracts).
	JCS bool
	// IssuedAt defaults to the current time.
	IssuedAt time.Time
	// ExpiresAt, when set, is written as expires_at.
	ExpiresAt time.Time
}

// FormatTime writes t the way JavaScript's toISOString does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Sign builds and signs an envelope of type typ around payload, a Go value
// (struct field order fixes key order) or a canon.Value.
func Sign(s signer.Signer, typ string, payload any, opt Options) (*Envelope, error) {
	var val canon.Value
	switch p := payload.(type) {
	case canon.Value:
		val = p
	case *canon.Value:
		val = *p
	default:
		var err error
		if val, err = canon.ValueOf(payload); err != nil {
			return nil, err
		}
	}
	if val.Kind != canon.Object {
		return nil, errors.New("envelope: payload must be a JSON object")
	}
	hash := PayloadHash(&val, opt.JCS)
	env, err := signHash(s, typ, hash, opt)
	if err != nil {
		return nil, err
	}
	env.Payload = val
	return env, nil
}

// signHash signs a payload hash and returns the envelope around it, all
// but its payload.
func signHash(s signer.Signer, typ, hash string, opt Options) (*Envelope, error) {
	sig, err := s.Sign([]byte(hash))
	if err != nil {
		return nil, fmt.Errorf("envelope: sign: %w", err)
	}
	if opt.Version == "" {
		opt.Version = Version1
	}
	if opt.IssuedAt.IsZero() {
		opt.IssuedAt = time.Now()
	}
	env := &Envelope{
		EnvelopeVersion: opt.Version,
		EnvelopeType:    typ,
		PayloadHash:     hash,
		HashAlgorithm:   HashSHA256,
		Signature:       b64u.Encode(sig),
		Algorithm:       AlgEd25519,
		SignerDID:       s.DID(),
		IssuedAt:        FormatTime(opt.IssuedAt),
	}
	if !opt.ExpiresAt.IsZero() {
		env.ExpiresAt = FormatTime(opt.ExpiresAt)
	}
	return env, nil
}

// CoSign adds a co-signature by s over the envelope's payload hash.
func (e *Envelope) CoSign(s signer.Signer, role string, at time.Time) error {
	if len(e.CoSignatures) >= MaxCoSigs {
		return fmt.Errorf("envelope: at most %d co-signatures", MaxCoSigs)
	}
	sig, err := s.Sign([]byte(e.PayloadHash))
	if err != nil {
		return fmt.Errorf("envelope: co-sign: %w", err)
	}
	e.CoSignatures = append(e.CoSignatures, CoSignature{
		Signature: b64u.Encode(sig), Algorithm: AlgEd25519, SignerDID: s.DID(),
		IssuedAt: FormatTime(at), Role: role,
	})
	return nil
}

// PayloadHash returns the b64u SHA-256 of the payload's compact form, or of
// its RFC 8785 form when jcs is set.
func PayloadHash(payload *canon.Value, jcs bool) string {
	if jcs {
		return b64u.SHA256(canon.AppendJCS(nil, payload))
	}
	return b64u.SHA256(canon.AppendCompact(nil, payload))
}

// JSON returns the envelope's canonical compact bytes: the same bytes as
// canon.Marshal(e), written directly (this runs once per receipt on the
// gateways' hot path).
func (e *Envelope) JSON() ([]byte, error) {
	return e.appendJSON(make([]byte, 0, 640), func(b []byte) []byte { return canon.AppendCompact(b, &e.Payload) }), nil
}

// SignCompact is Sign followed by JSON for a payload given as its compact
// bytes, which the caller guarantees are exactly canon's compact form of a
// JSON object (as a type's own encoder, tested against canon.Marshal,
// writes them): the payload is hashed and copied as it is, never parsed or
// encoded again. It returns the envelope's JSON.
func SignCompact(s signer.Signer, typ string, payload []byte, opt Options) ([]byte, error) {
	if opt.JCS {
		return nil, errors.New("envelope: SignCompact signs the compact form only")
	}
	if len(payload) < 2 || payload[0] != '{' || payload[len(payload)-1] != '}' {
		return nil, errors.New("envelope: payload must be a JSON object")
	}
	hash := b64u.SHA256(payload)
	env, err := signHash(s, typ, hash, opt)
	if err != nil {
		return nil, err
	}
	return env.appendJSON(make([]byte, 0, len(payload)+512), func(b []byte) []byte { return append(b, payload...) }), nil
}

// appendJSON writes the envelope, with payload writing its payload.
func (e *Envelope) appendJSON(b []byte, payload func([]byte) []byte) []byte {
	field := func(b []byte, sep byte, k, v string) []byte {
		b = append(b, sep, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return canon.AppendString(b, v)
	}
	b = field(b, '{', "envelope_version", e.EnvelopeVersion)
	b = field(b, ',', "envelope_type", e.EnvelopeType)
	b = append(b, `,"payload":`...)
	b = payload(b)
	b = field(b, ',', "payload_hash_b64u", e.PayloadHash)
	b = field(b, ',', "hash_algorithm", e.HashAlgorithm)
	b = field(b, ',', "signature_b64u", e.Signature)
	b = field(b, ',', "algorithm", e.Algorithm)
	b = field(b, ',', "signer_did", e.SignerDID)
	b = field(b, ',', "issued_at", e.IssuedAt)
	if e.ExpiresAt != "" {
		b = field(b, ',', "expires_at", e.ExpiresAt)
	}
	if len(e.CoSignatures) > 0 {
		b = append(b, `,"co_signatures":`...)
		for i, c := range e.CoSignatures {
			if i == 0 {
				b = append(b, '[')
			} else {
				b = append(b, ',')
			}
			b = field(b, '{', "signature_b64u", c.Signature)
			b = field(b, ',', "algorithm", c.Algorithm)
			b = field(b, ',', "signer_did", c.SignerDID)
			b = field(b, ',', "issued_at", c.IssuedAt)
			b = field(b, ',', "role", c.Role)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// Value returns the envelope as a parsed tree.
func (e *Envelope) Value() (canon.Value, error) { return canon.ValueOf(e) }

// Indented returns the envelope as indented JSON for files people read.
// Indentation does not change the hash: verifiers re-serialise.
func (e *Envelope) Indented() ([]byte, error) {
	raw, err := e.JSON()
	if err != nil {
		return nil, err
	}
	return Indent(raw)
}

// Indent pretty-prints canonical compact JSON without changing key order or
// escaping (two spaces, like JSON.stringify(v, null, 2)).
func Indent(compact []byte) ([]byte, error) {
	var v canon.Value
	if err := v.UnmarshalJSON(compact); err != nil {
		return nil, err
	}
	return canon.AppendIndent(nil, &v, "  "), nil
}

// Errors returned by Verify.
var (
	ErrMalformed     = errors.New("envelope: malformed envelope")
	ErrHashAlgorithm = errors.New("envelope: unsupported hash algorithm")
	ErrHashMismatch  = errors.New("envelope: payload hash mismatch")
	ErrSignerDID     = errors.New("envelope: signer is not an Ed25519 did:key")
	ErrSignature     = errors.New("envelope: invalid signature")
)

// Verify checks the basic recipe on a parsed envelope: SHA-256 of the
// payload (compact, or JCS when jcs is set) equals payload_hash_b64u, and
// signature_b64u is the signer's Ed25519 signature of that hash. It does no
// schema or allowlist checks; package verify does the full ordered checks.
func Verify(env *canon.Value, jcs bool) error {
	payload := env.Get("payload")
	hash, ok1 := env.StringOf("payload_hash_b64u")
	sigText, ok2 := env.StringOf("signature_b64u")
	did, ok3 := env.StringOf("signer_did")
	alg, _ := env.StringOf("hash_algorithm")
	if !payload.IsObject() || !ok1 || !ok2 || !ok3 {
		return ErrMalformed
	}
	if alg != HashSHA256 {
		return ErrHashAlgorithm
	}
	if PayloadHash(payload, jcs) != hash {
		return ErrHashMismatch
	}
	raw, err := didkey.PublicKeyBytes(did)
	if err != nil {
		return ErrSignerDID
	}
	sig, err := b64u.Decode(sigText)
	if err != nil || !didkey.NewKey(raw).Verify([]byte(hash), sig) {
		return ErrSignature
	}
	return nil
}

// Parse parses envelope bytes into a tree, keeping key order. A document
// with a key written twice in any object is refused with a
// *DuplicateKeyError (errors.Is ErrDuplicateKey): parsers disagree on
// which copy counts.
func Parse(data []byte) (canon.Value, error) {
	v, err := canon.Parse(data)
	if err != nil {
		return v, err
	}
	if v.Kind != canon.Object {
		return v, ErrMalformed
	}
	if err := CheckDuplicateKeys(data); err != nil {
		return canon.Value{}, err
	}
	return v, nil
}

var _ json.Marshaler = canon.Value{}
