package verify

import (
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/clawea/clawea/canon"
)

// TestLargeChecksInParallel verifies bundles large enough for the parallel
// paths (the duplicate-key scan beside the parse, the schema walk and the
// payload hash beside the later steps, receipts on several goroutines),
// intact and broken at several steps, several at once, and checks that each
// verdict is the one-goroutine verifier's.
func TestLargeChecksInParallel(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	raw, opt := benchBundle(t, 400)
	if len(raw) < largeInput {
		t.Fatalf("bundle of %d bytes is too small for the parallel paths", len(raw))
	}
	inputs := []string{string(raw)}
	for _, m := range [][2]string{
		{`"event_id":"evt_00007"`, `"event_id":"evt_00006"`}, // step 12, with a broken payload hash
		{`"tokens_input":105`, `"tokens_input":"105"`},       // step 10's schema, beside the others
		{`"tokens_input":105`, `"tokens_input":106`},         // payload hash
		{`"bundle_version":"1"`, `"bundle_version":1`},
		{`"agent_did":"did:key:z`, `"agent_did":"did:key:x`},                        // step 13, before the hash is compared
		{`"receipt_id":"rcpt_00009"`, `"receipt_id":"rcpt_00009","receipt_id":"x"`}, // duplicate key, found beside the parse
		{`"receipt_id":"rcpt_00009"`, `"receipt_id":"rcpt_00009",`},                 // malformed JSON
	} {
		in := strings.Replace(string(raw), m[0], m[1], 1)
		if in == string(raw) {
			t.Fatalf("%s: nothing replaced", m[0])
		}
		inputs = append(inputs, in)
	}
	one := opt
	one.Workers = 1
	want := make([]string, len(inputs))
	for i, in := range inputs {
		want[i] = Check([]byte(in), KindProofBundle, one).ReasonCode
	}
	if want[0] != OK {
		t.Fatalf("intact bundle: %s", want[0])
	}
	for i, code := range []string{DuplicateJSONKey, InputInvalid} {
		if got := want[len(want)-2+i]; got != code {
			t.Fatalf("input %d: %s, want %s", len(want)-2+i, got, code)
		}
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, in := range inputs {
				if got := Check([]byte(in), KindProofBundle, opt).ReasonCode; got != want[i] {
					t.Errorf("input %d: %s on several goroutines, %s on one", i, got, want[i])
				}
			}
		}()
	}
	wg.Wait()
}

// TestNoWorkOutlivesCheck fails a large bundle at step 12, after the payload
// hash has started on its own goroutine, and then overwrites the parsed
// document: under -race this reports any goroutine of the check still
// reading it.
func TestNoWorkOutlivesCheck(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	raw, opt := benchBundle(t, 400)
	in := strings.Replace(string(raw), `"event_id":"evt_00007"`, `"event_id":"evt_00006"`, 1)
	for range 5 {
		v, err := canon.Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if r := ProofBundleValue(&v, opt); r.Code != MalformedEnvelope {
			t.Fatalf("got %s (%s), want %s", r.Code, r.Reason, MalformedEnvelope)
		}
		p := v.Get("payload")
		for _, list := range []string{"event_chain", "receipts"} {
			items := p.Get(list).Items
			for i := range items {
				items[i] = canon.Value{Kind: canon.Null}
			}
		}
		for i := range p.Members {
			p.Members[i] = canon.Member{Key: "x", Value: canon.Value{Kind: canon.Null}}
		}
	}
}
