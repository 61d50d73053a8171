package verify

import (
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
)

// FutureSkew is how far in the future an export or aggregate bundle may be
// issued (the reference's 300 s).
const FutureSkew = 300 * time.Second

// attestationKinds are the export bundle's attestation arrays, in manifest
// order, with the allowlist and verifier of each.
var attestationKinds = []struct {
	key   string
	kind  signedKind
	allow func(*Config) []string
}{
	{"execution_attestation_envelopes", signedKind{"execution_attestation", executionAttestationEnvelopeSchema}, func(c *Config) []string { return c.ExecutionAttestationSigners }},
	{"derivation_attestation_envelopes", signedKind{"derivation_attestation", derivationAttestationEnvelopeSchema}, func(c *Config) []string { return c.DerivationAttestationSigners }},
	{"audit_result_attestation_envelopes", signedKind{"audit_result_attestation", auditResultAttestationEnvelopeSchema}, func(c *Config) []string { return c.AuditResultAttestationSigners }},
}

// ExportBundle verifies an offline audit package (§6.8), including the
// proof bundle and attestations inside it. The nested proof bundle result
// is returned in Result fields; Check applies the strict receipt rule.
func ExportBundle(data []byte, opt Options) *Result {
	v, r := parseInput(data, &opt)
	if r != nil {
		return r
	}
	res, _ := exportBundleValue(unwrap(&v, "bundle"), opt)
	return res
}

// exportBundleValue returns the export verdict and the nested bundle's
// core result (nil when verification stopped before it).
func exportBundleValue(v *canon.Value, opt Options) (*Result, *Result) {
	now := opt.now()
	if err := validate(exportBundleSchema, v, ""); err != nil {
		return failPath(SchemaValidationFailed, "schema: "+err.Error(), err.Path), nil
	}
	issuer := str0(v, "issuer_did")
	if !didkey.IsValidFormat(issuer) {
		return fail(InvalidDIDFormat, "issuer_did is malformed"), nil
	}
	created, ok1 := parseLenientDate(str0(v, "created_at"))
	issued, ok2 := parseLenientDate(str0(v, "issued_at"))
	if !ok1 || !ok2 {
		return fail(MalformedEnvelope, "created_at or issued_at does not parse"), nil
	}
	if created.After(issued) {
		return fail(CausalClockContradiction, "created_at is after issued_at"), nil
	}
	if issued.After(now.Add(FutureSkew)) {
		return fail(FutureTimestampPoisoning, "issued_at is in the future"), nil
	}
	if exp, ok := v.StringOf("expires_at"); ok {
		t, ok := parseLenientDate(exp)
		if !ok {
			return fail(MalformedEnvelope, "expires_at does not parse"), nil
		}
		if now.After(t.Add(opt.TTLSkew)) {
			return fail(ExpiredTTL, "export bundle expired at "+exp), nil
		}
	}
	artifacts := v.Get("artifacts")
	expected := []struct {
		path string
		art  *canon.Value
	}{{"artifacts/proof_bundle_envelope.json", artifacts.Get("proof_bundle_envelope")}}
	for _, k := range attestationKinds {
		if list := artifacts.Get(k.key); list.IsArray() {
			for i := range list.Items {
				expected = append(expected, struct {
					path string
					art  *canon.Value
				}{"artifacts/" + k.key + "/" + itoa(i) + ".json", &list.Items[i]})
			}
		}
	}
	if r := checkManifest(v.Get("manifest"), expected); r != nil {
		return r, nil
	}
	signable := canon.Value{Kind: canon.Object}
	for _, k := range [...]string{"export_version", "export_id", "created_at", "issuer_did", "manifest", "artifacts", "issued_at", "expires_at", "metadata"} {
		if m := v.Get(k); m != nil {
			signable.Members = append(signable.Members, canon.Member{Key: k, Value: *m})
		}
	}
	hash := str0(v, "bundle_hash_b64u")
	if b64u.SHA256(canon.AppendJCS(nil, &signable)) != hash {
		return fail(HashMismatch, "bundle_hash_b64u does not match the bundle"), nil
	}
	if c := signatureOK(keys, issuer, str0(v, "signature_b64u"), []byte(hash)); c != "" {
		return fail(c, "export bundle signature does not verify"), nil
	}
	pb := artifacts.Get("proof_bundle_envelope")
	inner := ProofBundleValue(pb, opt)
	if !inner.Valid {
		r := fail(inner.Code, "proof bundle: "+inner.Reason)
		r.Path = inner.Path
		return r, inner
	}
	for _, k := range attestationKinds {
		list := artifacts.Get(k.key)
		if !list.IsArray() {
			continue
		}
		allow := newAllowSet(k.allow(&opt.Config))
		for i := range list.Items {
			att := &list.Items[i]
			where := k.key + "[" + itoa(i) + "]"
			if code, reason := verifySignedReceipt(att, k.kind, allow, nil, opt.Strict); code != "" {
				return failPath(code, where+": "+reason, where), inner
			}
			payload := att.Get("payload")
			if cl := payload.Get("clawlogs"); cl.IsObject() {
				if proof := cl.Get("inclusion_proof"); proof != nil {
					if r := verifyInclusionProof(proof); !r.Valid {
						return failPath(r.Code, where+" inclusion proof: "+r.Reason, where), inner
					}
					if leh, ok := cl.StringOf("log_entry_hash_b64u"); ok && leh != str0(proof, "leaf_hash_b64u") {
						return failPath(InclusionProofInvalid, where+": log entry hash is not the proven leaf", where), inner
					}
				}
			}
			if r := crossCheck(payload, pb, inner, where); r != nil {
				return r, inner
			}
		}
	}
	res := *inner
	res.Valid, res.Code, res.Reason = true, OK, "verified"
	res.SignerDID = issuer
	res.PayloadHash = hash
	return &res, inner
}

