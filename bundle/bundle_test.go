package bundle

import (
	"testing"

	"github.com/clawea/clawea/canon"
)

// TestEventEncodersMatchMarshal: the direct event encoders write what
// canon.Marshal writes.
func TestEventEncodersMatchMarshal(t *testing.T) {
	prev := "prev\u2028hash"
	for _, e := range []Event{
		{EventID: "evt_1", RunID: "run", EventType: "llm_call", Timestamp: "2026-11-22T00:00:00.000Z", PayloadHash: "p", EventHash: "h"},
		{EventID: "e\"2", RunID: "r<>", EventType: "t\u0001", Timestamp: "x", PayloadHash: "p", PrevHash: &prev, EventHash: "h2"},
	} {
		want, _ := canon.Marshal(e)
		if got := e.AppendCompact(nil); string(got) != string(want) {
			t.Errorf("event:\n got %s\nwant %s", got, want)
		}
		hw, _ := canon.Marshal(header{e.EventID, e.RunID, e.EventType, e.Timestamp, e.PayloadHash, e.PrevHash})
		if got := e.appendHeader(nil); string(got) != string(hw) {
			t.Errorf("header:\n got %s\nwant %s", got, hw)
		}
	}
}
