package verify

import (
	"testing"
	"time"

	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/testkit"
)

// Seeds come from the conformance fixtures when the shared folder is
// present, plus a generated bundle, so the fuzzer starts from real shapes.
func fuzzSeeds(f *testing.F) {
	raw, _ := benchBundle(f, 3)
	f.Add(raw)
	for _, rel := range []string{
		"protocol-conformance/proof_bundle_pass.v1.json",
		"protocol-conformance/proof_bundle_pass_mixed_receipts.v1.json",
		"protocol-conformance/r48-r49-v02/proof_bundle/v2_tool_receipt_cosig_valid.v1.json",
		"protocol-conformance/r48-r49-v02/proof_bundle/v2_tool_receipt_sd_type_confusion.v1.json",
		"protocol-conformance/cpl-v2-rate-limit/proof_bundle_rate_limit_pass.v1.json",
		"protocol-conformance/r48-r49-v02/aggregate_bundle/aggregate_pass_golden.v1.json",
		"export_bundle_golden.v1.json",
		"log_inclusion_proof_golden.v1.json",
		"web_receipt_golden.v1.json",
		"protocol-conformance/commit_sig_pass.v1.json",
	} {
		f.Add(testkit.ReadFixture(f, rel))
	}
}

// FuzzVerify feeds arbitrary bytes to every verifier through Check: it must
// never panic, never hang, and never call malformed input a PASS without a
// signature having been checked (unsigned payloads pass only in compat
// mode and are flagged).
//
//	go test ./verify -run '^$' -fuzz FuzzVerify -fuzztime 60s
func FuzzVerify(f *testing.F) {
	fuzzSeeds(f)
	at := time.Date(2026, 2, 17, 22, 38, 41, 0, time.UTC)
	cfg := Config{
		GatewayReceiptSigners:        []string{"did:key:z6MkfF4ykuxdK3Cea9xDqWgLLgMBvxcypy6Tv1K45Eahxy3m"},
		DerivationAttestationSigners: []string{"did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, strict := range []bool{false, true} {
			out := Check(data, KindAuto, Options{Config: cfg, Now: at, Strict: strict, Workers: 2})
			switch out.Status {
			case StatusPass:
				if out.Verification == nil {
					t.Fatal("PASS without a verification result")
				}
				if strict && out.Verification.Unsigned {
					t.Fatal("strict mode passed an unsigned payload")
				}
			case StatusFail, StatusError:
				if out.ReasonCode == "" || out.ReasonCode == OK {
					t.Fatalf("%s without a reason code", out.Status)
				}
			default:
				t.Fatalf("status %q", out.Status)
			}
		}
	})
}

// FuzzEnvelope fuzzes the envelope parser and the basic sign/verify
// recipe: parsing must not panic, and a verified envelope must keep
// verifying after a canonical round trip.
//
//	go test ./verify -run '^$' -fuzz FuzzEnvelope -fuzztime 60s
func FuzzEnvelope(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := envelope.Parse(data)
		if err != nil {
			return
		}
		if envelope.Verify(&v, false) == nil {
			raw, _ := v.MarshalJSON()
			v2, err := envelope.Parse(raw)
			if err != nil || envelope.Verify(&v2, false) != nil {
				t.Fatalf("verified envelope stopped verifying after a round trip: %v", err)
			}
		}
	})
}
