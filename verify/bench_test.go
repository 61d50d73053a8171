package verify

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

// benchBundle builds a signed proof bundle with n events and n bound
// gateway receipts, each receipt like the reference gateway's.
func benchBundle(tb testing.TB, n int) ([]byte, Options) {
	tb.Helper()
	agent, _ := signer.FromSeed(testkit.Seed(1))
	gw, _ := signer.FromSeed(testkit.Seed(100))
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	run := "run_bench"
	var events, receipts []canon.Value
	prev := canon.Value{Kind: canon.Null}
	for i := 0; i < n; i++ {
		ts := envelope.FormatTime(t0.Add(time.Duration(i) * time.Millisecond))
		ev := canon.Value{Kind: canon.Object, Members: []canon.Member{
			{Key: "event_id", Value: canon.NewString(fmt.Sprintf("evt_%05d", i))},
			{Key: "run_id", Value: canon.NewString(run)},
			{Key: "event_type", Value: canon.NewString("llm_call")},
			{Key: "timestamp", Value: canon.NewString(ts)},
			{Key: "payload_hash_b64u", Value: canon.NewString(b64u.SHA256([]byte(ts)))},
			{Key: "prev_hash_b64u", Value: prev},
		}}
		h := EventHash(&ev)
		ev.Members = append(ev.Members, canon.Member{Key: "event_hash_b64u", Value: canon.NewString(h)})
		events = append(events, ev)
		prev = canon.NewString(h)
		payload, err := canon.ValueOf(map[string]any{}) // placeholder replaced below
		if err != nil {
			tb.Fatal(err)
		}
		payload = mustValue(tb, fmt.Sprintf(`{"receipt_version":"1","receipt_id":"rcpt_%05d","gateway_id":%q,"provider":"openai","model":"gpt-4o-mini","request_hash_b64u":%q,"response_hash_b64u":%q,"tokens_input":%d,"tokens_output":%d,"latency_ms":%d,"timestamp":%q,"binding":{"run_id":%q,"event_hash_b64u":%q,"nonce":"nonce_%05d","policy_hash":%q,"token_scope_hash_b64u":%q},"metadata":{"model_identity":{"model_identity_version":"1","tier":"closed_opaque","model":{"provider":"openai","name":"gpt-4o-mini"}},"model_identity_hash_b64u":%q}}`,
			i, gw.DID(), b64u.SHA256([]byte("req"+ts)), b64u.SHA256([]byte("resp"+ts)), 100+i, 200+i, 300, ts, run, h, i,
			b64u.SHA256([]byte("policy")), b64u.SHA256([]byte("scope")), b64u.SHA256([]byte("mi"))))
		env, err := envelope.Sign(gw, envelope.TypeGateway, payload, envelope.Options{IssuedAt: t0})
		if err != nil {
			tb.Fatal(err)
		}
		ev2, err := env.Value()
		if err != nil {
			tb.Fatal(err)
		}
		receipts = append(receipts, ev2)
	}
	p := canon.Value{Kind: canon.Object, Members: []canon.Member{
		{Key: "bundle_version", Value: canon.NewString("1")},
		{Key: "bundle_id", Value: canon.NewString("bundle_bench")},
		{Key: "agent_did", Value: canon.NewString(agent.DID())},
		{Key: "event_chain", Value: canon.Value{Kind: canon.Array, Items: events}},
		{Key: "receipts", Value: canon.Value{Kind: canon.Array, Items: receipts}},
	}}
	env, err := envelope.Sign(agent, envelope.TypeBundle, p, envelope.Options{IssuedAt: t0})
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := env.JSON()
	if err != nil {
		tb.Fatal(err)
	}
	return raw, Options{Config: Config{GatewayReceiptSigners: []string{gw.DID()}}, Now: t0, Strict: true}
}

