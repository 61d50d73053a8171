package verify

import (
	"crypto/sha256"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
)

// Limits applied by the reference at step 12.
const (
	MaxEvents       = 1000
	MaxReceipts     = 1000
	MaxAttestations = 100
	MaxMetadata     = 16 * 1024
)

// ProofBundle verifies a proof bundle (envelope, or a raw payload, which
// can pass only in compat mode) with the core checks of §6.2. The CLI
// verdict layer (Check) adds the strict receipt rule on top.
func ProofBundle(data []byte, opt Options) *Result {
	v, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	return ProofBundleValue(&v, opt)
}

// ProofBundleValue is ProofBundle on a parsed document.
func ProofBundleValue(in *canon.Value, opt Options) *Result {
	b := bundleCheck{opt: opt, now: opt.now()}
	res := b.run(in)
	if res.Valid {
		if r := checkPinned(opt.Config.AgentSigners, res.SignerDID, "proof bundle", res.Unsigned); r != nil {
			return r
		}
	}
	return res
}

// checkPinned applies a signer pin of the trust config (in both modes:
// the reference has no such list, so only a user who sets one sees it).
// An empty pin allows every signer; a set one refuses unsigned payloads.
func checkPinned(pin []string, signer, what string, unsigned bool) *Result {
	switch {
	case len(pin) == 0:
		return nil
	case unsigned:
		return fail(SignerNotPinned, "an unsigned "+what+" has no signer to match the pinned signers")
	case !contains(pin, signer):
		return fail(SignerNotPinned, what+" signer "+signer+" is not among the pinned signers")
	}
	return nil
}

type bundleCheck struct {
	opt Options
	now time.Time
}

func (b *bundleCheck) run(in *canon.Value) *Result {
	strict := b.opt.Strict
	// Step 1: envelope detection.
	isEnv := in.IsObject() && in.Get("envelope_version") != nil && in.Get("payload") != nil && in.Get("signature_b64u") != nil
	if isEnv {
		if !hasKeys(in, envelopeRequired...) {
			return fail(MalformedEnvelope, "envelope is missing required fields")
		}
		// Step 3.
		if v := in.Get("envelope_version"); !v.IsString() || v.Str != "1" {
			return fail(UnknownEnvelopeVersion, "envelope_version must be \"1\"")
		}
		// Step 4.
		if t := str0(in, "envelope_type"); !envelopeTypes[t] || t != "proof_bundle" {
			return fail(UnknownEnvelopeType, "envelope_type must be proof_bundle")
		}
		// Step 5.
		if str0(in, "algorithm") != "Ed25519" {
			return fail(UnknownAlgorithm, "algorithm must be Ed25519")
		}
		// Step 6.
		if ha := str0(in, "hash_algorithm"); ha != "SHA-256" && (ha != "BLAKE3" || strict) {
			return fail(UnknownHashAlgorithm, "hash_algorithm "+quote(ha)+" is not supported")
		}
		// Step 7.
		if !didkey.IsValidFormat(str0(in, "signer_did")) {
			return fail(InvalidDIDFormat, "signer_did is malformed")
		}
		// Step 8.
		if _, ok := parseLenientDate(str0(in, "issued_at")); !ok {
			return fail(MalformedEnvelope, "issued_at does not parse")
		}
		if exp := in.Get("expires_at"); exp != nil {
			t, ok := parseLenientDate(exp.Str)
			if !exp.IsString() || !ok {
				return fail(MalformedEnvelope, "expires_at does not parse")
			}
			if b.now.After(t.Add(b.opt.TTLSkew)) {
				return fail(ExpiredTTL, "bundle expired at "+exp.Str)
			}
		}
		// Step 9.
		if !b64u.IsValid(str0(in, "payload_hash_b64u")) || !b64u.IsValid(str0(in, "signature_b64u")) {
			return fail(MalformedEnvelope, "payload_hash_b64u and signature_b64u must be base64url")
		}
		// Step 10 runs on its own goroutine while steps 11 to 30 run: they
		// are pure checks of the parsed document, written to hold on
		// payloads no schema has seen (unsigned ones skip step 10), and
		// their verdict is used only once the schema holds, so the failure
		// reported is still the first in check order. On two cores this
		// takes the serial walk of the whole envelope off the critical
		// path.
		schema := make(chan *schemaError, 1)
		go func() { schema <- validate(proofBundleEnvelopeSchema, schemaView(in), "") }()
		later := b.payloadSteps(in, in.Get("payload"), true)
		if err := <-schema; err != nil {
			return failPath(schemaCode(err.Path), "schema: "+err.Error(), err.Path)
		}
		return later
	}
	if strict {
		return fail(UnsignedPayload, "strict mode refuses an unsigned proof bundle payload")
	}
	return b.payloadSteps(in, in, false)
}

