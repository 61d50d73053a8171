package verify

import (
	"slices"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// unverifiedMetadata lists bundle metadata extensions the reference checks
// (step 20) and clawea does not yet: compat mode passes over them, strict
// mode refuses them.
var unverifiedMetadata = []string{"policy_binding", "data_handling", "runner_measurement", "runner_attestation_receipt", "reviewer_signoff_receipts"}

// unverifiedEvidence lists payload arrays clawea checks only for shape.
var unverifiedEvidence = []string{"vir_receipts", "coverage_attestations", "binary_semantic_evidence_attestations", "delegation_receipts"}

// checkExtensions runs steps 20 and 21.
func (b *bundleCheck) checkExtensions(payload *canon.Value, ctx *chainContext) *Result {
	md := payload.Get("metadata")
	if b.opt.Strict {
		for _, k := range unverifiedMetadata {
			if md.Get(k) != nil {
				return fail(UnsupportedEvidence, "metadata."+k+" cannot be verified by clawea; strict mode refuses it")
			}
		}
		for _, k := range unverifiedEvidence {
			if payload.Get(k) != nil {
				return fail(UnsupportedEvidence, k+" cannot be verified by clawea; strict mode refuses it")
			}
		}
		if web := payload.Get("web_receipts"); web.IsArray() {
			allow := newAllowSet(b.opt.Config.WebReceiptSigners)
			for i := range web.Items {
				if code, reason := verifySignedReceipt(&web.Items[i], webKind, allow, nil, true); code != "" {
					return failPath(code, "web_receipts["+itoa(i)+"]: "+reason, "web_receipts["+itoa(i)+"]")
				}
			}
		}
	}
	if !md.IsObject() {
		return nil
	}
	var packRoot string
	if pack := md.Get("prompt_pack"); pack != nil {
		if err := validate(promptPackSchema, pack, "metadata.prompt_pack"); err != nil {
			return failPath(SchemaValidationFailed, err.Error(), err.Path)
		}
		packRoot = PromptPackRoot(pack)
		if packRoot != str0(pack, "prompt_root_hash_b64u") {
			return fail(HashMismatch, "prompt_pack root hash does not match its entries")
		}
	}
	if rep := md.Get("system_prompt_report"); rep != nil {
		if err := validate(systemPromptReportSchema, rep, "metadata.system_prompt_report"); err != nil {
			return failPath(SchemaValidationFailed, err.Error(), err.Path)
		}
		chain := payload.Get("event_chain")
		if !ctx.chainValid || !chain.IsArray() {
			return fail(MalformedEnvelope, "system_prompt_report needs an event chain")
		}
		if str0(rep, "run_id") != ctx.runID || str0(rep, "agent_did") != ctx.agentDID {
			return fail(PromptCommitmentMismatch, "system_prompt_report names another run or agent")
		}
		if packRoot != "" && str0(rep, "prompt_root_hash_b64u") != "" && str0(rep, "prompt_root_hash_b64u") != packRoot {
			return fail(PromptCommitmentMismatch, "system_prompt_report and prompt_pack disagree on the prompt root")
		}
		byID := make(map[string]*canon.Value, len(chain.Items))
		for i := range chain.Items {
			byID[str0(&chain.Items[i], "event_id")] = &chain.Items[i]
		}
		calls := rep.Get("calls")
		for i := range calls.Items {
			c := &calls.Items[i]
			ev := byID[str0(c, "event_id")]
			if ev == nil || str0(ev, "event_type") != "llm_call" {
				return fail(PromptCommitmentMismatch, "system_prompt_report call "+itoa(i)+" does not name an llm_call event")
			}
			if h, ok := c.StringOf("event_hash_b64u"); ok && h != str0(ev, "event_hash_b64u") {
				return fail(PromptCommitmentMismatch, "system_prompt_report call "+itoa(i)+" has the wrong event hash")
			}
		}
	}
	return nil
}

// PromptPackRoot recomputes prompt_root_hash_b64u: SHA-256 of the compact
// form of {"prompt_pack_version":"1","entries":[{entry_id,
// content_hash_b64u}...]} with entries sorted by entry_id.
func PromptPackRoot(pack *canon.Value) string {
	entries := pack.Get("entries")
	type entry struct{ id, hash string }
	list := make([]entry, 0, len(entries.Items))
	for i := range entries.Items {
		list = append(list, entry{str0(&entries.Items[i], "entry_id"), str0(&entries.Items[i], "content_hash_b64u")})
	}
	// The reference sorts with localeCompare; for the identifiers producers
	// use this is case-insensitive order with code-unit order as tiebreak.
	slices.SortStableFunc(list, func(a, b entry) int {
		if c := strings.Compare(strings.ToLower(a.id), strings.ToLower(b.id)); c != 0 {
			return c
		}
		return canon.CompareUTF16(a.id, b.id)
	})
	root := canon.Value{Kind: canon.Object, Members: []canon.Member{
		{Key: "prompt_pack_version", Value: canon.NewString("1")},
		{Key: "entries", Value: canon.Value{Kind: canon.Array, Items: []canon.Value{}}},
	}}
	arr := &root.Members[1].Value
	for _, e := range list {
		arr.Items = append(arr.Items, canon.Value{Kind: canon.Object, Members: []canon.Member{
			{Key: "entry_id", Value: canon.NewString(e.id)},
			{Key: "content_hash_b64u", Value: canon.NewString(e.hash)},
		}})
	}
	return b64u.SHA256(canon.AppendCompact(nil, &root))
}

// checkURM runs step 22.
func (b *bundleCheck) checkURM(payload *canon.Value, ctx *chainContext, res *Result) *Result {
	ref := payload.Get("urm")
	if !ref.IsObject() {
		return nil
	}
	if b.opt.URM == nil {
		return fail(URMMissing, "the bundle references URM "+quote(str0(ref, "urm_id"))+" but no URM document was supplied")
	}
	doc, err := canon.Parse(b.opt.URM)
	if err != nil {
		return fail(SchemaValidationFailed, "URM document: "+err.Error())
	}
	if err := validate(urmSchema, &doc, "urm"); err != nil {
		return failPath(SchemaValidationFailed, "URM document: "+err.Error(), err.Path)
	}
	switch {
	case str0(&doc, "urm_id") != str0(ref, "urm_id"):
		return fail(URMMismatch, "URM urm_id differs from the bundle's reference")
	case str0(&doc, "agent_did") != ctx.agentDID:
		return fail(URMMismatch, "URM agent_did differs from the bundle's")
	case ctx.chainValid && str0(&doc, "run_id") != ctx.runID:
		return fail(URMMismatch, "URM run_id differs from the event chain's")
	}
	if root, ok := doc.StringOf("event_chain_root_hash_b64u"); ok && res.ChainRootHash != "" && root != res.ChainRootHash {
		return fail(URMMismatch, "URM event_chain_root_hash_b64u differs from the chain's first event hash")
	}
	if b64u.SHA256(canon.AppendCompact(nil, &doc)) != str0(ref, "resource_hash_b64u") {
		return fail(HashMismatch, "URM document hash differs from urm.resource_hash_b64u")
	}
	return nil
}

// countAttestations runs step 29 and returns how many attestations verify.
func (b *bundleCheck) countAttestations(atts *canon.Value, agent string) int {
	allow := newAllowSet(b.opt.Config.AttestationSigners)
	n := 0
	for i := range atts.Items {
		a := &atts.Items[i]
		if !a.IsObject() || !allow[str0(a, "attester_did")] || str0(a, "subject_did") != agent {
			continue
		}
		if exp, ok := a.StringOf("expires_at"); ok {
			t, ok := parseLenientDate(exp)
			if !ok || b.now.After(t.Add(b.opt.TTLSkew)) {
				continue
			}
		}
		if AttestationSignatureOK(a) {
			n++
		}
	}
	return n
}

// AttestationSignatureOK verifies an attestation reference: Ed25519 by
// attester_did over JCS of the object with signature_b64u set to "".
func AttestationSignatureOK(a *canon.Value) bool {
	sigText := str0(a, "signature_b64u")
	sig, err := b64u.Decode(sigText)
	if err != nil || len(sig) != 64 {
		return false
	}
	c := a.Clone()
	c.Set("signature_b64u", canon.NewString(""))
	return signatureOK(keys, str0(a, "attester_did"), sigText, canon.AppendJCS(nil, &c)) == ""
}
