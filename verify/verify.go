// Package verify checks Clawsig protocol artifacts offline: proof bundles,
// gateway, web and tool receipts, export bundles, aggregate bundles,
// transparency-log inclusion proofs and m1 commit signatures.
//
// Each verifier runs the reference verifier's checks in the reference's
// order and reports the first failure with the reference's reason code, so
// that a conformance vector gets the same verdict here as there. Strict mode
// (Options.Strict) is stricter on purpose where the reference is unsafe; the
// differences are listed in docs/verify.md.
//
// The package imports no server or storage code and never touches the
// network. Large bundles verify their receipts on all cores.
package verify

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
)

// Options control a verification.
type Options struct {
	// Config holds the signer allowlists.
	Config Config
	// Now is the verification time for expiry checks; zero means the
	// current time.
	Now time.Time
	// Strict turns on clawea's stricter rules (docs/verify.md).
	Strict bool
	// URM is the URM document a bundle's urm reference points at, if any.
	URM []byte
	// Workers bounds the goroutines used for receipts; 0 means GOMAXPROCS.
	Workers int
	// TTLSkew is the tolerance added to expires_at (default 0, like the
	// reference's proof-bundle path).
	TTLSkew time.Duration
	// MaxBytes caps the size of an input given as bytes: a larger one is
	// refused unparsed with INPUT_TOO_LARGE. 0 means DefaultMaxBytes,
	// a negative value no cap.
	MaxBytes int64
}

func (o *Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

func (o *Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Result is the outcome of one core verification.
type Result struct {
	Valid  bool   `json:"valid"`
	Code   string `json:"reason_code"`
	Reason string `json:"reason"`
	// Path locates the failing field when a schema check failed.
	Path string `json:"path,omitempty"`

	AgentDID  string `json:"agent_did,omitempty"`
	SignerDID string `json:"signer_did,omitempty"`
	RunID     string `json:"run_id,omitempty"`
	BundleID  string `json:"bundle_id,omitempty"`
	Unsigned  bool   `json:"unsigned,omitempty"`

	EventCount         int    `json:"event_count,omitempty"`
	EventChainValid    bool   `json:"event_chain_valid,omitempty"`
	ChainRootHash      string `json:"chain_root_hash_b64u,omitempty"`
	Receipts           int    `json:"receipts,omitempty"`
	ReceiptsSigned     int    `json:"receipts_signature_verified,omitempty"`
	ReceiptsVerified   int    `json:"receipts_verified,omitempty"`
	BoundReceipts      int    `json:"receipts_with_binding,omitempty"`
	ToolReceipts       int    `json:"tool_receipts,omitempty"`
	SideEffects        int    `json:"side_effect_receipts,omitempty"`
	HumanApprovals     int    `json:"human_approval_receipts,omitempty"`
	RateLimitClaims    int    `json:"rate_limit_claims,omitempty"`
	AttestationsValid  int    `json:"attestations_verified,omitempty"`
	TrustTier          string `json:"trust_tier,omitempty"`
	ProofTier          string `json:"proof_tier,omitempty"`
	ModelIdentityTier  string `json:"model_identity_tier,omitempty"`
	PayloadHash        string `json:"payload_hash_b64u,omitempty"`
	FirstReceiptFailed string `json:"first_receipt_failure,omitempty"`

	// receiptCodes holds the per-receipt outcome of the gateway receipts.
	receipts []receiptOutcome
	members  int
}

type receiptOutcome struct {
	code     string
	signed   bool // passed every check of verifyReceipt
	bound    bool
	hasEvent bool // binding.event_hash_b64u is non-empty
	tier     string
	spanIDs  []string
}

func fail(code, reason string) *Result { return &Result{Code: code, Reason: reason} }

func failPath(code, reason, path string) *Result {
	return &Result{Code: code, Reason: reason, Path: path}
}

func pass() *Result { return &Result{Valid: true, Code: OK, Reason: "verified"} }

// hasKeys reports whether v is an object holding every key.
func hasKeys(v *canon.Value, keys ...string) bool {
	if !v.IsObject() {
		return false
	}
	for _, k := range keys {
		if v.Get(k) == nil {
			return false
		}
	}
	return true
}

func str0(v *canon.Value, key string) string {
	s, _ := v.StringOf(key)
	return s
}

// envelopeTypes is the reference verifier's allowlist of top-level types.
var envelopeTypes = map[string]bool{
	"artifact_signature": true, "message_signature": true, "gateway_receipt": true,
	"web_receipt": true, "proof_bundle": true, "event_chain": true, "owner_attestation": true,
	"commit_proof": true, "execution_attestation": true, "derivation_attestation": true,
	"audit_result_attestation": true, "export_bundle": true, "aggregate_bundle": true,
	"compiled_evidence_report": true, "scoped_token": true, "policy_bundle": true,
}

// signatureOK decodes sigText and verifies it over msg with the key of did.
// It returns the code of the first failure: INVALID_DID_FORMAT when no key
// can be extracted, SIGNATURE_INVALID otherwise.
func signatureOK(res *didkey.Resolver, did, sigText string, msg []byte) string {
	key, err := res.Resolve(did)
	if err != nil {
		return InvalidDIDFormat
	}
	sig, err := b64u.Decode(sigText)
	if err != nil || !key.Verify(msg, sig) {
		return SignatureInvalid
	}
	return ""
}

// keys caches resolved did:key keys across verifications in this process.
var keys = didkey.NewResolver(4096)

// parallel runs f(i) for i in [0,n) on up to workers goroutines, the
// caller being one of them.
func parallel(n, workers int, f func(i int)) {
	if workers <= 1 || n < 32 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	if workers > n {
		workers = n
	}
	// Small chunks keep the cores busy to the end: a receipt costs tens of
	// microseconds, and the last chunk is where one core waits. Workers
	// take the next chunk from a shared counter.
	chunk := int64(max(1, n/(workers*64)))
	var next atomic.Int64
	run := func() {
		for {
			start := next.Add(chunk) - chunk
			if start >= int64(n) {
				return
			}
			for i := start; i < min(start+chunk, int64(n)); i++ {
				f(int(i))
			}
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run()
		}()
	}
	run()
	wg.Wait()
}

func isB64u8(v *canon.Value) bool { return v.IsString() && b64u.IsValidMin(v.Str, 8) }
