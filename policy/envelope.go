package policy

import (
	"errors"
	"fmt"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/signer"
)

// Fetch-and-verify error codes (PROTOCOL.md §2.4, plus clawea's
// WPC_SIGNER_ALLOWLIST_REQUIRED).
const (
	CodeEnvelopeInvalid   = "WPC_ENVELOPE_INVALID"
	CodeHashMismatch      = "WPC_HASH_MISMATCH"
	CodeHashInvalid       = "WPC_HASH_INVALID"
	CodeSignerNotAllowed  = "WPC_SIGNER_NOT_ALLOWED"
	CodeSignerUnsupported = "WPC_SIGNER_DID_UNSUPPORTED"
	CodeSignatureInvalid  = "WPC_SIGNATURE_INVALID"
	CodeAllowlistRequired = "WPC_SIGNER_ALLOWLIST_REQUIRED"
	CodePolicyHashInvalid = "POLICY_HASH_INVALID"
	EnvelopeType          = envelope.TypeWPC
)

// HTTP statuses a gateway answers with (the package serves nothing).
const (
	statusBadRequest = 400
	statusForbidden  = 403
	statusBadGateway = 502
)

// VerifyError is a fetch-and-verify failure with the HTTP status a
// gateway answers with.
type VerifyError struct {
	Code   string
	Status int
	Msg    string
}

func (e *VerifyError) Error() string { return "policy: " + e.Code + ": " + e.Msg }

func verr(code string, status int, format string, args ...any) *VerifyError {
	return &VerifyError{Code: code, Status: status, Msg: fmt.Sprintf(format, args...)}
}

// SignEnvelope signs doc as a work_policy_contract envelope whose
// payload_hash_b64u is the policy hash (JCS), as the registry does.
func SignEnvelope(s signer.Signer, doc *Document, at time.Time) (*envelope.Envelope, error) {
	env, err := envelope.Sign(s, EnvelopeType, doc.Value, envelope.Options{JCS: true, IssuedAt: at})
	if err != nil {
		return nil, err
	}
	if env.PayloadHash != doc.Hash() {
		return nil, errors.New("policy: envelope hash differs from the policy hash")
	}
	return env, nil
}

// VerifyOptions hold the signer allowlist. It is required: an empty list
// fails unless AllowAnySigner is set explicitly.
type VerifyOptions struct {
	Signers        []string
	AllowAnySigner bool
}

// IsPolicyHash reports whether s is a 43-character b64u SHA-256.
func IsPolicyHash(s string) bool { return b64u.IsDigest(s) }

var envelopeKeys = []string{"envelope_version", "envelope_type", "payload", "payload_hash_b64u", "hash_algorithm", "signature_b64u", "algorithm", "signer_did", "issued_at"}

// VerifyEnvelope checks a work_policy_contract envelope fetched for
// wantHash, in the order of PROTOCOL.md §2.4: strict shape, requested hash,
// JCS recompute, signer allowlist, did:key signer, signature. It returns
// the validated policy.
func VerifyEnvelope(env *canon.Value, wantHash string, opt VerifyOptions) (*Document, error) {
	if !IsPolicyHash(wantHash) {
		return nil, verr(CodePolicyHashInvalid, statusBadRequest, "policy hash must be 43 base64url characters")
	}
	if !env.IsObject() {
		return nil, verr(CodeEnvelopeInvalid, statusBadGateway, "envelope is not an object")
	}
	for _, m := range env.Members {
		known := false
		for _, k := range envelopeKeys {
			if m.Key == k {
				known = true
				break
			}
		}
		if !known {
			return nil, verr(CodeEnvelopeInvalid, statusBadGateway, "unknown envelope field %q", m.Key)
		}
	}
	for _, k := range envelopeKeys {
		if env.Get(k) == nil {
			return nil, verr(CodeEnvelopeInvalid, statusBadGateway, "envelope field %q missing", k)
		}
	}
	str := func(k string) string { s, _ := env.StringOf(k); return s }
	if str("envelope_version") != "1" || str("envelope_type") != EnvelopeType || str("hash_algorithm") != "SHA-256" ||
		str("algorithm") != "Ed25519" || !b64u.IsValidMin(str("payload_hash_b64u"), 8) || !b64u.IsValidMin(str("signature_b64u"), 8) {
		return nil, verr(CodeEnvelopeInvalid, statusBadGateway, "envelope fields do not have the work_policy_contract shape")
	}
	if _, err := parseRFC3339(str("issued_at")); err != nil {
		return nil, verr(CodeEnvelopeInvalid, statusBadGateway, "issued_at is not a date-time")
	}
	doc, err := FromValue(env.Get("payload").Clone())
	if err != nil {
		return nil, verr(CodeEnvelopeInvalid, statusBadGateway, "payload is not a valid policy: %v", err)
	}
	got := str("payload_hash_b64u")
	if got != wantHash {
		return nil, verr(CodeHashMismatch, statusForbidden, "envelope is for %s, not the requested %s", got, wantHash)
	}
	if doc.Hash() != got {
		return nil, verr(CodeHashInvalid, statusForbidden, "payload does not hash to payload_hash_b64u")
	}
	did := str("signer_did")
	if len(opt.Signers) == 0 && !opt.AllowAnySigner {
		return nil, verr(CodeAllowlistRequired, statusForbidden, "no policy signer allowlist is configured")
	}
	if len(opt.Signers) > 0 {
		allowed := false
		for _, s := range opt.Signers {
			if s == did {
				allowed = true
				break
			}
		}
		if !allowed {
			return nil, verr(CodeSignerNotAllowed, statusForbidden, "policy signer %s is not allowlisted", did)
		}
	}
	pub, err := didkey.PublicKey(did)
	if err != nil {
		return nil, verr(CodeSignerUnsupported, statusForbidden, "policy signer must be an Ed25519 did:key")
	}
	sig, err := b64u.Decode(str("signature_b64u"))
	if err != nil || !didkey.NewKey(pub).Verify([]byte(got), sig) {
		return nil, verr(CodeSignatureInvalid, statusForbidden, "policy envelope signature does not verify")
	}
	return doc, nil
}
