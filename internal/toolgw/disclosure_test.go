package toolgw_test

import (
	"strings"
	"testing"
)

// TestLargeArgumentsCommittedNotDisclosed: a tool receipt discloses each
// argument up to 4 KiB; a larger one (a message body) is committed to only,
// so a bundle of many large sends stays small.
func TestLargeArgumentsCommittedNotDisclosed(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(egressPolicy)))
	body := strings.Repeat("b", 100<<10)
	for i := 0; i < 20; i++ {
		if got := egressCode(t, e, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "big", "body": body, "subject": "s-small"}); got != "" {
			t.Fatalf("send %d: %s", i, got)
		}
	}
	raw, v := e.finish(jobID)
	if v.ToolReceipts != 20 {
		t.Fatalf("%d tool receipts", v.ToolReceipts)
	}
	if len(raw) > 400<<10 {
		t.Fatalf("the bundle of 20 sends of 100 KiB is %d bytes: bodies were disclosed", len(raw))
	}
	if !strings.Contains(string(raw), "s-small") {
		t.Fatal("small arguments are no longer disclosed")
	}
}
