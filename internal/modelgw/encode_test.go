package modelgw

import (
	"testing"

	"github.com/clawea/clawea/canon"
)

func TestLLMEventEncoding(t *testing.T) {
	for _, e := range []llmEvent{
		{ReceiptID: "r", Provider: "p", Model: "m\u2028", API: "chat.completions", RequestHash: "a", ResponseHash: "b", UpstreamStatus: 200, Outcome: "OK"},
		{ReceiptID: "r", Provider: "p<>", Model: "m", API: "messages", Stream: true, RequestHash: "a", ResponseHash: "b", Outcome: "UPSTREAM_TIMEOUT",
			TokensInput: 1 << 40, TokensOutput: 3, Nonce: "n\"", Redactions: 2},
	} {
		want, _ := canon.Marshal(e)
		if got := e.AppendCompact(nil); string(got) != string(want) {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
}
