package verify

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLargeChecksOnHelpers verifies bundles large enough for the helper
// pool, intact and broken at several steps, several at once, and checks
// that each verdict is the one-goroutine verifier's, that the helpers did
// take work, and that they leave once no large check runs.
func TestLargeChecksOnHelpers(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	raw, opt := benchBundle(t, 400)
	if len(raw) < largeInput {
		t.Fatalf("bundle of %d bytes is too small for the pool", len(raw))
	}
	inputs := []string{string(raw)}
	for _, m := range [][2]string{
		{`"event_id":"evt_00007"`, `"event_id":"evt_00006"`}, // step 12, with a broken payload hash
		{`"tokens_input":105`, `"tokens_input":"105"`},       // step 10's schema, beside the others
		{`"tokens_input":105`, `"tokens_input":106`},         // payload hash
		{`"bundle_version":"1"`, `"bundle_version":1`},
		{`"agent_did":"did:key:z`, `"agent_did":"did:key:x`}, // step 13, before the hash is compared
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
	before := helpers.spawned.Load()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, in := range inputs {
				if got := Check([]byte(in), KindProofBundle, opt).ReasonCode; got != want[i] {
					t.Errorf("input %d: %s on the helpers, %s on one goroutine", i, got, want[i])
				}
			}
		}()
	}
	wg.Wait()
	if helpers.spawned.Load() == before {
		t.Error("no task was given to the helpers")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		helpers.mu.Lock()
		n := helpers.helpers
		helpers.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d helpers still running after the checks ended", n)
		}
		time.Sleep(time.Millisecond)
	}
}