// payloadSteps runs steps 11 to 30 on a proof bundle's payload (in itself
// when isEnv is false).
func (b *bundleCheck) payloadSteps(in, payload *canon.Value, isEnv bool) *Result {
	// Step 11.
	sanityCode := MalformedEnvelope
	if !isEnv {
		sanityCode = SchemaValidationFailed
	}
	if !payload.IsObject() {
		return fail(sanityCode, "payload must be an object")
	}
	chain := payload.Get("event_chain")
	receipts := payload.Get("receipts")
	atts := payload.Get("attestations")
	if v := payload.Get("bundle_version"); !v.IsString() || v.Str != "1" {
		return fail(sanityCode, "bundle_version must be \"1\"")
	}
	if s, ok := payload.StringOf("bundle_id"); !ok || s == "" {
		return fail(sanityCode, "bundle_id must be a non-empty string")
	}
	agent, ok := payload.StringOf("agent_did")
	if !ok || !strings.HasPrefix(agent, "did:") {
		return fail(sanityCode, "agent_did must be a DID")
	}
	if payload.Get("urm") == nil && !(chain.IsArray() && len(chain.Items) > 0) &&
		!(receipts.IsArray() && len(receipts.Items) > 0) && !(atts.IsArray() && len(atts.Items) > 0) {
		return fail(sanityCode, "bundle carries no urm, event chain, receipts or attestations")
	}

	// Step 12.
	if chain.IsArray() && len(chain.Items) > MaxEvents {
		return fail(MalformedEnvelope, "event_chain has more than 1000 events")
	}
	if receipts.IsArray() && len(receipts.Items) > MaxReceipts {
		return fail(MalformedEnvelope, "receipts has more than 1000 entries")
	}
	if atts.IsArray() && len(atts.Items) > MaxAttestations {
		return fail(MalformedEnvelope, "attestations has more than 100 entries")
	}

	// Serialise the payload once. The items of the big arrays are encoded
	// in parallel, remembering where each receipt payload and metadata
	// object landed; the bundle hash, the metadata limits and the receipt
	// hashes all use these bytes.
	enc := encodeBundle(payload, b.opt.workers(), b.receiptCheck())
	// Step 15's payload hash needs only the encoded items: it starts now,
	// on its own goroutine, so that it runs beside the serial rest of steps
	// 12 to 14 and then beside steps 18 to 30. Those are pure checks of the
	// parsed document, and the hash is compared only at step 15, after
	// them in check order, so the failure reported is still the first. A
	// step that fails first still waits for the hash, so that no work on
	// the document outlives the check.
	var sum string
	var hashing *sync.WaitGroup
	if isEnv && str0(in, "hash_algorithm") == "SHA-256" {
		hashing = new(sync.WaitGroup)
		hashing.Go(func() {
			h := sha256.New()
			enc.enc.WriteCompact(h, payload) // a hash never fails to write
			sum = b64u.Encode(h.Sum(nil))
		})
		defer hashing.Wait()
	}
	if md := payload.Get("metadata"); md != nil && len(canon.AppendCompact(nil, md)) > MaxMetadata {
		return fail(MalformedEnvelope, "payload.metadata exceeds 16 KiB")
	}
	if u := payload.Get("urm"); u.IsObject() {
		if md := u.Get("metadata"); md != nil && len(canon.AppendCompact(nil, md)) > MaxMetadata {
			return fail(MalformedEnvelope, "urm.metadata exceeds 16 KiB")
		}
	}
	if receipts.IsArray() {
		for i := range receipts.Items {
			if md := receipts.Items[i].Get("payload").Get("metadata"); md != nil {
				n := enc.receipts[i].metadata.End - enc.receipts[i].metadata.Start
				if enc.receipts[i].metadata.Start < 0 {
					n = len(canon.AppendCompact(nil, md))
				}
				if n > MaxMetadata {
					return fail(MalformedEnvelope, "receipts["+itoa(i)+"].payload.metadata exceeds 16 KiB")
				}
			}
		}
	}
	if chain.IsArray() {
		seen := make(map[string]bool, len(chain.Items))
		for i := range chain.Items {
			id, _ := chain.Items[i].StringOf("event_id")
			if seen[id] {
				return fail(MalformedEnvelope, "event_id "+quote(id)+" appears twice")
			}
			seen[id] = true
		}
	}

	// Step 13.
	if !didkey.IsValidFormat(agent) {
		return fail(InvalidDIDFormat, "agent_did is malformed")
	}
	res := &Result{AgentDID: agent, BundleID: str0(payload, "bundle_id"), Unsigned: !isEnv}
	if !isEnv {
		return b.contents(payload, enc, res)
	}
	signer := str0(in, "signer_did")
	res.SignerDID = signer
	// Step 14.
	if signer != agent {
		return fail(InvalidDIDFormat, "signer_did differs from payload.agent_did")
	}
	// Step 15. The payload hash, started after encoding, is compared once
	// steps 18 to 30 have run beside it: their verdict is used only once
	// the hash and the signature hold, so the failure reported is still
	// the first in check order. On two cores this takes the serial SHA-256
	// of the whole payload off the critical path.
	hash := str0(in, "payload_hash_b64u")
	if hashing == nil { // not SHA-256, so no hash was started
		return fail(HashMismatch, "payload hash does not match the payload")
	}
	later := b.contents(payload, enc, res)
	if hashing.Wait(); sum != hash {
		return fail(HashMismatch, "payload hash does not match the payload")
	}
	res.PayloadHash = hash
	// Steps 16 and 17.
	if c := signatureOK(keys, signer, str0(in, "signature_b64u"), []byte(hash)); c != "" {
		if c == InvalidDIDFormat {
			return fail(c, "no Ed25519 key can be extracted from signer_did")
		}
		return fail(c, "bundle signature does not verify")
	}
	return later
}