func mustValue(tb testing.TB, s string) canon.Value {
	v, err := canon.Parse([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestBenchBundleVerifies(t *testing.T) {
	raw, opt := benchBundle(t, 50)
	out := Check(raw, KindProofBundle, opt)
	if out.Status != StatusPass || out.Verification.ReceiptsVerified != 50 {
		t.Fatalf("%s %s %s %+v", out.Status, out.ReasonCode, out.Reason, out.Verification)
	}
}

// TestStepOrderWithSpeculation checks that the steps run while the payload
// hash is computed do not change which failure is reported: a payload whose
// hash no longer matches fails with HASH_MISMATCH (step 15) even when its
// event chain (step 18) or a receipt is broken too, and a bundle whose only
// fault is a later step reports that step.
func TestStepOrderWithSpeculation(t *testing.T) {
	raw, opt := benchBundle(t, 40)
	for _, c := range []struct {
		name, old, new, code string
	}{
		{"event and payload hash", `"event_id":"evt_00007"`, `"event_id":"evt_0007x"`, HashMismatch},
		{"receipt and payload hash", `"tokens_input":105`, `"tokens_input":106`, HashMismatch},
		// The payload hash starts right after encoding, beside the rest
		// of step 12: a repeated event id is still reported first.
		{"repeated event id and payload hash", `"event_id":"evt_00007"`, `"event_id":"evt_00006"`, MalformedEnvelope},
		// Step 10 runs beside steps 11 to 30; its verdict still comes
		// first (each of these also breaks the payload hash).
		{"receipt schema and payload hash", `"tokens_input":105`, `"tokens_input":"105"`, SchemaValidationFailed},
		{"bundle schema and bundle version", `"bundle_version":"1"`, `"bundle_version":1`, SchemaValidationFailed},
		{"untouched", `"bundle_id":"bundle_bench"`, `"bundle_id":"bundle_bench"`, ""},
	} {
		in := strings.Replace(string(raw), c.old, c.new, 1)
		if in == string(raw) && c.code != "" {
			t.Fatalf("%s: nothing replaced", c.name)
		}
		out := Check([]byte(in), KindProofBundle, opt)
		want := c.code
		if want == "" {
			want = OK
		}
		if out.ReasonCode != want {
			t.Errorf("%s: got %s (%s), want %s", c.name, out.ReasonCode, out.Reason, want)
		}
	}
	// Re-sign a payload with a broken event: the hash and signature now
	// hold, so step 18 reports the event.
	v, err := canon.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := v.Get("payload")
	ev := &p.Get("event_chain").Items[7]
	for i := range ev.Members {
		if ev.Members[i].Key == "event_type" {
			ev.Members[i].Value = canon.NewString("tool_call")
		}
	}
	agent, _ := signer.FromSeed(testkit.Seed(1))
	env, err := envelope.Sign(agent, envelope.TypeBundle, *p, envelope.Options{IssuedAt: opt.Now})
	if err != nil {
		t.Fatal(err)
	}
	resigned, err := env.JSON()
	if err != nil {
		t.Fatal(err)
	}
	out := Check(resigned, KindProofBundle, opt)
	if out.ReasonCode != HashMismatch || !strings.Contains(out.Reason, "event hash") {
		t.Errorf("re-signed broken event: got %s (%s)", out.ReasonCode, out.Reason)
	}
	// The same with another signature: steps 16 and 17 come first.
	env.Signature = env.Signature[:10] + flip(env.Signature[10]) + env.Signature[11:]
	badSig, err := env.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if out := Check(badSig, KindProofBundle, opt); out.ReasonCode != SignatureInvalid {
		t.Errorf("bad signature and broken event: got %s (%s)", out.ReasonCode, out.Reason)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// BenchmarkVerifyBundle1000 verifies a bundle of 1,000 bound gateway
// receipts end to end (parse, schema, hashes, 1,001 signatures, chain).
// Run with -cpu 1,2 to see the per-core rate and the speed-up; the
// receipts/s metric counts gateway receipts verified per second.
//
//	go test ./verify -run '^$' -bench VerifyBundle1000 -cpu 1,2 -benchtime 20x
func BenchmarkVerifyBundle1000(b *testing.B) {
	raw, opt := benchBundle(b, 1000)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out := Check(raw, KindProofBundle, opt)
		if out.Status != StatusPass {
			b.Fatal(out.ReasonCode, out.Reason)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkEd25519Verify is the floor: one signature check per receipt,
// with crypto/ed25519 and with a did:key's precomputed table (which a
// signer gets after 64 signatures; see didkey/table.go).
func BenchmarkEd25519Verify(b *testing.B) {
	benchSignatures(b, false)
}

// BenchmarkEd25519VerifyParallel shows how signature checks alone scale
// with cores on this machine: the ceiling for any speed-up of the bundle.
func BenchmarkEd25519VerifyParallel(b *testing.B) {
	benchSignatures(b, true)
}

func benchSignatures(b *testing.B, parallel bool) {
	k, _ := signer.FromSeed(testkit.Seed(100))
	msg := []byte(b64u.SHA256([]byte("x")))
	sig, _ := k.Sign(msg)
	table := didkey.NewKey(k.Public())
	table.Precompute()
	for _, c := range []struct {
		name   string
		verify func() bool
	}{
		{"stdlib", func() bool { return ed25519.Verify(k.Public(), msg, sig) }},
		{"table", func() bool { return table.Verify(msg, sig) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			if !parallel {
				for i := 0; i < b.N; i++ {
					if !c.verify() {
						b.Fatal("verify")
					}
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !c.verify() {
						b.Error("verify")
					}
				}
			})
		})
	}
}

// BenchmarkReadDocument1000 is the front of a check alone on the bundle of
// BenchmarkVerifyBundle1000: the parse, with the duplicate-key scan beside
// it.
//
//	go test ./verify -run '^$' -bench ReadDocument1000 -cpu 1,2 -benchtime 40x
func BenchmarkReadDocument1000(b *testing.B) {
	raw, opt := benchBundle(b, 1000)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := readDocument(raw, &opt); err != nil {
			b.Fatal(err.msg)
		}
	}
}
