package envelope

import (
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

// TestWorkedExample reproduces PROTOCOL.md §1.5: the gateway receipt inside
// proof_bundle_pass hashes to Q93B… and re-signing it with the conformance
// gateway seed gives the fixture's signature byte for byte.
func TestWorkedExample(t *testing.T) {
	data := testkit.ReadFixture(t, "protocol-conformance/proof_bundle_pass.v1.json")
	bundle, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	rcpt := &bundle.Get("payload").Get("receipts").Items[0]
	payload := rcpt.Get("payload")
	compact := canon.AppendCompact(nil, payload)
	if len(compact) != 499 {
		t.Errorf("payload is %d bytes, want 499", len(compact))
	}
	if h := PayloadHash(payload, false); h != "Q93BAJydvhGEdSO1FOx5FI4Dcw0dT7EKJP2IrZmdXtQ" {
		t.Errorf("hash = %s", h)
	}
	if h := PayloadHash(payload, true); h == "Q93BAJydvhGEdSO1FOx5FI4Dcw0dT7EKJP2IrZmdXtQ" {
		t.Error("JCS hash equals the compact hash; the fixture relies on them differing")
	}
	if err := Verify(rcpt, false); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	gw, _ := signer.FromSeed(testkit.Seed(100))
	env, err := Sign(gw, TypeGateway, payload, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := rcpt.StringOf("signature_b64u")
	if env.Signature != want {
		t.Errorf("signature = %s, want %s", env.Signature, want)
	}
	if err := Verify(bundle.Get("payload").Get("receipts").Items[0].Get("payload"), false); err == nil {
		t.Error("a bare payload verified as an envelope")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k, _ := signer.Generate()
	type payload struct {
		Z string  `json:"z"`
		A float64 `json:"a"`
		S string  `json:"s"`
	}
	env, err := Sign(k, "test", payload{Z: "<&>\u2028", A: 0.1, S: "x"}, Options{IssuedAt: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), `{"envelope_version":"1","envelope_type":"test","payload":{"z":"<&>`+"\u2028"+`","a":0.1,"s":"x"},"payload_hash_b64u"`) {
		t.Errorf("key order or escaping: %s", raw)
	}
	v, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(&v, false); err != nil {
		t.Fatal(err)
	}
	pretty, _ := env.Indented()
	v2, _ := Parse(pretty)
	if err := Verify(&v2, false); err != nil {
		t.Fatalf("indented copy: %v", err)
	}
	v.Get("payload").Set("a", canon.NewNumber(0.2))
	if err := Verify(&v, false); err != ErrHashMismatch {
		t.Fatalf("tampered: %v", err)
	}
}

// TestJSONMatchesMarshal: the direct encoder writes what canon.Marshal
// writes, with and without the optional members.
func TestJSONMatchesMarshal(t *testing.T) {
	k, _ := signer.FromSeed(testkit.Seed(3))
	at := time.Date(2026, 11, 22, 1, 2, 3, 4e6, time.UTC)
	for i, opt := range []Options{{IssuedAt: at}, {IssuedAt: at, ExpiresAt: at.Add(time.Hour)}, {IssuedAt: at, Version: "2"}} {
		env, err := Sign(k, TypeTool, map[string]any{"a": "x\u2028y", "n": 1e21, "list": []any{1, "two", nil}}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			env.CoSign(k, "approver", at)
			env.CoSign(k, "auditor", at)
		}
		got, _ := env.JSON()
		want, _ := canon.Marshal(env)
		if string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