// contents runs steps 18 to 30 on a payload that passed steps 1 to 14,
// filling res; it returns res, or the first failure.
func (b *bundleCheck) contents(payload *canon.Value, enc *encodedBundle, res *Result) *Result {
	strict := b.opt.Strict
	agent := res.AgentDID
	chain := payload.Get("event_chain")
	receipts := payload.Get("receipts")
	atts := payload.Get("attestations")

	// Step 18.
	ctx := &chainContext{agentDID: agent, now: b.now, skew: b.opt.TTLSkew, strict: strict}
	if chain.IsArray() && len(chain.Items) > 0 {
		runID, root, r := checkEventChain(chain, b.opt.workers())
		if r != nil {
			return r
		}
		ctx.chainValid, ctx.runID = true, runID
		ctx.events = make(map[string]bool, len(chain.Items))
		for i := range chain.Items {
			ctx.events[str0(&chain.Items[i], "event_hash_b64u")] = true
		}
		res.EventChainValid, res.RunID, res.ChainRootHash = true, runID, root
		res.EventCount = len(chain.Items)
	}

	// Step 19.
	if claims := payload.Get("rate_limit_claims"); claims.IsArray() {
		res.RateLimitClaims = len(claims.Items)
		for i := range claims.Items {
			if code, reason := checkRateClaim(&claims.Items[i], ctx.runID); code != "" {
				return failPath(code, reason, "rate_limit_claims["+itoa(i)+"]")
			}
		}
	}

	// Steps 20 and 21: metadata extensions.
	if r := b.checkExtensions(payload, ctx); r != nil {
		return r
	}

	// Step 22: URM.
	if r := b.checkURM(payload, ctx, res); r != nil {
		return r
	}

	// Step 23: gateway receipts (non-fatal in the core).
	if receipts.IsArray() {
		b.checkGatewayReceipts(receipts, enc.receipts, ctx, res)
	}

	// Step 24: tool receipts (fatal).
	if trs := payload.Get("tool_receipts"); trs.IsArray() {
		res.ToolReceipts = len(trs.Items)
		type out struct{ code, reason string }
		outs := make([]out, len(trs.Items))
		parallel(len(trs.Items), b.opt.workers(), func(i int) {
			outs[i].code, outs[i].reason = checkToolReceipt(&trs.Items[i], ctx, enc.tools[i].payloadBytes())
		})
		for i, o := range outs {
			if o.code != "" {
				return failPath(o.code, "tool_receipts["+itoa(i)+"]: "+o.reason, "tool_receipts["+itoa(i)+"]")
			}
		}
	}

	// Steps 25 and 26: side-effect and human-approval receipts.
	for _, kind := range []struct {
		key, field string
		enum       []string
	}{
		{"side_effect_receipts", "effect_class", effectClasses},
		{"human_approval_receipts", "approval_type", approvalTypes},
	} {
		list := payload.Get(kind.key)
		if !list.IsArray() {
			continue
		}
		if kind.key == "side_effect_receipts" {
			res.SideEffects = len(list.Items)
		} else {
			res.HumanApprovals = len(list.Items)
		}
		for i := range list.Items {
			it := &list.Items[i]
			path := kind.key + "[" + itoa(i) + "]"
			if !it.IsObject() {
				return failPath(SchemaValidationFailed, path+" is not an object", path)
			}
			if v := it.Get("receipt_version"); !v.IsString() || v.Str != "1" {
				return failPath(UnknownVersion, path+" receipt_version must be \"1\"", path)
			}
			if str0(it, "hash_algorithm") != "SHA-256" {
				return failPath(UnknownHashAlgorithm, path+" hash_algorithm must be SHA-256", path)
			}
			if !contains(kind.enum, str0(it, kind.field)) {
				return failPath(SchemaValidationFailed, path+" "+kind.field+" is not allowed", path)
			}
			if str0(it, "agent_did") != agent {
				return failPath(ProofBundleAgentMismatch, path+" agent_did differs from the bundle's", path)
			}
		}
	}

	// Step 27: causal bindings.
	if r := checkCausal(payload, res); r != nil {
		return r
	}

	// Strict: every receipt an event names is present and every receipt
	// names an event (docs/verify.md).
	if strict {
		if r := checkBundleCompleteness(payload, ctx); r != nil {
			return r
		}
	}

	// Step 29: attestations (non-fatal).
	if atts.IsArray() {
		res.AttestationsValid = b.countAttestations(atts, agent)
	}

	// Step 30: tiers.
	res.Valid, res.Code, res.Reason = true, OK, "verified"
	allReceipts := res.Receipts > 0 && res.ReceiptsSigned == res.Receipts
	switch {
	case res.EventChainValid || allReceipts:
		res.TrustTier = "verified"
	default:
		res.TrustTier = "basic"
	}
	switch {
	case res.AttestationsValid > 0:
		res.ProofTier = "sandbox"
	case res.ReceiptsVerified > 0:
		res.ProofTier = "gateway"
	default:
		res.ProofTier = "self"
	}
	if res.Unsigned {
		res.Reason = "structurally valid unsigned payload (compat mode; strict mode refuses it)"
	}
	return res
}

