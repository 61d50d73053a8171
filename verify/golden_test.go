package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/internal/testkit"
)

// The three goldens outside the manifest, with their expected outcomes.

func TestWebReceiptGolden(t *testing.T) {
	data := testkit.ReadFixture(t, "web_receipt_golden.v1.json")
	const signer = "did:key:z6Mkjxmoj3xapmSnsMM9SuAbnT8dxqRurBubCm89RPaWSzFW"
	out := Check(data, KindAuto, Options{Config: Config{WebReceiptSigners: []string{signer}}})
	if out.Kind != KindWebReceipt || out.Status != StatusPass || out.Verification.ProofTier != "witnessed_web" {
		t.Fatalf("allowlisted: %s %s %s (%+v)", out.Kind, out.Status, out.ReasonCode, out.Verification)
	}
	if out := Check(data, KindWebReceipt, Options{}); out.ReasonCode != DependencyNotConfigured {
		t.Errorf("empty allowlist: %s %s", out.Status, out.ReasonCode)
	}
	other := Options{Config: Config{WebReceiptSigners: []string{"did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"}}}
	if out := Check(data, KindWebReceipt, other); out.ReasonCode != ClaimNotFound {
		t.Errorf("other signer allowlisted: %s %s", out.Status, out.ReasonCode)
	}
}

func TestLogInclusionProofGolden(t *testing.T) {
	data := testkit.ReadFixture(t, "log_inclusion_proof_golden.v1.json")
	doc, err := canon.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	proof := doc.Get("inclusion_proof_v1")
	run := func(mutate func(p *canon.Value)) *Result {
		p := proof.Clone()
		mutate(&p)
		return LogInclusionProof(canon.AppendCompact(nil, &p), Options{})
	}
	if r := run(func(*canon.Value) {}); !r.Valid {
		t.Fatalf("golden: %s %s", r.Code, r.Reason)
	}
	if out := Check(data, KindAuto, Options{}); out.Status != StatusPass || out.Kind != KindLogInclusionProof {
		t.Errorf("wrapped golden: %s %s %s", out.Kind, out.Status, out.ReasonCode)
	}
	tests := []struct {
		name   string
		mutate func(p *canon.Value)
		want   string
	}{
		{"tampered path entry", func(p *canon.Value) {
			s := &p.Get("audit_path").Items[1]
			s.Str = flipFirst(s.Str)
		}, InclusionProofInvalid},
		{"tampered root signature", func(p *canon.Value) {
			s := p.Get("root_signature").Get("sig_b64u")
			s.Str = flipFirst(s.Str)
		}, SignatureInvalid},
		{"missing leaf_index", func(p *canon.Value) { p.Get("metadata").Delete("leaf_index") }, InclusionProofInvalid},
		{"leaf index out of range", func(p *canon.Value) { p.Get("metadata").Set("leaf_index", canon.NewNumber(5)) }, InclusionProofInvalid},
		{"short path", func(p *canon.Value) { a := p.Get("audit_path"); a.Items = a.Items[:2] }, InclusionProofInvalid},
		{"tampered leaf", func(p *canon.Value) { s := p.Get("leaf_hash_b64u"); s.Str = flipFirst(s.Str) }, InclusionProofInvalid},
		{"unknown field", func(p *canon.Value) { p.Set("extra", canon.NewBool(true)) }, SchemaValidationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := run(tt.mutate); r.Valid || r.Code != tt.want {
				t.Errorf("got %v %s (%s), want %s", r.Valid, r.Code, r.Reason, tt.want)
			}
		})
	}
}

func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// TestProtocolMGoldenVector follows the vector's own seven steps.
func TestProtocolMGoldenVector(t *testing.T) {
	data := testkit.ReadFixture(t, "protocol-m-golden-vector.v1.json")
	v, err := canon.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	env := v.Get("signature_envelope")
	// Steps 2-4: JCS of the envelope with an empty signature.
	jcs := canon.AppendJCS(nil, env)
	if want := str0(&v, "canonical_jcs"); string(jcs) != want {
		t.Fatalf("JCS:\n got %s\nwant %s", jcs, want)
	}
	// Step 5: the artifact hash.
	art := v.Get("test_artifact")
	if got := sha256hex(str0(art, "file_bytes_utf8")); got != str0(env.Get("hash"), "value") {
		t.Errorf("artifact hash %s", got)
	}
	// Step 6: key from DID.
	pub, err := didkey.PublicKey(str0(env, "did"))
	if err != nil || hex.EncodeToString(pub) != str0(&v, "public_key_hex") {
		t.Fatalf("public key %x, %v", pub, err)
	}
	// Step 7: signature, in both of the vector's encodings.
	sig, _ := base64.StdEncoding.DecodeString(str0(&v, "signature_base64"))
	if hex.EncodeToString(sig) != str0(&v, "signature_hex") || !didkey.NewKey(pub).Verify(jcs, sig) {
		t.Fatal("golden signature does not verify")
	}
	// The same document through the m1 verifier.
	signed := env.Clone()
	signed.Set("signature", canon.NewString(str0(&v, "signature_base64")))
	if r := CommitSig(canon.AppendCompact(nil, &signed), Options{}); !r.Valid {
		t.Fatalf("m1 verifier: %s %s", r.Code, r.Reason)
	}
	signed.Get("artifact").Set("size", canon.NewNumber(13))
	if r := CommitSig(canon.AppendCompact(nil, &signed), Options{}); r.Code != SignatureInvalid {
		t.Errorf("tampered artifact: %s", r.Code)
	}
	if !strings.HasPrefix(str0(env, "did"), "did:key:z6Mk") {
		t.Error("did prefix")
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
