package connector

import (
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/httpapi"
)

// Args is a call's arguments (a JSON object) as a tool's Prepare reads
// them. The first failed check is kept (Err) and every later read returns
// its zero value, so that a Prepare reads all it needs and checks Err
// once; the first refusal is the one the agent sees.
type Args struct {
	// V is the argument object. Prepare may rewrite members (canonical
	// names): the gateway records, binds approvals to and redacts V as
	// Prepare left it.
	V   canon.Value
	bad *Error
}

// NewArgs wraps an argument object.
func NewArgs(v canon.Value) *Args { return &Args{V: v} }

// Err is the first refusal, or nil.
func (a *Args) Err() *Error { return a.bad }

// Fail keeps e as the refusal unless one is kept already.
func (a *Args) Fail(e *Error) {
	if a.bad == nil {
		a.bad = e
	}
}

// Str reads a string argument of at most max bytes of valid UTF-8;
// required also refuses an empty string.
func (a *Args) Str(name string, required bool, max int) string {
	if a.bad != nil {
		return ""
	}
	m := a.V.Get(name)
	if m == nil || m.Kind == canon.Null {
		if required {
			a.bad = BadArg("argument %q is required", name)
		}
		return ""
	}
	if !m.IsString() {
		a.bad = BadArg("argument %q must be a string", name)
		return ""
	}
	if len(m.Str) > max || !utf8.ValidString(m.Str) {
		a.bad = BadArg("argument %q must be valid text of at most %d bytes", name, max)
		return ""
	}
	if required && m.Str == "" {
		a.bad = BadArg("argument %q must not be empty", name)
	}
	return m.Str
}

// Num reads an optional integer argument from lo to hi (def when absent).
func (a *Args) Num(name string, def, lo, hi int) int {
	if a.bad != nil {
		return def
	}
	m := a.V.Get(name)
	if m == nil || m.Kind == canon.Null {
		return def
	}
	if !m.IsInteger() || m.Num < float64(lo) || m.Num > float64(hi) {
		a.bad = BadArg("argument %q must be an integer from %d to %d", name, lo, hi)
		return def
	}
	return int(m.Num)
}

// Closed refuses arguments the tool does not take.
func (a *Args) Closed(t *Tool) {
	if a.bad != nil {
		return
	}
	for _, m := range a.V.Members {
		known := false
		for _, p := range t.Params {
			if p.Name == m.Key {
				known = true
				break
			}
		}
		if !known {
			a.bad = BadArg("unknown argument %q for %s", m.Key, t.Name)
			return
		}
	}
}

// Canonical names.
//
// A service may compare names without regard to case (Azure's vault,
// secret, namespace and entity names). Each such name is brought to its
// canonical form in Prepare, before anything else looks at it, and the
// argument is rewritten in place: the resource the policy decides on, the
// service call, the context keys, the recorded arguments (receipts), the
// approval binding and the redaction label all see one spelling. A name
// outside the service's grammar is refused with INVALID_ARGUMENTS before
// any decision.

// ErrNotCanonical is what a canonicaliser may return for a name outside
// its grammar (any error refuses the name).
var ErrNotCanonical = errors.New("not in the name grammar")

// Canon reads a string argument, canonicalises it with fold and rewrites
// it in the arguments. what describes the grammar for the refusal. It
// returns "" once a refusal is kept.
func (a *Args) Canon(name string, required bool, max int, what string, fold func(string) (string, error)) string {
	raw := a.Str(name, required, max)
	if a.bad != nil || raw == "" {
		return raw
	}
	c, err := fold(raw)
	if err != nil {
		a.bad = NonCanonical(name, what, raw)
		return ""
	}
	if c != raw {
		a.V.Set(name, canon.NewString(c))
	}
	return c
}

// NonCanonical refuses a name outside its grammar with INVALID_ARGUMENTS.
// The message quotes the argument Go-escaped, so that NUL, zero-width and
// full-width characters are visible.
func NonCanonical(arg, what, raw string) *Error {
	if len(raw) > 80 {
		raw = raw[:80] + "..."
	}
	return httpapi.Errorf(http.StatusBadRequest, CodeInvalidArguments, "argument %q must be %s (got %+q)", arg, what, raw)
}
