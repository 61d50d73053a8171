package verify

import (
	"sync"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// EventHash computes event_hash_b64u over the fixed six-key header
// {event_id, run_id, event_type, timestamp, payload_hash_b64u,
// prev_hash_b64u} of an event object, in exactly that order.
func EventHash(ev *canon.Value) string {
	var buf [512]byte
	return b64u.SHA256(appendEventHeader(buf[:0], ev))
}

func appendEventHeader(dst []byte, ev *canon.Value) []byte {
	dst = append(dst, '{')
	first := true
	for _, k := range [...]string{"event_id", "run_id", "event_type", "timestamp", "payload_hash_b64u", "prev_hash_b64u"} {
		v := ev.Get(k)
		if v == nil {
			continue // JSON.stringify leaves out undefined members
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = canon.AppendString(dst, k)
		dst = append(dst, ':')
		dst = canon.AppendCompact(dst, v)
	}
	return append(dst, '}')
}

// checkEventChain runs step 18: structure (MALFORMED_ENVELOPE), then every
// header hash (HASH_MISMATCH). It returns the run id and root hash. Events
// are checked on up to workers goroutines; the failure reported is the one
// an event-by-event pass meets first.
func checkEventChain(chain *canon.Value, workers int) (runID, root string, r *Result) {
	events := chain.Items
	if len(events) == 0 {
		return "", "", nil
	}
	if first := &events[0]; first.IsObject() {
		runID = str0(first, "run_id")
	}
	bad := make([]*Result, len(events))
	parallel(len(events), workers, func(i int) {
		bad[i] = checkEvent(events, i, runID)
	})
	for _, r := range bad {
		if r != nil && r.Code == MalformedEnvelope {
			return "", "", r
		}
	}
	for _, r := range bad {
		if r != nil {
			return "", "", r
		}
	}
	return runID, str0(&events[0], "event_hash_b64u"), nil
}

// checkEvent checks event i's structure and its link to the previous
// event, then its header hash.
func checkEvent(events []canon.Value, i int, runID string) *Result {
	ev := &events[i]
	path := func(field string) string { return "event_chain[" + itoa(i) + "]" + field }
	if !ev.IsObject() {
		return failPath(MalformedEnvelope, "event is not an object", path(""))
	}
	for _, k := range [...]string{"event_id", "run_id", "event_type"} {
		if s, ok := ev.StringOf(k); !ok || s == "" {
			return failPath(MalformedEnvelope, "event "+k+" must be a non-empty string", path("."+k))
		}
	}
	if ts, ok := ev.StringOf("timestamp"); !ok {
		return failPath(MalformedEnvelope, "event timestamp missing", path(".timestamp"))
	} else if _, ok := parseLenientDate(ts); !ok {
		return failPath(MalformedEnvelope, "event timestamp does not parse", path(".timestamp"))
	}
	if !isB64u8(ev.Get("payload_hash_b64u")) || !isB64u8(ev.Get("event_hash_b64u")) {
		return failPath(MalformedEnvelope, "event hashes must be base64url", path(""))
	}
	prev := ev.Get("prev_hash_b64u")
	if i == 0 {
		if prev != nil && prev.Kind != canon.Null && !(prev.IsString() && prev.Str == "") {
			return failPath(MalformedEnvelope, "first event must have prev_hash_b64u null", path(".prev_hash_b64u"))
		}
	} else {
		if str0(ev, "run_id") != runID {
			return failPath(MalformedEnvelope, "event chain mixes run ids", path(".run_id"))
		}
		if !isB64u8(prev) || prev.Str != str0(&events[i-1], "event_hash_b64u") {
			return failPath(MalformedEnvelope, "event is not linked to the previous event", path(".prev_hash_b64u"))
		}
	}
	buf := headerBufs.Get().(*[]byte)
	defer headerBufs.Put(buf)
	*buf = appendEventHeader((*buf)[:0], ev)
	if b64u.SHA256(*buf) != str0(ev, "event_hash_b64u") {
		return failPath(HashMismatch, "event hash does not match its header", path(".event_hash_b64u"))
	}
	return nil
}

// headerBufs holds buffers for event headers while they are hashed.
var headerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