// schemaView returns the envelope as the schema step sees it: receipts that
// carry receipt_type but no envelope_type (legacy diagnostics) are dropped.
func schemaView(in *canon.Value) *canon.Value {
	receipts := in.Get("payload").Get("receipts")
	if !receipts.IsArray() {
		return in
	}
	legacy := false
	for i := range receipts.Items {
		if isLegacyDiagnostic(&receipts.Items[i]) {
			legacy = true
			break
		}
	}
	if !legacy {
		return in
	}
	view := in.Clone()
	rs := view.Get("payload").Get("receipts")
	kept := rs.Items[:0]
	for _, it := range rs.Items {
		if !isLegacyDiagnostic(&it) {
			kept = append(kept, it)
		}
	}
	rs.Items = kept
	return &view
}

func isLegacyDiagnostic(r *canon.Value) bool {
	return r.IsObject() && r.Get("receipt_type") != nil && r.Get("envelope_type") == nil
}

// schemaCode maps the first schema error to the reference's code: causal
// binding fields have their own codes.
func schemaCode(path string) string {
	if strings.Contains(path, ".receipts[") && strings.Contains(path, ".binding.") {
		switch path[strings.LastIndex(path, ".")+1:] {
		case "phase":
			return CausalPhaseInvalid
		case "attribution_confidence", "attributionConfidence":
			return CausalConfidenceOutOfRange
		case "span_id", "spanId", "parent_span_id", "parentSpanId", "tool_span_id", "toolSpanId":
			return CausalBindingNormalization
		}
	}
	return SchemaValidationFailed
}

