package verify

import (
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
)

// AggregateBundle verifies a signed aggregate of member bundles (§6.10).
func AggregateBundle(data []byte, opt Options) *Result {
	v, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	return aggregateValue(unwrap(&v, "envelope"), opt)
}

func aggregateValue(in *canon.Value, opt Options) *Result {
	now := opt.now()
	skew := opt.TTLSkew
	if skew == 0 {
		skew = FutureSkew
	}
	if !(in.IsObject() && in.Get("envelope_version") != nil && in.Get("payload") != nil && in.Get("signature_b64u") != nil) {
		if opt.Strict {
			return fail(UnsignedPayload, "strict mode refuses an unsigned aggregate payload")
		}
		return fail(MalformedEnvelope, "an aggregate bundle must be a signed envelope")
	}
	if !hasKeys(in, envelopeRequired...) {
		return fail(MalformedEnvelope, "envelope is missing required fields")
	}
	if v := in.Get("envelope_version"); !v.IsString() || v.Str != "1" {
		return fail(UnknownEnvelopeVersion, "envelope_version must be \"1\"")
	}
	if t := str0(in, "envelope_type"); t != "aggregate_bundle" {
		return fail(UnknownEnvelopeType, "envelope_type must be aggregate_bundle")
	}
	if str0(in, "algorithm") != "Ed25519" {
		return fail(UnknownAlgorithm, "algorithm must be Ed25519")
	}
	if ha := str0(in, "hash_algorithm"); ha != "SHA-256" && (ha != "BLAKE3" || opt.Strict) {
		return fail(UnknownHashAlgorithm, "hash_algorithm "+quote(ha)+" is not supported")
	}
	if err := validate(aggregateBundleEnvelopeSchema, in, ""); err != nil {
		return failPath(SchemaValidationFailed, "schema: "+err.Error(), err.Path)
	}
	payload := in.Get("payload")
	signer, issuer := str0(in, "signer_did"), str0(payload, "issuer_did")
	if !didkey.IsValidFormat(signer) || !didkey.IsValidFormat(issuer) {
		return fail(InvalidDIDFormat, "signer_did or issuer_did is malformed")
	}
	if signer != issuer {
		return fail(AggregateSignerMismatch, "signer_did differs from payload.issuer_did")
	}
	created, ok1 := parseLenientDate(str0(payload, "created_at"))
	issued, ok2 := parseLenientDate(str0(in, "issued_at"))
	if !ok1 || !ok2 {
		return fail(MalformedEnvelope, "created_at or issued_at does not parse")
	}
	if created.After(issued) {
		return fail(CausalClockContradiction, "created_at is after issued_at")
	}
	if issued.After(now.Add(FutureSkew)) {
		return fail(FutureTimestampPoisoning, "issued_at is in the future")
	}
	var aggExpiry string
	for _, holder := range [...]*canon.Value{in, payload} {
		if exp, ok := holder.StringOf("expires_at"); ok {
			t, ok := parseLenientDate(exp)
			if !ok {
				return fail(MalformedEnvelope, "expires_at does not parse")
			}
			if now.After(t.Add(skew)) {
				return fail(ExpiredTTL, "aggregate expired at "+exp+" (verification time "+now.UTC().Format("2006-01-02T15:04:05Z")+")")
			}
			if aggExpiry == "" || exp < aggExpiry {
				aggExpiry = exp
			}
		}
	}
	hash := str0(in, "payload_hash_b64u")
	if str0(in, "hash_algorithm") != "SHA-256" || b64u.SHA256(canon.AppendCompact(nil, payload)) != hash {
		return fail(HashMismatch, "payload hash does not match the payload")
	}
	if c := signatureOK(keys, signer, str0(in, "signature_b64u"), []byte(hash)); c != "" {
		return fail(c, "aggregate signature does not verify")
	}
	if r := checkPinned(opt.Config.AggregateSigners, signer, "aggregate", false); r != nil {
		return r
	}

	members := payload.Get("artifacts").Get("member_bundles").Items
	memberHashes := make([]string, len(members))
	for i := range members {
		memberHashes[i] = b64u.SHA256(canon.AppendJCS(nil, &members[i]))
	}
	for i := 1; i < len(memberHashes); i++ {
		switch c := strings.Compare(memberHashes[i-1], memberHashes[i]); {
		case c > 0:
			return fail(UnsortedMemberArray, "member_bundles are not sorted by JCS hash")
		case c == 0:
			return fail(AggregateDuplicateMember, "member_bundles holds the same bundle twice")
		}
	}
	expected := make([]struct {
		path string
		art  *canon.Value
	}, len(members))
	for i := range members {
		expected[i].path = "artifacts/member_bundles/" + itoa(i) + ".json"
		expected[i].art = &members[i]
	}
	if r := checkManifest(payload.Get("manifest"), expected); r != nil {
		return r
	}

	type claimSum struct {
		maxReq, obsReq               float64
		maxIn, obsIn, maxOut, obsOut *float64
	}
	sums := map[string]*claimSum{}
	var sumOrder []string
	bundleIDs, runIDs, agents := map[string]bool{}, map[string]bool{}, map[string]bool{}
	receiptsByID := map[string]*canon.Value{}
	parts := make([]aggregatePart, len(members))
	memberOpt := opt
	for i := range members {
		m := &members[i]
		where := "member_bundles[" + itoa(i) + "]"
		pb := m
		if m.Get("export_version") != nil {
			pb = m.Get("artifacts").Get("proof_bundle_envelope")
		}
		mp := pb.Get("payload")
		if chain := mp.Get("event_chain"); chain.IsArray() {
			for j := 1; j < len(chain.Items); j++ {
				if str0(&chain.Items[j], "run_id") != str0(&chain.Items[0], "run_id") {
					return failPath(InconsistentRunID, where+" mixes run ids", where)
				}
			}
		}
		var mr *Result
		if m.Get("export_version") != nil {
			mr, _ = exportBundleValue(m, memberOpt)
		} else {
			mr = ProofBundleValue(m, memberOpt)
		}
		if mr.Valid {
			if code, reason := receiptRule(mr, &opt); code != "" {
				mr = fail(code, reason)
			}
		}
		if !mr.Valid {
			return failPath(AggregateMemberInvalid, where+": "+mr.Code+": "+mr.Reason, where)
		}
		if trs := mp.Get("receipts"); trs.IsArray() {
			for j := range trs.Items {
				rp := trs.Items[j].Get("payload")
				id := str0(rp, "receipt_id")
				if prev, ok := receiptsByID[id]; ok && id != "" && !sameJSON(prev, rp) {
					return failPath("CAUSAL_AGGREGATE_RECEIPT_REPLAY", where+" reuses receipt_id "+quote(id)+" with other content", where)
				}
				receiptsByID[id] = rp
			}
		}
		parts[i] = memberPart(mp, mr.RunID)
		if mr.AgentDID == issuer {
			return failPath(IdentityConflict, where+": the aggregate issuer is this member's agent", where)
		}
		if exp, ok := pb.StringOf("expires_at"); ok && (aggExpiry == "" || aggExpiry > exp) {
			return failPath(AggregateTTLExceedsMember, where+" expires before the aggregate", where)
		}
		if bundleIDs[mr.BundleID] {
			return failPath(AggregateDuplicateBundleID, where+" repeats bundle_id "+quote(mr.BundleID), where)
		}
		bundleIDs[mr.BundleID] = true
		if mr.RunID != "" {
			if runIDs[mr.RunID] {
				return failPath(AggregateDuplicateRunID, where+" repeats run_id "+quote(mr.RunID), where)
			}
			runIDs[mr.RunID] = true
		}
		agents[mr.AgentDID] = true
		if claims := mp.Get("rate_limit_claims"); claims.IsArray() {
			for j := range claims.Items {
				c := &claims.Items[j]
				key := strings.Join([]string{mr.AgentDID, str0(c, "scope"), str0(c, "scope_key"), str0(c, "window_start"), str0(c, "window_end")}, "|")
				s := sums[key]
				if s == nil {
					s = &claimSum{maxReq: c.Get("max_requests").Num}
					if v := c.Get("max_tokens_input"); v != nil {
						s.maxIn, s.obsIn = ptr(v.Num), ptr(0)
					}
					if v := c.Get("max_tokens_output"); v != nil {
						s.maxOut, s.obsOut = ptr(v.Num), ptr(0)
					}
					sums[key] = s
					sumOrder = append(sumOrder, key)
				} else if s.maxReq != c.Get("max_requests").Num || !sameLimit(s.maxIn, c.Get("max_tokens_input")) || !sameLimit(s.maxOut, c.Get("max_tokens_output")) {
					return failPath(RateLimitClaimInconsistent, where+" states other limits for "+key, where)
				}
				s.obsReq += c.Get("observed_requests").Num
				if v := c.Get("observed_tokens_input"); v != nil && s.obsIn != nil {
					*s.obsIn += v.Num
				}
				if v := c.Get("observed_tokens_output"); v != nil && s.obsOut != nil {
					*s.obsOut += v.Num
				}
			}
		}
	}
	for _, key := range sumOrder {
		s := sums[key]
		if s.obsReq > s.maxReq || s.obsIn != nil && *s.obsIn > *s.maxIn || s.obsOut != nil && *s.obsOut > *s.maxOut {
			return fail(RateLimitExceeded, "summed usage exceeds the limit for "+key)
		}
	}
	fs := payload.Get("metadata").Get("fleet_summary")
	if fs.Get("total_members").Num != float64(len(members)) ||
		fs.Get("unique_agents").Num != float64(len(agents)) ||
		fs.Get("total_runs").Num != float64(len(runIDs)) {
		return fail(FleetSummaryMismatch, "fleet_summary does not match the members")
	}
	if opt.Strict {
		if r := checkAggregateCompleteness(parts); r != nil {
			return r
		}
	}
	res := pass()
	res.SignerDID = signer
	res.AgentDID = issuer
	res.PayloadHash = hash
	res.members = len(members)
	return res
}

func ptr(f float64) *float64 { return &f }

func sameLimit(have *float64, v *canon.Value) bool {
	if have == nil || v == nil {
		return have == nil && v == nil
	}
	return *have == v.Num
}
