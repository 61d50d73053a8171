package toolgw

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/clawea/clawea/canon"
)

// Bounds of the decision API's requests.
const (
	// MaxDecideBody bounds the body of POST /v1/decide and of
	// POST /v1/decide/{id}/result.
	MaxDecideBody = 1 << 20
	maxIDLen      = 256 // a correlation id, a requester's id
	maxNameLen    = 128 // a tool's name
	maxRuntimeLen = 32  // a runtime's name
	maxKindLen    = 64  // a tool's kind
	maxChannelLen = 64
	maxStateLen   = 512 // W3C tracestate
	maxCodeLen    = 64  // a result's error code
	maxMessageLen = 4096
)

// CodePayloadTooLarge refuses a body over MaxDecideBody.
const CodePayloadTooLarge = "PAYLOAD_TOO_LARGE"

// RuntimeTool names a tool an agent runtime runs itself.
type RuntimeTool struct {
	// Runtime is the runtime's name ("openclaw"): 1 to 32 of a-z, 0-9,
	// "_" and "-".
	Runtime string `json:"runtime"`
	// Name is the tool's name as the runtime calls it ("exec"), compared in
	// ASCII lower case: 1 to 128 of A-Z, a-z, 0-9, "_", "-" and ".".
	Name string `json:"name"`
	// Kind is the runtime's optional kind of the call (OpenClaw's
	// toolKind or toolInputKind, e.g. "code_mode_exec").
	Kind string `json:"kind,omitempty"`
}

// Trace is a W3C trace context.
type Trace struct {
	Traceparent string `json:"traceparent"`
	Tracestate  string `json:"tracestate,omitempty"`
}

