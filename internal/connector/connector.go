// Package connector is the one interface between the tool gateway and the
// connectors behind it (Key Vault, Service Bus, upstream MCP servers, and
// any added later). A connector owns its tools: their definitions, the
// checks and canonical form of their arguments, the policy resource and
// context keys a call is decided on, and how the call runs. The gateway
// (internal/toolgw) only authorizes the job, decides, asks for approvals,
// guards egress, redacts and records; it treats every Tool alike.
//
// Adding a connector touches its own package: implement Connector and
// pass it to toolgw.Options.Connectors (docs/tool-gateway.md).
package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/clawea/clawea/internal/httpapi"
)

// Connector lists the tools of one connector.
type Connector interface {
	// Tools are the connector's tools, in the order tools/list shows them.
	// Names are unique across the gateway (the gateway refuses a clash).
	Tools() []*Tool
	// Names are the names of what the connector reaches as records spell
	// them (vaults, namespaces). A secret value found inside one of them
	// cannot be told apart from record text and is not registered for
	// redaction (toolgw weak.go).
	Names() []string
}

// Error is a refusal with a stable code (the gateway's error type).
type Error = httpapi.Error

// CodeInvalidArguments refuses arguments a tool does not accept.
const CodeInvalidArguments = "INVALID_ARGUMENTS"

// A Tool is one operation agents may call.
type Tool struct {
	Name        string
	Description string
	// Action is the policy action every call of the tool is decided on.
	Action string
	// Mutating: a write. Lockdown refuses it and a success leaves a
	// side-effect record. (A call may also be a write on its own, Call.Mutating.)
	Mutating bool
	// Params are the arguments the tool takes; any other argument is
	// refused with INVALID_ARGUMENTS before Prepare. The input schema is
	// built from them.
	Params []Param
	// Schema, when set, is the input schema as is, and the arguments are
	// not checked against Params: the tool's far end checks them (an
	// upstream MCP server).
	Schema map[string]any
	// Resource, when set, is the resource of every call: tools/list shows
	// the tool only if the policy could allow Action on it (otherwise on
	// any resource).
	Resource string
	// MCPResult: Run returns an MCP CallToolResult as json.RawMessage, which
	// the /mcp handler hands back as is (with clawea's receipt id in _meta).
	MCPResult bool
	// Counts name per-job counters every call adds to (one, or the call's
	// CountDelta) before the decision, given back when the call fails; a
	// policy tests the count of earlier calls under each Counter's Key.
	// Only policies that reference a Key pay for its counting.
	Counts []*Counter
	// Prepare checks and canonicalises the arguments (rewriting them in
	// a.V, so that everything downstream sees one spelling) and returns
	// the call to decide on. It must not reach the service: Run does.
	Prepare func(a *Args) (*Call, *Error)
}

// Param is one argument of a tool.
type Param struct {
	Name, Type, Desc string
	Required         bool
	Enum             []string
	// Secret: the value is a secret (a Key Vault write's value). It is
	// never recorded, even hashed in the clear, and may not hold a
	// redaction marker.
	Secret bool
}

// Counter is a per-job counter (Tool.Counts).
type Counter struct {
	Name string // the store's counter name
	Key  string // the context key holding the count of earlier calls
	// Window, when set, makes the counter a rate: it counts within fixed
	// windows of this length (aligned on the Unix epoch), and Key holds
	// the count of earlier calls in the current window. The store keeps
	// one counter per window, named Name@<window index>.
	Window time.Duration
}

// StoreName is the store's counter name at time now.
func (c *Counter) StoreName(now time.Time) string {
	if c.Window <= 0 {
		return c.Name
	}
	return c.Name + "@" + strconv.FormatInt(now.UnixNano()/int64(c.Window), 10)
}