// encodedItem is one array item encoded on its own, with the ranges of its
// payload and payload.metadata members ({-1,-1} when absent).
type encodedItem struct {
	raw               []byte
	payload, metadata canon.Span
	code              string // receipts[] only: the envelope check's code, "" when it passed
}

func (it *encodedItem) payloadBytes() []byte {
	if it == nil || it.payload.Start < 0 {
		return nil
	}
	return it.raw[it.payload.Start:it.payload.End]
}

type encodedBundle struct {
	enc      canon.Encoder
	receipts []encodedItem // per receipts[] item
	tools    []encodedItem // per tool_receipts[] item
}

// encodeBundle encodes the items of event_chain, receipts and tool_receipts
// on up to workers goroutines and prepares an encoder that splices them
// into the payload's compact form. Each receipts[] item is also checked
// with checkReceipt, in the same pass.
func encodeBundle(payload *canon.Value, workers int, checkReceipt func(env *canon.Value, payload []byte) string) *encodedBundle {
	eb := &encodedBundle{}
	eb.enc.Pre = map[*canon.Value][][]byte{}
	for _, key := range [...]string{"event_chain", "receipts", "tool_receipts"} {
		arr := payload.Get(key)
		if !arr.IsArray() {
			continue
		}
		items := make([]encodedItem, len(arr.Items))
		// Items of one array are alike: the first one's size, with some
		// room and capped, is a good buffer size for the rest.
		hint := 2048
		encode := func(i int) {
			it := &arr.Items[i]
			var e canon.Encoder
			p := it.Get("payload")
			if p.IsObject() {
				e.Track = append(e.Track, p)
				if md := p.Get("metadata"); md != nil {
					e.Track = append(e.Track, md)
				}
			}
			items[i].raw = e.AppendCompact(make([]byte, 0, hint), it)
			items[i].payload, items[i].metadata = canon.Span{Start: -1, End: -1}, canon.Span{Start: -1, End: -1}
			if len(e.Spans) > 0 {
				items[i].payload = e.Spans[0]
			}
			if len(e.Spans) > 1 {
				items[i].metadata = e.Spans[1]
			}
			if key == "receipts" {
				items[i].code = checkReceipt(it, items[i].payloadBytes())
			}
		}
		if len(items) > 0 {
			encode(0)
			hint = min(len(items[0].raw)+len(items[0].raw)/8+64, 16<<10)
			parallel(len(items)-1, workers, func(i int) { encode(i + 1) })
		}
		raws := make([][]byte, len(items))
		for i := range items {
			raws[i] = items[i].raw
		}
		eb.enc.Pre[arr] = raws
		switch key {
		case "receipts":
			eb.receipts = items
		case "tool_receipts":
			eb.tools = items
		}
	}
	return eb
}

// receiptCheck returns the check of one gateway receipt's envelope (step
// 23 without the binding, which needs the event chain): encodeBundle runs
// it on each receipt right after encoding it, while its values and bytes
// are in cache, in the same pass. It is a pure function of the receipt, so
// running it before the earlier steps changes no verdict: its result is
// read only at step 23.
func (b *bundleCheck) receiptCheck() func(env *canon.Value, payload []byte) string {
	allow := newAllowSet(b.opt.Config.GatewayReceiptSigners)
	return func(env *canon.Value, payload []byte) string {
		if isLegacyDiagnostic(env) {
			return "SKIPPED"
		}
		code, _ := verifySignedReceiptAt(env, gatewayKind, allow, payload, b.opt.Strict, true)
		return code
	}
}

