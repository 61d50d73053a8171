package verify

import (
	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
)

// signedKind describes one allowlisted envelope kind checked by the
// reference's verifyReceipt order (§6.3).
type signedKind struct {
	typ    string
	schema *schema
}

var (
	gatewayKind = signedKind{"gateway_receipt", gatewayReceiptEnvelopeSchema}
	webKind     = signedKind{"web_receipt", webReceiptEnvelopeSchema}
)

// allowSet is an allowlist prepared for lookups.
type allowSet map[string]bool

func newAllowSet(dids []string) allowSet {
	s := make(allowSet, len(dids))
	for _, d := range dids {
		s[d] = true
	}
	return s
}

const (
	maxTokens  = 10_000_000
	maxLatency = 3_600_000
)

// verifySignedReceipt runs §6.3 on one envelope. payloadJSON, when not nil,
// is the payload's compact form taken from the parent's serialisation.
// It returns "" when the receipt is valid, else the reason code and text.
func verifySignedReceipt(env *canon.Value, k signedKind, allow allowSet, payloadJSON []byte, strict bool) (code, reason string) {
	return verifySignedReceiptAt(env, k, allow, payloadJSON, strict, false)
}

// verifySignedReceiptAt is verifySignedReceipt; inBundle says the envelope
// already passed the proof bundle's schema step, whose receipt rules equal
// the standalone envelope's except for metadata, so only the metadata is
// checked again.
func verifySignedReceiptAt(env *canon.Value, k signedKind, allow allowSet, payloadJSON []byte, strict, inBundle bool) (code, reason string) {
	if !hasKeys(env, envelopeRequired...) {
		return MalformedEnvelope, "receipt envelope is missing required fields"
	}
	if v, _ := env.StringOf("envelope_version"); v != "1" {
		return UnknownEnvelopeVersion, "receipt envelope_version must be \"1\""
	}
	if t, _ := env.StringOf("envelope_type"); !envelopeTypes[t] || t != k.typ {
		return UnknownEnvelopeType, "envelope_type must be " + k.typ
	}
	if a, _ := env.StringOf("algorithm"); a != "Ed25519" {
		return UnknownAlgorithm, "algorithm must be Ed25519"
	}
	ha, _ := env.StringOf("hash_algorithm")
	if ha != "SHA-256" && (ha != "BLAKE3" || strict) {
		return UnknownHashAlgorithm, "hash_algorithm " + quote(ha) + " is not supported"
	}
	if inBundle {
		if md := env.Get("payload").Get("metadata"); md != nil {
			if err := validate(gatewayMetadataSchema, md, "payload.metadata"); err != nil {
				return SchemaValidationFailed, err.Error()
			}
		}
	} else if err := validate(k.schema, env, ""); err != nil {
		return SchemaValidationFailed, err.Error()
	}
	did := str0(env, "signer_did")
	if !didkey.IsValidFormat(did) {
		return InvalidDIDFormat, "signer_did is malformed"
	}
	if len(allow) == 0 {
		return DependencyNotConfigured, "no " + k.typ + " signer allowlist is configured"
	}
	if !allow[did] {
		return ClaimNotFound, "signer " + did + " is not in the " + k.typ + " allowlist"
	}
	if _, ok := parseLenientDate(str0(env, "issued_at")); !ok {
		return MalformedEnvelope, "issued_at does not parse"
	}
	if !b64u.IsValid(str0(env, "payload_hash_b64u")) || !b64u.IsValid(str0(env, "signature_b64u")) {
		return MalformedEnvelope, "payload_hash_b64u and signature_b64u must be base64url"
	}
	payload := env.Get("payload")
	if k.typ == "gateway_receipt" {
		for _, f := range [...]string{"tokens_input", "tokens_output", "latency_ms"} {
			v := payload.Get(f)
			limit := float64(maxTokens)
			if f == "latency_ms" {
				limit = maxLatency
			}
			if !v.IsInteger() || v.Num < 0 || v.Num > limit {
				return MalformedEnvelope, f + " must be an integer within limits"
			}
		}
	}
	if ha != "SHA-256" {
		return HashMismatch, "BLAKE3 payload hashes are not implemented"
	}
	if payloadJSON == nil {
		payloadJSON = canon.AppendCompact(nil, payload)
	}
	hash := str0(env, "payload_hash_b64u")
	if b64u.SHA256(payloadJSON) != hash {
		return HashMismatch, "payload hash does not match the payload"
	}
	if c := signatureOK(keys, did, str0(env, "signature_b64u"), []byte(hash)); c != "" {
		if c == InvalidDIDFormat {
			return c, "no Ed25519 key can be extracted from " + did
		}
		return c, "receipt signature does not verify"
	}
	return "", ""
}

func quote(s string) string { return "\"" + s + "\"" }

// GatewayReceipt verifies one gateway receipt envelope on its own (§6.3).
func GatewayReceipt(data []byte, opt Options) *Result {
	env, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	return verifyStandaloneReceipt(&env, gatewayKind, opt.Config.GatewayReceiptSigners, opt)
}

// WebReceipt verifies one web receipt envelope with the web allowlist.
func WebReceipt(data []byte, opt Options) *Result {
	env, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	return verifyStandaloneReceipt(&env, webKind, opt.Config.WebReceiptSigners, opt)
}

func verifyStandaloneReceipt(env *canon.Value, k signedKind, allow []string, opt Options) *Result {
	if code, reason := verifySignedReceipt(env, k, newAllowSet(allow), nil, opt.Strict); code != "" {
		return fail(code, reason)
	}
	res := pass()
	res.SignerDID = str0(env, "signer_did")
	res.PayloadHash = str0(env, "payload_hash_b64u")
	payload := env.Get("payload")
	if b := payload.Get("binding"); b.IsObject() {
		res.RunID = str0(b, "run_id")
	}
	if k.typ == "gateway_receipt" {
		res.ModelIdentityTier = modelTier(payload)
		res.ProofTier = "gateway"
	} else {
		res.ProofTier = "witnessed_web"
		if tr := payload.Get("transparency"); tr.IsObject() {
			if proof := tr.Get("inclusion_proof"); proof != nil {
				if r := verifyInclusionProof(proof); !r.Valid {
					return r
				}
			}
		}
	}
	if exp, ok := env.StringOf("expires_at"); ok && opt.Strict {
		// The reference ignores expires_at on receipts; strict mode does not.
		t, ok := parseLenientDate(exp)
		if !ok {
			return fail(MalformedEnvelope, "expires_at does not parse")
		}
		if opt.now().After(t.Add(opt.TTLSkew)) {
			return fail(ExpiredTTL, "receipt expired at "+exp)
		}
	}
	return res
}

func modelTier(payload *canon.Value) string {
	if md := payload.Get("metadata"); md.IsObject() {
		if mi := md.Get("model_identity"); mi.IsObject() {
			if t, ok := mi.StringOf("tier"); ok {
				return t
			}
		}
	}
	return "unknown"
}

// parseInput parses an artifact given as bytes (see readDocument):
// input over the size cap is refused unread, malformed JSON is an input
// error and a key written twice is DUPLICATE_JSON_KEY.
func parseInput(data []byte, opt *Options) (canon.Value, *Result) {
	v, err := readDocument(data, opt)
	switch {
	case err == nil:
		return v, nil
	case err.tooLarge:
		return v, fail(InputTooLarge, err.msg)
	case err.dupKey != nil:
		return v, failPath(DuplicateJSONKey, err.msg, err.dupKey.Path)
	}
	return v, fail(InputInvalid, err.msg)
}