// Call is a prepared call: what the policy decides on and how it runs.
type Call struct {
	// Resource and Context are the policy request's resource and context
	// keys (docs/policy.md). The gateway adds its own keys to Context.
	Resource string
	Context  map[string]string
	// Run calls the service, with the gateway's identity, once the call
	// is allowed.
	Run func(ctx context.Context) (any, error)
	// Mutating: this call is a write although its tool is not always one
	// (a receive_and_delete).
	Mutating bool
	// Label names the secret this call reads or writes (vault/path);
	// Reveal says the value goes back to the agent in clear (the "value"
	// member of Run's answer). Both are set in Prepare: the egress guard
	// reads Label before Run.
	Label  string
	Reveal bool
	// SecretOut is set by Run with the secret value the call saw; the
	// gateway registers it for redaction under Label.
	SecretOut string
	// UpstreamError is set by Run when the far end answered with an error
	// result (MCPResult tools): the receipt's status is error, the agent
	// still gets the answer.
	UpstreamError bool
	// Disclose names top-level members of Run's answer that the tool
	// receipt of a success discloses besides committing to them (a Key
	// Vault version id). Only string members are disclosed, after
	// redaction; a member holding a secret value must never be named.
	Disclose []string
	// CountDelta, when positive, is what the call adds to its tool's
	// counters instead of one (the messages a receive asks for). Run may
	// lower it to what the call used (the messages that came back); the
	// gateway then gives back the difference.
	CountDelta int64
}

// InputSchema returns the tool's JSON Schema.
func (t *Tool) InputSchema() map[string]any {
	if t.Schema != nil {
		return t.Schema
	}
	props := map[string]any{}
	var req []string
	for _, p := range t.Params {
		s := map[string]any{"type": p.Type, "description": p.Desc}
		if len(p.Enum) > 0 {
			s["enum"] = p.Enum
		}
		if p.Type == "object" {
			s["additionalProperties"] = map[string]any{"type": []string{"string", "number", "boolean"}}
		}
		props[p.Name] = s
		if p.Required {
			req = append(req, p.Name)
		}
	}
	sort.Strings(req)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		out["required"] = req
	}
	return out
}

// SecretParam reports whether the tool's argument name is a secret.
func (t *Tool) SecretParam(name string) bool {
	for _, p := range t.Params {
		if p.Name == name && p.Secret {
			return true
		}
	}
	return false
}

// Failure classes a connector's errors wrap (errors.Is) to get their
// stable code without the gateway knowing the connector: NOT_FOUND,
// CONFLICT, CONNECTOR_FORBIDDEN, INVALID_ARGUMENTS, CONNECTOR_THROTTLED
// (an error with a RetryAfter() time.Duration method adds the wait),
// CONNECTOR_UNREACHABLE and CONNECTOR_TIMEOUT; a *Coded class gives a
// connector's own code. Any other error is CONNECTOR_ERROR. A connector
// may wrap a class directly or declare its own sentinels in one (Sentinel).
var (
	ErrNotFound    = errors.New("connector: not found")
	ErrConflict    = errors.New("connector: conflict")
	ErrForbidden   = errors.New("connector: forbidden")
	ErrInvalid     = errors.New("connector: invalid argument")
	ErrThrottled   = errors.New("connector: throttled")
	ErrUnreachable = errors.New("connector: unreachable")
	ErrTimeout     = errors.New("connector: timed out")
)

// Coded is a failure class with a connector's own code, HTTP status and
// message (what happened, after the tool's name).
type Coded struct {
	Code   string
	Status int
	What   string
}

func (c *Coded) Error() string { return "connector: " + c.What }

// Sentinel returns an error with its own text that is of class
// (errors.Is(err, class), or errors.As for a *Coded class): a connector's
// sentinel errors keep their identity and text and get the class's code.
func Sentinel(text string, class error) error { return &sentinel{text, class} }

type sentinel struct {
	text  string
	class error
}

func (s *sentinel) Error() string { return s.text }
func (s *sentinel) Unwrap() error { return s.class }

// BadArg is an INVALID_ARGUMENTS refusal (HTTP 400).
func BadArg(format string, a ...any) *Error {
	return httpapi.Errorf(http.StatusBadRequest, CodeInvalidArguments, format, a...)
}

// Index keys clients by their canonical name (canon folds the spelling
// Azure compares equal): two spellings of one name are one resource, so
// configuring both is an error. what names the kind in errors ("vault").
func Index[T any](clients []T, name func(T) string, canon func(string) (string, error), what string) (map[string]T, error) {
	m := make(map[string]T, len(clients))
	for _, c := range clients {
		n, err := canon(name(c))
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, name(c), err)
		}
		if _, dup := m[n]; dup {
			return nil, fmt.Errorf("%s %s is configured twice", what, n)
		}
		m[n] = c
	}
	return m, nil
}