func (b *bundleCheck) checkGatewayReceipts(receipts *canon.Value, items []encodedItem, ctx *chainContext, res *Result) {
	outs := make([]receiptOutcome, len(receipts.Items))
	parallel(len(receipts.Items), b.opt.workers(), func(i int) {
		env := &receipts.Items[i]
		code := items[i].code
		if code == "SKIPPED" {
			outs[i].code = code
			return
		}
		o := receiptOutcome{code: code, signed: code == ""}
		payload := env.Get("payload")
		if bind := payload.Get("binding"); bind.IsObject() {
			eh := bind.Get("event_hash_b64u")
			o.hasEvent = eh.IsString() && eh.Str != ""
			o.bound = ctx.chainValid && str0(bind, "run_id") == ctx.runID && isB64u8(eh) && ctx.events[eh.Str]
		}
		o.tier = modelTier(payload)
		outs[i] = o
	})
	tiers := map[string]int{}
	for i, o := range outs {
		if o.code == "SKIPPED" {
			continue
		}
		res.Receipts++
		if o.hasEvent {
			res.BoundReceipts++
		}
		if o.signed {
			res.ReceiptsSigned++
			if o.bound {
				res.ReceiptsVerified++
			}
		} else if res.FirstReceiptFailed == "" {
			res.FirstReceiptFailed = "receipts[" + itoa(i) + "]: " + o.code
		}
		tiers[o.tier]++
	}
	res.receipts = outs
	res.ModelIdentityTier = lowestTier(tiers)
}

var tierRank = map[string]int{"unknown": 0, "closed_opaque": 1, "closed_provider_manifest": 2, "openweights_hashable": 3, "tee_measured": 4}

func lowestTier(tiers map[string]int) string {
	best, rank := "", math.MaxInt
	for t := range tiers {
		if r, ok := tierRank[t]; ok && r < rank {
			best, rank = t, r
		}
	}
	return best
}

// checkRateClaim runs step 19 on one claim.
func checkRateClaim(c *canon.Value, runID string) (code, reason string) {
	start, ok1 := parseLenientDate(str0(c, "window_start"))
	end, ok2 := parseLenientDate(str0(c, "window_end"))
	if !ok1 || !ok2 {
		return RateLimitClaimInconsistent, "rate-limit window does not parse"
	}
	if start.After(end) {
		return RateLimitWindowInvalid, "window_start is after window_end"
	}
	maxReq, obsReq := c.Get("max_requests"), c.Get("observed_requests")
	if !finiteNonNeg(maxReq) || !finiteNonNeg(obsReq) {
		return RateLimitClaimInconsistent, "request counts must be finite and non-negative"
	}
	if obsReq.Num > maxReq.Num {
		return RateLimitExceeded, "observed_requests exceeds max_requests"
	}
	for _, dir := range [...]string{"input", "output"} {
		mx, ob := c.Get("max_tokens_"+dir), c.Get("observed_tokens_"+dir)
		if mx == nil && ob == nil {
			continue
		}
		if mx == nil || ob == nil || !finiteNonNeg(mx) || !finiteNonNeg(ob) {
			return RateLimitClaimInconsistent, "max_tokens_" + dir + " and observed_tokens_" + dir + " go together"
		}
		if ob.Num > mx.Num {
			return RateLimitExceeded, "observed_tokens_" + dir + " exceeds max_tokens_" + dir
		}
	}
	if rid, ok := c.StringOf("run_id"); ok && runID != "" && rid != runID {
		return RateLimitClaimInconsistent, "claim run_id differs from the event chain's"
	}
	return "", ""
}

func finiteNonNeg(v *canon.Value) bool {
	return v.IsNumber() && !math.IsInf(v.Num, 0) && !math.IsNaN(v.Num) && v.Num >= 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