// Correlation are the runtime's ids of the call, recorded with the
// decision (OpenClaw's runId, toolCallId, sessionKey, agentId, trace).
type Correlation struct {
	RunID      string `json:"run_id,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
	AgentID    string `json:"agent_id,omitempty"`
	Trace      *Trace `json:"trace,omitempty"`
}

// Requester are facts about who asked for the call, as the request claims
// them (set under Claim: keys only). A fact left out is absent, and every
// condition on it is false.
type Requester struct {
	Channel       string `json:"channel,omitempty"`
	AccountID     string `json:"account_id,omitempty"`
	SenderID      string `json:"sender_id,omitempty"`
	SenderIsOwner *bool  `json:"sender_is_owner,omitempty"`
}

// Facts are what the request claims about the call. Sent with a job
// token, which the agent holds, they are claims, never proofs: DecideTool
// sets them under Claim: keys only. A fact left out is absent, never true.
type Facts struct {
	Sandboxed *bool      `json:"sandboxed,omitempty"`
	Elevated  *bool      `json:"elevated,omitempty"`
	Requester *Requester `json:"requester,omitempty"`
}

// DecideRequest is the body of POST /v1/decide.
type DecideRequest struct {
	Tool RuntimeTool `json:"tool"`
	// Params are the call's arguments: a JSON object (absent or null: {}).
	Params      canon.Value  `json:"params"`
	Correlation *Correlation `json:"correlation,omitempty"`
	Facts       *Facts       `json:"facts,omitempty"`
}

// Result statuses of POST /v1/decide/{id}/result.
const (
	ResultSuccess = "success"
	ResultError   = "error"
	ResultTimeout = "timeout"
)

// ResultRequest is the body of POST /v1/decide/{id}/result.
type ResultRequest struct {
	Status string `json:"status"`
	// Result is the tool's output, any JSON value (absent: null). It is
	// redacted, then committed to, never disclosed.
	Result canon.Value `json:"result"`
	// ErrorCode (status error or timeout): 1 to 64 of A-Z, a-z, 0-9, "_",
	// "-", "." and ":". Disclosed in the receipt only when it matches
	// ^[A-Z][A-Z0-9_]{0,31}$; otherwise committed to, not disclosed.
	ErrorCode string `json:"error_code,omitempty"`
	// ErrorMessage is committed to with the result, never disclosed.
	ErrorMessage string `json:"error_message,omitempty"`
}

func invalid(format string, a ...any) *Error {
	return errf(http.StatusBadRequest, CodeInvalidRequest, format, a...)
}

// fields refuses a JSON object with a key outside allowed (compared
// exactly, case included), and a value that is not an object.
func fields(v *canon.Value, where string, allowed ...string) *Error {
	if !v.IsObject() {
		return invalid("%s must be a JSON object", where)
	}
	for _, m := range v.Members {
		ok := false
		for _, a := range allowed {
			if m.Key == a {
				ok = true
				break
			}
		}
		if !ok {
			return invalid("%s has an unknown field %q", where, clip(m.Key))
		}
	}
	return nil
}

// clip shortens text quoted in a message.
func clip(s string) string {
	if len(s) > 64 {
		s = strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}

// text reads an optional string member: absent or null is "", anything
// else must be valid UTF-8 of at most max bytes without control characters.
func text(v *canon.Value, key, where string, max int) (string, *Error) {
	m := v.Get(key)
	if m == nil || m.Kind == canon.Null {
		return "", nil
	}
	if !m.IsString() || len(m.Str) > max || !utf8.ValidString(m.Str) || strings.ContainsFunc(m.Str, isControl) {
		return "", invalid("%s.%s must be text of at most %d bytes without control characters", where, key, max)
	}
	return m.Str, nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029
}

// flag reads an optional boolean member: absent or null is nil.
func flag(v *canon.Value, key, where string) (*bool, *Error) {
	m := v.Get(key)
	if m == nil || m.Kind == canon.Null {
		return nil, nil
	}
	if m.Kind != canon.Bool {
		return nil, invalid("%s.%s must be true, false or absent", where, key)
	}
	b := m.Boolean
	return &b, nil
}

// nameChars reports whether s is 1 to max bytes of ASCII letters, digits
// and the bytes in extra.
func nameChars(s string, max int, lower bool, extra string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z' && !lower:
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseDecideRequest parses and checks the body of POST /v1/decide: closed
// objects at every level (unknown fields refused, exactly as spelled),
// bounded sizes, tool names of a fixed alphabet, a well-formed W3C
// traceparent, facts that are booleans or absent. A repeated key takes
// its last value (JSON.parse, as the runtime reads its own arguments).
func ParseDecideRequest(raw []byte) (*DecideRequest, *Error) {
	if len(raw) > MaxDecideBody {
		return nil, errf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "the body exceeds %d bytes", MaxDecideBody)
	}
	v, err := canon.Parse(raw)
	if err != nil {
		return nil, invalid("the body is not valid JSON")
	}
	if e := fields(&v, "the body", "tool", "params", "correlation", "facts"); e != nil {
		return nil, e
	}
	req := &DecideRequest{Params: canon.Value{Kind: canon.Object}}
	tv := v.Get("tool")
	if tv == nil {
		return nil, invalid("tool is required: {\"runtime\", \"name\", \"kind\"}")
	}
	if e := fields(tv, "tool", "runtime", "name", "kind"); e != nil {
		return nil, e
	}
	var e *Error
	if req.Tool.Runtime, e = text(tv, "runtime", "tool", maxRuntimeLen); e != nil {
		return nil, e
	}
	if req.Tool.Name, e = text(tv, "name", "tool", maxNameLen); e != nil {
		return nil, e
	}
	if req.Tool.Kind, e = text(tv, "kind", "tool", maxKindLen); e != nil {
		return nil, e
	}
	if !nameChars(req.Tool.Runtime, maxRuntimeLen, true, "_-") {
		return nil, invalid("tool.runtime must be 1 to %d of a-z, 0-9, _ and -", maxRuntimeLen)
	}
	if !nameChars(req.Tool.Name, maxNameLen, false, "_-.") {
		return nil, invalid("tool.name must be 1 to %d of A-Z, a-z, 0-9, _, - and .", maxNameLen)
	}
	if req.Tool.Kind != "" && !nameChars(req.Tool.Kind, maxKindLen, false, "_-.") {
		return nil, invalid("tool.kind must be 1 to %d of A-Z, a-z, 0-9, _, - and .", maxKindLen)
	}
	if p := v.Get("params"); p != nil && p.Kind != canon.Null {
		if !p.IsObject() {
			return nil, invalid("params must be a JSON object")
		}
		req.Params = *p
	}
	if cv := v.Get("correlation"); cv != nil && cv.Kind != canon.Null {
		if e := fields(cv, "correlation", "run_id", "tool_call_id", "session_key", "agent_id", "trace"); e != nil {
			return nil, e
		}
		c := &Correlation{}
		for _, f := range []struct {
			key string
			dst *string
		}{{"run_id", &c.RunID}, {"tool_call_id", &c.ToolCallID}, {"session_key", &c.SessionKey}, {"agent_id", &c.AgentID}} {
			if *f.dst, e = text(cv, f.key, "correlation", maxIDLen); e != nil {
				return nil, e
			}
		}
		if trv := cv.Get("trace"); trv != nil && trv.Kind != canon.Null {
			if e := fields(trv, "correlation.trace", "traceparent", "tracestate"); e != nil {
				return nil, e
			}
			tr := &Trace{}
			if tr.Traceparent, e = text(trv, "traceparent", "correlation.trace", 55); e != nil {
				return nil, e
			}
			if !traceparent(tr.Traceparent) {
				return nil, invalid("correlation.trace.traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
			}
			if tr.Tracestate, e = text(trv, "tracestate", "correlation.trace", maxStateLen); e != nil {
				return nil, e
			}
			c.Trace = tr
		}
		req.Correlation = c
	}
	if fv := v.Get("facts"); fv != nil && fv.Kind != canon.Null {
		if e := fields(fv, "facts", "sandboxed", "elevated", "requester"); e != nil {
			return nil, e
		}
		f := &Facts{}
		if f.Sandboxed, e = flag(fv, "sandboxed", "facts"); e != nil {
			return nil, e
		}
		if f.Elevated, e = flag(fv, "elevated", "facts"); e != nil {
			return nil, e
		}
		if rv := fv.Get("requester"); rv != nil && rv.Kind != canon.Null {
			if e := fields(rv, "facts.requester", "channel", "account_id", "sender_id", "sender_is_owner"); e != nil {
				return nil, e
			}
			r := &Requester{}
			if r.Channel, e = text(rv, "channel", "facts.requester", maxChannelLen); e != nil {
				return nil, e
			}
			if r.AccountID, e = text(rv, "account_id", "facts.requester", maxIDLen); e != nil {
				return nil, e
			}
			if r.SenderID, e = text(rv, "sender_id", "facts.requester", maxIDLen); e != nil {
				return nil, e
			}
			if r.SenderIsOwner, e = flag(rv, "sender_is_owner", "facts.requester"); e != nil {
				return nil, e
			}
			f.Requester = r
		}
		req.Facts = f
	}
	return req, nil
}

// traceparent reports whether s is a W3C traceparent this version knows:
// version 00, a trace id and a parent id that are lower-case hex and not
// all zeros, and flags.
func traceparent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] != "00" {
		return false
	}
	hex := func(p string) bool {
		zero := true
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
			zero = zero && c == '0'
		}
		return !zero
	}
	return hex(s[3:35]) && hex(s[36:52]) && (hex(s[53:55]) || s[53:55] == "00")
}

// ParseResultRequest parses and checks the body of
// POST /v1/decide/{id}/result.
func ParseResultRequest(raw []byte) (*ResultRequest, *Error) {
	if len(raw) > MaxDecideBody {
		return nil, errf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "the body exceeds %d bytes", MaxDecideBody)
	}
	v, err := canon.Parse(raw)
	if err != nil {
		return nil, invalid("the body is not valid JSON")
	}
	if e := fields(&v, "the body", "status", "result", "error_code", "error_message"); e != nil {
		return nil, e
	}
	req := &ResultRequest{Result: canon.Value{Kind: canon.Null}}
	var e *Error
	if req.Status, e = text(&v, "status", "the body", 16); e != nil {
		return nil, e
	}
	switch req.Status {
	case ResultSuccess, ResultError, ResultTimeout:
	default:
		return nil, invalid("status must be success, error or timeout")
	}
	if r := v.Get("result"); r != nil {
		req.Result = *r
	}
	if req.ErrorCode, e = text(&v, "error_code", "the body", maxCodeLen); e != nil {
		return nil, e
	}
	if req.ErrorCode != "" && !nameChars(req.ErrorCode, maxCodeLen, false, "_-.:") {
		return nil, invalid("error_code must be 1 to %d of A-Z, a-z, 0-9, _, -, . and :", maxCodeLen)
	}
	if m := v.Get("error_message"); m != nil && m.Kind != canon.Null {
		// Committed to, never disclosed: any text (lines included).
		if !m.IsString() || len(m.Str) > maxMessageLen || !utf8.ValidString(m.Str) {
			return nil, invalid("error_message must be text of at most %d bytes", maxMessageLen)
		}
		req.ErrorMessage = m.Str
	}
	if req.Status == ResultSuccess && (req.ErrorCode != "" || req.ErrorMessage != "") {
		return nil, invalid("a successful result has no error_code or error_message")
	}
	return req, nil
}
