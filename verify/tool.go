package verify

import (
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/receipt"
)

// chainContext is what receipt checks need to know about the bundle.
type chainContext struct {
	agentDID   string
	chainValid bool
	runID      string
	events     map[string]bool // event hashes in the chain
	now        time.Time
	skew       time.Duration
	strict     bool
}

type toolForm int

const (
	toolNone toolForm = iota
	toolEnvelopeV2
	toolEnvelopeV1
	toolPayloadV2
	toolPayloadV1
)

// classifyTool finds the first tool receipt form the entry fits.
func classifyTool(entry *canon.Value) toolForm {
	for _, f := range []struct {
		form toolForm
		s    *schema
	}{
		{toolEnvelopeV2, toolReceiptEnvelopeV2Schema},
		{toolEnvelopeV1, toolReceiptEnvelopeV1Schema},
		{toolPayloadV2, toolReceiptV2Schema},
		{toolPayloadV1, toolReceiptV1Schema},
	} {
		if validate(f.s, entry, "") == nil {
			return f.form
		}
	}
	return toolNone
}

// checkToolReceipt runs step 24 on one entry. payloadJSON, if not nil, is
// the compact form of an envelope's payload.
func checkToolReceipt(entry *canon.Value, ctx *chainContext, payloadJSON []byte) (code, reason string) {
	form := classifyTool(entry)
	if form == toolNone {
		rv := entry.Get("receipt_version")
		if rv == nil && entry.Get("payload").IsObject() {
			rv = entry.Get("payload").Get("receipt_version")
		}
		if rv != nil {
			return UnknownVersion, "tool receipt fits no supported version"
		}
		return SchemaValidationFailed, "tool receipt fits no supported form"
	}
	isEnv := form == toolEnvelopeV1 || form == toolEnvelopeV2
	payload := entry
	if isEnv {
		payload = entry.Get("payload")
	}
	if ctx.agentDID != "" && str0(payload, "agent_did") != ctx.agentDID {
		return ProofBundleAgentMismatch, "tool receipt agent_did differs from the bundle's"
	}
	if b := payload.Get("binding"); b.IsObject() && ctx.chainValid {
		if rid, ok := b.StringOf("run_id"); ok && rid != ctx.runID {
			return ReceiptBindingMismatch, "tool receipt is bound to run " + rid
		}
		if eh := b.Get("event_hash_b64u"); eh != nil {
			if !isB64u8(eh) {
				return SchemaValidationFailed, "tool receipt binding.event_hash_b64u is not base64url"
			}
			if !ctx.events[eh.Str] {
				return ReceiptBindingMismatch, "tool receipt names an event that is not in the chain"
			}
		}
	}
	if isEnv {
		if exp, ok := entry.StringOf("expires_at"); ok {
			t, ok := parseLenientDate(exp)
			if !ok {
				return SchemaValidationFailed, "tool receipt expires_at does not parse"
			}
			if ctx.now.After(t.Add(ctx.skew)) {
				return ExpiredTTL, "tool receipt expired at " + exp
			}
		}
		if ha := str0(entry, "hash_algorithm"); ha != "SHA-256" {
			return UnknownHashAlgorithm, "tool receipt hash_algorithm " + quote(ha) + " is not implemented"
		}
		if payloadJSON == nil {
			payloadJSON = canon.AppendCompact(nil, payload)
		}
		hash := str0(entry, "payload_hash_b64u")
		if b64u.SHA256(payloadJSON) != hash {
			return HashMismatch, "tool receipt payload hash does not match"
		}
		if c := signatureOK(keys, str0(entry, "signer_did"), str0(entry, "signature_b64u"), []byte(hash)); c != "" {
			return SignatureInvalid, "tool receipt signature does not verify"
		}
		if cs := entry.Get("co_signatures"); cs.IsArray() {
			for i := range cs.Items {
				co := &cs.Items[i]
				if err := validate(coSignatureSchema, co, "co_signatures["+itoa(i)+"]"); err != nil {
					return SchemaValidationFailed, err.Error()
				}
				sig, err := b64u.Decode(str0(co, "signature_b64u"))
				if err != nil || len(sig) != 64 {
					return CoSignatureInvalid, "co-signature " + itoa(i) + " is not 64 bytes"
				}
				if c := signatureOK(keys, str0(co, "signer_did"), str0(co, "signature_b64u"), []byte(hash)); c != "" {
					return CoSignatureInvalid, "co-signature " + itoa(i) + " (" + str0(co, "role") + ") does not verify"
				}
			}
		}
	} else if ctx.strict {
		return UnsignedPayload, "strict mode refuses unsigned tool receipts"
	}
	if form == toolEnvelopeV2 || form == toolPayloadV2 {
		for _, d := range [...][2]string{{"args_disclosure", "args_hash_b64u"}, {"result_disclosure", "result_hash_b64u"}} {
			if disc := payload.Get(d[0]); disc != nil {
				if code, reason := checkDisclosure(disc, str0(payload, d[1])); code != "" {
					return code, d[0] + ": " + reason
				}
			}
		}
	}
	return "", ""
}

// checkDisclosure verifies a selective disclosure against the committed
// hash (§5.2).
func checkDisclosure(disc *canon.Value, committed string) (code, reason string) {
	if str0(disc, "disclosure_algorithm") != disclosureAlgorithm {
		return DisclosureAlgorithmUnknown, "unknown disclosure algorithm"
	}
	root := str0(disc, "merkle_root_b64u")
	if root != committed {
		return DisclosureRootMismatch, "merkle_root_b64u differs from the committed hash"
	}
	leaves := disc.Get("disclosed_leaves")
	redacted := disc.Get("redacted_leaf_hashes_b64u")
	if !leaves.IsObject() || !redacted.IsArray() {
		return SchemaValidationFailed, "disclosure is malformed"
	}
	hashes := make([]string, 0, len(redacted.Items)+len(leaves.Members))
	for i := range redacted.Items {
		hashes = append(hashes, redacted.Items[i].Str)
	}
	for i := range leaves.Members {
		m := &leaves.Members[i]
		typ := str0(&m.Value, "type")
		if jsonType(m.Value.Get("value")) != typ {
			return DisclosureTypeMismatch, "leaf " + m.Key + " declares " + typ
		}
		hashes = append(hashes, receipt.LeafHashOf(m.Key, &m.Value))
	}
	if receipt.Root(hashes) != root {
		return DisclosureRootMismatch, "recomputed disclosure root differs"
	}
	return "", ""
}

func jsonType(v *canon.Value) string {
	if v == nil {
		return "undefined"
	}
	return v.Kind.String()
}

// ToolReceipt verifies a standalone tool receipt (any of the four forms).
// An unsigned payload passes only structurally, and never in strict mode.
func ToolReceipt(data []byte, opt Options) *Result {
	entry, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	form := classifyTool(&entry)
	ctx := &chainContext{now: opt.now(), skew: opt.TTLSkew, strict: opt.Strict}
	if code, reason := checkToolReceipt(&entry, ctx, nil); code != "" {
		return fail(code, reason)
	}
	res := pass()
	switch form {
	case toolPayloadV1, toolPayloadV2:
		res.Unsigned = true
		res.Reason = "structurally valid unsigned tool receipt payload (no signature to check)"
		res.AgentDID = str0(&entry, "agent_did")
	default:
		res.SignerDID = str0(&entry, "signer_did")
		res.AgentDID = str0(entry.Get("payload"), "agent_did")
		res.PayloadHash = str0(&entry, "payload_hash_b64u")
	}
	return res
}
