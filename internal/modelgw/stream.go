package modelgw

import (
	"strconv"

	"github.com/clawea/clawea/canon"
)

// streamCut describes a stream the gateway ended at one of its limits:
// which (max_stream_duration, max_stream_bytes), its value (milliseconds
// or bytes), and how many of the provider's bytes were relayed. It goes
// into the llm_call event; the receipt's outcome is STREAM_LIMIT_EXCEEDED.
type streamCut struct {
	limit string
	max   int64
	bytes int64
}

func (s *streamCut) message() string {
	if s.limit == "max_stream_bytes" {
		return "the stream was cut at the gateway's limit of " + strconv.FormatInt(s.max, 10) + " bytes"
	}
	return "the stream was cut at the gateway's limit of " + strconv.FormatInt(s.max, 10) + " ms"
}

// appendEvent writes the server-sent error event that ends a cut stream.
// One shape serves every API's SDK: Anthropic's (event "error",
// {"type":"error","error":{"type","message"}}), OpenAI's chat stream (a
// data object with "error") and the Responses stream (type "error" with
// code and message).
func (s *streamCut) appendEvent(b []byte) []byte {
	msg := s.message()
	b = append(b, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\""+CodeStreamLimit+"\",\"code\":\""+CodeStreamLimit+"\",\"message\":"...)
	b = canon.AppendString(b, msg)
	b = append(b, "},\"code\":\""+CodeStreamLimit+"\",\"message\":"...)
	b = canon.AppendString(b, msg)
	return append(b, "}\n\n"...)
}

// sseTail follows where the relayed bytes of an event stream end: the
// last three bytes and the count. Lines end with "\n" or "\r\n"; an event
// ends with a blank line.
type sseTail struct {
	last  [3]byte
	n     int // bytes held in last (the most recent at the end)
	total int64
}

func (t *sseTail) add(p []byte) {
	t.total += int64(len(p))
	for _, c := range p[max(len(p)-3, 0):] {
		if t.n == 3 {
			t.last[0], t.last[1] = t.last[1], t.last[2]
			t.n = 2
		}
		t.last[t.n] = c
		t.n++
	}
}

// at returns the byte at index i of the relayed bytes followed by p (i <
// 0 reaches back into the relayed ones); start is true when i is before
// the stream's first byte.
func (t *sseTail) at(p []byte, i int) (c byte, start, ok bool) {
	if i >= 0 {
		return p[i], false, true
	}
	if int64(-i) > t.total {
		return 0, true, false
	}
	if -i > t.n {
		return 0, false, false
	}
	return t.last[t.n+i], false, true
}

// blankAt reports whether p[i] (a '\n') ends a blank line: the line
// before it, past an optional '\r', ended too, or the stream started.
func (t *sseTail) blankAt(p []byte, i int) bool {
	j := i - 1
	c, start, ok := t.at(p, j)
	if ok && c == '\r' {
		j--
		c, start, ok = t.at(p, j)
	}
	return start || ok && c == '\n'
}

// eventEnd is the length of the longest prefix of p that ends at an event
// boundary, or -1 when none does.
func (t *sseTail) eventEnd(p []byte) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '\n' && t.blankAt(p, i) {
			return i + 1
		}
	}
	return -1
}

// boundary reports whether the relayed bytes end at an event boundary
// (nothing relayed counts).
func (t *sseTail) boundary() bool {
	if t.total == 0 {
		return true
	}
	return t.last[t.n-1] == '\n' && t.blankAt(nil, -1)
}

// lineEnded reports whether the relayed bytes end a line.
func (t *sseTail) lineEnded() bool { return t.total == 0 || t.last[t.n-1] == '\n' }
