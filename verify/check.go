package verify

import (
	"fmt"
	"strings"
	"time"

	"github.com/clawea/clawea/canon"
)

// Kind names an artifact kind for Check.
type Kind string

// Artifact kinds.
const (
	KindAuto              Kind = ""
	KindProofBundle       Kind = "proof_bundle"
	KindGatewayReceipt    Kind = "gateway_receipt"
	KindWebReceipt        Kind = "web_receipt"
	KindToolReceipt       Kind = "tool_receipt"
	KindExportBundle      Kind = "export_bundle"
	KindAggregateBundle   Kind = "aggregate_bundle"
	KindLogInclusionProof Kind = "log_inclusion_proof"
	KindCommitSig         Kind = "commit_sig"
)

// Kinds lists the kinds Check accepts.
var Kinds = []Kind{KindProofBundle, KindGatewayReceipt, KindWebReceipt, KindToolReceipt, KindExportBundle, KindAggregateBundle, KindLogInclusionProof, KindCommitSig}

// ParseKind accepts a kind name with '-' or '_' ("proof-bundle").
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_"))
	if k == "auto" || k == "" {
		return KindAuto, nil
	}
	if k == "commit_signature" {
		return KindCommitSig, nil
	}
	for _, known := range Kinds {
		if k == known {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q (want one of %s)", s, kindList())
}

func kindList() string {
	var names []string
	for _, k := range Kinds {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// Status values of an Outcome.
const (
	StatusPass  = "PASS"
	StatusFail  = "FAIL"
	StatusError = "ERROR"
)

// Outcome is the CLI verdict for one input.
type Outcome struct {
	Kind         Kind    `json:"kind"`
	Status       string  `json:"status"`
	VerifiedAt   string  `json:"verified_at"`
	ReasonCode   string  `json:"reason_code"`
	Reason       string  `json:"reason"`
	Input        string  `json:"input,omitempty"`
	Strict       bool    `json:"strict"`
	Verification *Result `json:"verification,omitempty"`
	Hint         string  `json:"hint,omitempty"`
	// Warnings say what a PASS does not prove; in strict mode, that a
	// signer was not pinned by the trust config.
	Warnings []string `json:"warnings,omitempty"`
}

// ExitCode returns 0 for PASS, 1 for FAIL and 2 for ERROR.
func (o *Outcome) ExitCode() int {
	switch o.Status {
	case StatusPass:
		return 0
	case StatusFail:
		return 1
	}
	return 2
}

// DetectKind guesses the kind of a parsed artifact.
func DetectKind(v *canon.Value) Kind {
	if !v.IsObject() {
		return KindAuto
	}
	if inner := v.Get("envelope"); inner.IsObject() && v.Get("envelope_version") == nil {
		return DetectKind(inner)
	}
	if inner := v.Get("inclusion_proof_v1"); inner.IsObject() {
		return KindLogInclusionProof
	}
	if inner := v.Get("bundle"); inner.IsObject() && v.Get("export_version") == nil && v.Get("envelope_version") == nil {
		return DetectKind(inner)
	}
	switch str0(v, "envelope_type") {
	case "proof_bundle":
		return KindProofBundle
	case "gateway_receipt":
		return KindGatewayReceipt
	case "web_receipt":
		return KindWebReceipt
	case "tool_receipt":
		return KindToolReceipt
	case "aggregate_bundle":
		return KindAggregateBundle
	}
	switch {
	case v.Get("export_version") != nil:
		return KindExportBundle
	case str0(v, "version") == "m1" || v.Get("algo") != nil && v.Get("did") != nil:
		return KindCommitSig
	case v.Get("proof_version") != nil && v.Get("audit_path") != nil:
		return KindLogInclusionProof
	case v.Get("bundle_version") != nil:
		return KindProofBundle
	case v.Get("tool_name") != nil:
		return KindToolReceipt
	case v.Get("aggregate_version") != nil:
		return KindAggregateBundle
	}
	return KindAuto
}

// Check verifies one artifact and applies the CLI verdict layer (§6.4):
// a core failure is FAIL with the core code; a core pass still fails when a
// bound gateway receipt (strict: any gateway receipt) did not verify.
// Malformed input and unknown kinds are ERROR.
func Check(data []byte, kind Kind, opt Options) *Outcome {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	out := &Outcome{Kind: kind, VerifiedAt: opt.Now.UTC().Format(time.RFC3339Nano), Strict: opt.Strict}
	if msg, over := TooLarge(int64(len(data)), opt); over {
		return out.errorf(InputTooLarge, "%s", msg)
	}
	v, ierr := readDocument(data, &opt)
	switch {
	case ierr == nil:
	case ierr.dupKey != nil:
		return out.finish(failPath(DuplicateJSONKey, ierr.msg, ierr.dupKey.Path))
	default:
		return out.errorf(InputInvalid, "%s", ierr.msg)
	}
	// The parts re-encoded below for ToolReceipt and LogInclusionProof
	// are not read from outside again.
	opt.MaxBytes = -1
	if kind == KindAuto {
		kind = DetectKind(&v)
		out.Kind = kind
		if kind == KindAuto {
			return out.errorf(InputInvalid, "cannot tell what kind of artifact this is; pass --kind (%s)", kindList())
		}
	}
	var res *Result
	switch kind {
	case KindProofBundle:
		res = ProofBundleValue(unwrap(&v, "envelope"), opt)
	case KindGatewayReceipt:
		res = verifyStandaloneReceipt(unwrap(&v, "envelope"), gatewayKind, opt.Config.GatewayReceiptSigners, opt)
	case KindWebReceipt:
		res = verifyStandaloneReceipt(unwrap(&v, "envelope"), webKind, opt.Config.WebReceiptSigners, opt)
	case KindToolReceipt:
		res = ToolReceipt(canon.AppendCompact(nil, unwrap(&v, "envelope")), opt)
	case KindExportBundle:
		var inner *Result
		res, inner = exportBundleValue(unwrap(&v, "bundle"), opt)
		if res.Valid && inner != nil {
			if code, reason := receiptRule(inner, &opt); code != "" {
				res = fail(code, "proof bundle: "+reason)
			}
		}
	case KindAggregateBundle:
		res = aggregateValue(unwrap(&v, "envelope"), opt)
	case KindLogInclusionProof:
		res = LogInclusionProof(canon.AppendCompact(nil, unwrap(&v, "inclusion_proof_v1")), opt)
	case KindCommitSig:
		res = commitSigValue(&v)
	default:
		return out.errorf(InputInvalid, "unknown kind %q", kind)
	}
	if res.Code == InputInvalid {
		return out.errorf(InputInvalid, "%s", res.Reason)
	}
	if res.Valid && kind == KindProofBundle {
		if code, reason := receiptRule(res, &opt); code != "" {
			res.Valid, res.Code, res.Reason = false, code, reason
		}
	}
	if res.Valid && opt.Strict && res.Unsigned {
		res.Valid, res.Code, res.Reason = false, UnsignedPayload, "strict mode refuses unsigned payloads"
	}
	out.finish(res)
	if opt.Strict && res.Valid {
		out.Warnings = unpinnedWarnings(kind, &opt.Config)
	}
	return out
}

// Warning texts of a strict PASS without pinned signers.
const (
	WarnAgentUnpinned     = "SIGNER_UNPINNED: no agent_signer_dids in the trust config, so any agent key's bundle passes; pin the agent DIDs to prove who signed"
	WarnAggregateUnpinned = "SIGNER_UNPINNED: no aggregate_signer_dids in the trust config, so any key's aggregate passes; pin the job service DID to prove who assembled it"
)

func unpinnedWarnings(kind Kind, cfg *Config) []string {
	var w []string
	switch kind {
	case KindProofBundle, KindExportBundle, KindAggregateBundle:
		if len(cfg.AgentSigners) == 0 {
			w = append(w, WarnAgentUnpinned)
		}
	}
	if kind == KindAggregateBundle && len(cfg.AggregateSigners) == 0 {
		w = append(w, WarnAggregateUnpinned)
	}
	return w
}

// finish sets the outcome from a core result.
func (o *Outcome) finish(res *Result) *Outcome {
	o.Verification = res
	o.ReasonCode = res.Code
	o.Reason = res.Reason
	if res.Valid {
		o.Status = StatusPass
	} else {
		o.Status = StatusFail
		o.Hint = Explain(res.Code)
	}
	return o
}

func (o *Outcome) errorf(code, format string, args ...any) *Outcome {
	o.Status = StatusError
	o.ReasonCode = code
	o.Reason = fmt.Sprintf(format, args...)
	o.Hint = Explain(code)
	return o
}

// receiptRule is the CLI's strict receipt rule over a core-valid bundle.
// In compat mode only receipts whose binding names an event count; in
// strict mode every gateway receipt must be signed, allowlisted and bound.
func receiptRule(res *Result, opt *Options) (code, reason string) {
	var count, signed, verified int
	for i, o := range res.receipts {
		if o.code == "SKIPPED" || (!opt.Strict && !o.hasEvent) {
			continue
		}
		count++
		if o.signed {
			signed++
			if o.bound {
				verified++
			}
		} else if reason == "" {
			reason = "first: receipts[" + itoa(i) + "] " + o.code
		}
	}
	if count == 0 {
		return "", ""
	}
	if len(opt.Config.GatewayReceiptSigners) == 0 {
		return DependencyNotConfigured, "the bundle carries bound gateway receipts but no gateway signer allowlist is configured (--config)"
	}
	if verified == count {
		return "", ""
	}
	if signed == count {
		return ReceiptBindingMismatch, fmt.Sprintf("%d of %d gateway receipts are not bound to this run's event chain", count-verified, count)
	}
	return ReceiptVerificationFailed, fmt.Sprintf("%d of %d gateway receipts failed verification (%s)", count-signed, count, reason)
}
