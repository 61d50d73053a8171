package modelgw

import (
	"fmt"
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/receipt"
)

func TestLLMEventEncoding(t *testing.T) {
	for _, e := range []llmEvent{
		{ReceiptID: "r", Provider: "p", Model: "m\u2028", API: "chat.completions", RequestHash: "a", ResponseHash: "b", UpstreamStatus: 200, Outcome: "OK"},
		{ReceiptID: "r", Provider: "p<>", Model: "m", API: "messages", Stream: true, RequestHash: "a", ResponseHash: "b", Outcome: "UPSTREAM_TIMEOUT",
			TokensInput: 1 << 40, TokensOutput: 3, Nonce: "n\"", Redactions: 2},
		{ReceiptID: "r", Provider: "p", Model: "m", API: "responses", Stream: true, RequestHash: "a", ResponseHash: "b", UpstreamStatus: 200, Outcome: "STREAM_LIMIT_EXCEEDED",
			StreamLimit: "max_stream_bytes", StreamLimitMax: 64 << 20, StreamBytes: 1<<26 - 3},
	} {
		want, _ := canon.Marshal(e)
		if got := e.AppendCompact(nil); string(got) != string(want) {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
}

// TestIdentityHashCache checks that the cached model identity hash is the
// identity's own, for the first calls and past the cache's bound.
func TestIdentityHashCache(t *testing.T) {
	g := &Gateway{}
	for i := range maxIdentityHashes + 10 {
		for range 2 {
			mi := receipt.NewModelIdentity("openai", fmt.Sprintf("gpt-%d\u2028", i))
			if got, want := g.identityHash(mi), mi.Hash(); got != want || want == "" {
				t.Fatalf("model %d: cached %q, identity's %q", i, got, want)
			}
		}
	}
	n := 0
	g.idHashes.Range(func(any, any) bool { n++; return true })
	if n != maxIdentityHashes {
		t.Errorf("%d hashes cached, want %d", n, maxIdentityHashes)
	}
}
