package modelgw

import (
	"bytes"
	"testing"

	"github.com/clawea/clawea/canon"
)

// boundaryRef says whether a stream ends at an event boundary, the slow
// way: nothing, or a blank line ("\n" or "\r\n") ending it.
func boundaryRef(s []byte) bool {
	if len(s) == 0 {
		return true
	}
	if s[len(s)-1] != '\n' {
		return false
	}
	rest := bytes.TrimSuffix(s[:len(s)-1], []byte{'\r'})
	return len(rest) == 0 || rest[len(rest)-1] == '\n'
}

// FuzzStreamCut feeds arbitrary streams in arbitrary pieces to what cuts a
// stream at max_stream_bytes: the boundary follower must agree with the
// slow definition however the stream was split, and the cut must be the
// longest prefix within the limit that ends at a boundary.
func FuzzStreamCut(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: {\"b\":2}\n\n"), uint8(5), uint16(20))
	f.Add([]byte("event: x\r\ndata: y\r\n\r\ndata: z\r\n\r\n"), uint8(1), uint16(17))
	f.Add([]byte("\n\n\r\n\n"), uint8(0), uint16(3))
	f.Add([]byte("data: partial"), uint8(3), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, step uint8, limit uint16) {
		var tl sseTail
		st := int(step)%7 + 1
		for i := 0; i < len(data); i += st {
			piece := data[i:min(i+st, len(data))]
			// The cut this piece would get under a limit inside it.
			left := min(int(limit)%(len(piece)+1), len(piece))
			k := tl.eventEnd(piece[:left])
			prefix := data[:i]
			best := -1
			for j := left; j >= 1; j-- {
				if boundaryRef(append(append([]byte(nil), prefix...), piece[:j]...)) {
					best = j
					break
				}
			}
			if k != best {
				t.Fatalf("eventEnd(%q after %q) = %d, want %d", piece[:left], prefix, k, best)
			}
			tl.add(piece)
			if tl.total != int64(i+len(piece)) {
				t.Fatalf("total %d", tl.total)
			}
			if got, want := tl.boundary(), boundaryRef(data[:i+len(piece)]); got != want {
				t.Fatalf("boundary after %q: %v, want %v", data[:i+len(piece)], got, want)
			}
			if got, want := tl.lineEnded(), i+len(piece) == 0 || data[i+len(piece)-1] == '\n'; got != want {
				t.Fatalf("lineEnded %v", got)
			}
		}
	})
}

// FuzzOutputCap feeds request bodies to the output reservation: after the
// cap is written, every member the API reads is a positive whole number
// no larger than what was reserved, and a cap the request named within
// the reservation is left as it was.
func FuzzOutputCap(f *testing.F) {
	f.Add([]byte(`{"model":"m","max_tokens":5}`), uint8(0), uint16(10))
	f.Add([]byte(`{"max_completion_tokens":5,"max_tokens":-1}`), uint8(0), uint16(3))
	f.Add([]byte(`{"max_output_tokens":"12"}`), uint8(1), uint16(7))
	f.Add([]byte(`{"max_tokens":0.5}`), uint8(2), uint16(1))
	f.Add([]byte(`{"max_tokens":null,"max_completion_tokens":1e300}`), uint8(3), uint16(9))
	f.Fuzz(func(t *testing.T, raw []byte, which uint8, limit uint16) {
		body, err := canon.Parse(raw)
		if err != nil || !body.IsObject() {
			return
		}
		a := []api{apiChat, apiResponses, apiMessages, apiChat}[which%4]
		p := &Provider{Name: "openai"}
		if which%4 == 3 {
			p = &Provider{Name: "local"}
		}
		want := outputWanted(&body, a)
		res := int64(limit)%1000 + 1
		if want > 0 && want < res {
			res = want
		}
		before := canon.AppendCompact(nil, &body)
		changed := clampOutput(&body, a, p, res)
		fields, _ := outputFields(a, p)
		named := 0
		for _, fl := range fields {
			m := body.Get(fl)
			if m == nil {
				continue
			}
			named++
			if n, ok := tokenCount(m); !ok || n > res {
				t.Fatalf("%s = %s after capping at %d", fl, canon.AppendCompact(nil, m), res)
			}
		}
		if named == 0 {
			t.Fatalf("no cap written: %s", canon.AppendCompact(nil, &body))
		}
		if want > 0 && want <= res && changed {
			t.Fatalf("a cap within the reservation was rewritten: %s -> %s", before, canon.AppendCompact(nil, &body))
		}
		if !changed && !bytes.Equal(before, canon.AppendCompact(nil, &body)) {
			t.Fatalf("changed body reported unchanged")
		}
	})
}