// crossCheck ties an attestation to the exported proof bundle.
func crossCheck(payload, pb *canon.Value, inner *Result, where string) *Result {
	bundleHash := str0(pb, "payload_hash_b64u")
	for _, m := range [...]*canon.Value{payload, payload.Get("execution")} {
		if h, ok := m.StringOf("proof_bundle_hash_b64u"); ok && h != bundleHash {
			return failPath(HashMismatch, where+": proof_bundle_hash_b64u is not the exported bundle's", where)
		}
	}
	if rid, ok := payload.StringOf("run_id"); ok && rid != "" && inner.RunID != "" && rid != inner.RunID {
		return failPath(HashMismatch, where+": run_id is not the exported bundle's", where)
	}
	if ad, ok := payload.StringOf("agent_did"); ok && ad != inner.AgentDID {
		return failPath(HashMismatch, where+": agent_did is not the exported bundle's", where)
	}
	return nil
}

// checkManifest compares manifest entries with the artifacts: no duplicate
// paths, the expected count and paths, then each entry's hash (SHA-256 of
// the artifact's JCS form), size and content type.
func checkManifest(manifest *canon.Value, expected []struct {
	path string
	art  *canon.Value
}) *Result {
	entries := manifest.Get("entries").Items
	seen := map[string]bool{}
	for i := range entries {
		p := str0(&entries[i], "path")
		if seen[p] {
			return fail(MalformedEnvelope, "manifest lists "+p+" twice")
		}
		seen[p] = true
	}
	if len(entries) != len(expected) {
		return fail(MissingRequiredField, "manifest has "+itoa(len(entries))+" entries for "+itoa(len(expected))+" artifacts")
	}
	byPath := map[string]*canon.Value{}
	for i := range entries {
		byPath[str0(&entries[i], "path")] = &entries[i]
	}
	for _, e := range expected {
		entry := byPath[e.path]
		if entry == nil {
			return fail(MissingRequiredField, "manifest has no entry for "+e.path)
		}
		jcs := canon.AppendJCS(nil, e.art)
		if b64u.SHA256(jcs) != str0(entry, "sha256_b64u") {
			return fail(HashMismatch, "manifest hash of "+e.path+" does not match")
		}
		if sz := entry.Get("size_bytes"); !sz.IsNumber() || sz.Num != float64(len(jcs)) {
			return fail(HashMismatch, "manifest size of "+e.path+" does not match")
		}
		if str0(entry, "content_type") != "application/json" {
			return fail(HashMismatch, "manifest content_type of "+e.path+" must be application/json")
		}
	}
	return nil
}

// unwrap returns the value under key when v is a wrapper object such as a
// test vector {vector_version, description, bundle}.
func unwrap(v *canon.Value, key string) *canon.Value {
	if inner := v.Get(key); inner.IsObject() && v.Get("envelope_version") == nil && v.Get("export_version") == nil {
		return inner
	}
	return v
}
