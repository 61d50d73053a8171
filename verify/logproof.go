package verify

import (
	"crypto/sha256"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// LogInclusionProof verifies a Receipt Transparency inclusion proof (§6.9):
// the root is signed by the proof's own did:key and the audit path folds
// the leaf to the root. The tree hashes plain SHA-256(left‖right) with no
// RFC 6962 prefixes and duplicates the last node of odd levels.
func LogInclusionProof(data []byte, opt Options) *Result {
	v, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	res := verifyInclusionProof(&v)
	if res.Valid && opt.Strict {
		// The reference trusts any root signer; strict mode needs the signer
		// in the attestation allowlist when one is configured.
		if allow := opt.Config.AttestationSigners; len(allow) > 0 && !contains(allow, str0(v.Get("root_signature"), "signer_did")) {
			return fail(ClaimNotFound, "log root signer is not in the attestation allowlist")
		}
	}
	return res
}

func verifyInclusionProof(v *canon.Value) *Result {
	if err := validate(logInclusionProofSchema, v, ""); err != nil {
		return failPath(SchemaValidationFailed, err.Error(), err.Path)
	}
	if _, ok := parseLenientDate(str0(v, "root_published_at")); !ok {
		return fail(InclusionProofInvalid, "root_published_at does not parse")
	}
	size := v.Get("tree_size")
	idx := v.Get("metadata").Get("leaf_index")
	if !idx.IsInteger() || idx.Num < 0 || !size.IsInteger() || idx.Num >= size.Num {
		return fail(InclusionProofInvalid, "metadata.leaf_index must be an integer below tree_size")
	}
	path := v.Get("audit_path").Items
	if len(path) != pathLength(int64(size.Num)) {
		return fail(InclusionProofInvalid, "audit_path length does not match tree_size")
	}
	sig := v.Get("root_signature")
	root := str0(v, "root_hash_b64u")
	if c := signatureOK(keys, str0(sig, "signer_did"), str0(sig, "sig_b64u"), []byte(root)); c != "" {
		return fail(c, "root signature does not verify")
	}
	cur, err := b64u.Decode(str0(v, "leaf_hash_b64u"))
	if err != nil {
		return fail(InclusionProofInvalid, "leaf hash is not base64url")
	}
	index := int64(idx.Num)
	for i := range path {
		sib, err := b64u.Decode(path[i].Str)
		if err != nil {
			return fail(InclusionProofInvalid, "audit path entry is not base64url")
		}
		h := sha256.New()
		if index%2 == 0 {
			h.Write(cur)
			h.Write(sib)
		} else {
			h.Write(sib)
			h.Write(cur)
		}
		cur = h.Sum(nil)
		index /= 2
	}
	if b64u.Encode(cur) != root {
		return fail(InclusionProofInvalid, "audit path does not lead to the signed root")
	}
	res := pass()
	res.SignerDID = str0(sig, "signer_did")
	return res
}

// pathLength counts the halvings n -> ceil(n/2) until one node is left.
func pathLength(n int64) int {
	steps := 0
	for n > 1 {
		n = (n + 1) / 2
		steps++
	}
	return steps
}
