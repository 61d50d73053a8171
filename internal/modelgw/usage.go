package modelgw

import (
	"bytes"

	"github.com/clawea/clawea/canon"
)

// usage is a provider's reported token usage.
type usage struct {
	in, out int64
	seen    bool
}

// readUsage takes the usage object of a response or stream event, where
// each API puts it: usage (chat completions, responses, messages),
// response.usage (a responses stream's response.completed) and
// message.usage (Anthropic's message_start). Input counts prompt_tokens or
// input_tokens, plus Anthropic's cache creation and cache read tokens;
// output counts completion_tokens or output_tokens. A later report
// replaces an earlier one per field (Anthropic streams the input first and
// the running output total last).
func (u *usage) read(v *canon.Value) {
	u.readFrom(v.Get("usage"), v.Get("response").Get("usage"), v.Get("message").Get("usage"))
}

// readMembers is read for a response of which only the members usage,
// response and message were picked out (canon.Members), as raw JSON.
func (u *usage) readMembers(raw [][]byte) {
	var objs [3]*canon.Value
	for i, r := range raw[:3] {
		if r == nil {
			continue
		}
		v, err := canon.Parse(r)
		if err != nil {
			continue
		}
		if i > 0 {
			objs[i] = v.Get("usage")
		} else {
			objs[i] = &v
		}
	}
	u.readFrom(objs[:]...)
}

func (u *usage) readFrom(objs ...*canon.Value) {
	for _, obj := range objs {
		if !obj.IsObject() {
			continue
		}
		in, inOK := num(obj, "prompt_tokens")
		if !inOK {
			in, inOK = num(obj, "input_tokens")
			if inOK {
				c1, _ := num(obj, "cache_creation_input_tokens")
				c2, _ := num(obj, "cache_read_input_tokens")
				in += c1 + c2
			}
		}
		out, outOK := num(obj, "completion_tokens")
		if !outOK {
			out, outOK = num(obj, "output_tokens")
		}
		if inOK && (in > 0 || !u.seen) {
			u.in = in
		}
		if outOK {
			u.out = out
		}
		u.seen = u.seen || inOK || outOK
	}
}

func num(v *canon.Value, key string) (int64, bool) {
	m := v.Get(key)
	if !m.IsNumber() || m.Num < 0 || m.Num > 1e12 {
		return 0, false
	}
	return int64(m.Num), true
}

// sseScanner follows a server-sent event stream as it passes through and
// reads usage from data lines that carry it. It keeps only the current
// partial line.
type sseScanner struct {
	line   []byte
	u      usage
	events int
}

var usageMark = []byte(`"usage"`)

func (s *sseScanner) feed(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(s.line)+len(p) <= 1<<20 { // a line longer than 1 MiB is skipped
				s.line = append(s.line, p...)
			}
			return
		}
		s.line = append(s.line, p[:i]...)
		s.handle(bytes.TrimSuffix(s.line, []byte{'\r'}))
		s.line = s.line[:0]
		p = p[i+1:]
	}
}

func (s *sseScanner) handle(line []byte) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return
	}
	s.events++
	if !bytes.Contains(data, usageMark) {
		return
	}
	v, err := canon.Parse(bytes.TrimSpace(data))
	if err != nil || !v.IsObject() {
		return
	}
	s.u.read(&v)
}
