package modelgw

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/clawea/clawea/canon"
)

// FuzzUpstream feeds provider answers to what reads them: usage from a
// whole JSON answer, the event-stream scanner in arbitrary chunks (its
// result must not depend on how the stream was cut), and the splice that
// adds the receipt to a JSON object (its output must stay valid JSON with
// the provider's members intact).
func FuzzUpstream(f *testing.F) {
	f.Add([]byte(`{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4}}`), uint8(3))
	f.Add([]byte("data: {\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":2}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n"), uint8(7))
	f.Add([]byte("data: {\"response\":{\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}}\r\n\r\ndata: [DONE]\n\n"), uint8(1))
	f.Add([]byte(`{}`), uint8(0))
	f.Add([]byte(`{"message":{"usage":{"input_tokens":4,"cache_creation_input_tokens":1}},"usage":{"output_tokens":6},"us\u0061ge":{"output_tokens":7}}`), uint8(0))
	f.Add([]byte(` { "a" : [1,2,{"usage":null}] } `), uint8(2))
	env := []byte(`{"envelope_version":"1"}`)
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		parts, isObject := canon.Members(data, "usage", "response", "message")
		if v, err := canon.Parse(data); err == nil {
			var u usage
			u.read(&v)
			if u.in < 0 || u.out < 0 {
				t.Fatalf("negative usage %+v", u)
			}
			if isObject != v.IsObject() {
				t.Fatalf("Members says object %v, Parse %v", isObject, v.IsObject())
			}
			if isObject {
				// The answer path reads only the members that carry usage.
				var um usage
				um.readMembers(parts)
				if um != u {
					t.Fatalf("usage from members %+v, from the whole answer %+v", um, u)
				}
			}
			if v.IsObject() {
				out := withReceipt(data, env)
				var m map[string]json.RawMessage
				if err := json.Unmarshal(out, &m); err != nil {
					t.Fatalf("splice broke JSON: %v\n%s", err, out)
				}
				if !bytes.Equal(m["_receipt_envelope"], env) {
					t.Fatalf("receipt not last member: %s", out)
				}
			}
		}
		var whole, pieces sseScanner
		whole.feed(data)
		step := int(cut)%16 + 1
		for i := 0; i < len(data); i += step {
			pieces.feed(data[i:min(i+step, len(data))])
		}
		if whole.u != pieces.u || whole.events != pieces.events {
			t.Fatalf("chunking changed the result: %+v vs %+v", whole.u, pieces.u)
		}
	})
}
