package toolgw

import (
	"context"
	"net/http"

	"github.com/clawea/clawea/internal/connector"
)

// A tool is one operation agents may call. Its definition — arguments,
// their checks and canonical form, resource, context keys and how it runs
// — belongs to its connector (internal/connector); the gateway keeps the
// name, action and mutating flag it decides and records on. A runtime
// tool of the decision API (decide.go) has no definition.
type tool struct {
	name     string
	action   string
	mutating bool // a write: lockdown refuses it; it gets a side-effect record
	def      *connector.Tool
}

func toolOf(d *connector.Tool) *tool {
	return &tool{name: d.Name, action: d.Action, mutating: d.Mutating, def: d}
}

// params are the tool's declared arguments (none for a runtime tool).
func (t *tool) params() []connector.Param {
	if t.def == nil {
		return nil
	}
	return t.def.Params
}

// call is a prepared tool call.
type call struct {
	tool     *tool
	resource string
	ctx      map[string]string
	run      func(ctx context.Context) (any, error)
	// label names the secret this call reads or writes (vault/path), and
	// reveal says the value goes back to the agent in clear.
	label  string
	reveal bool
	// conn is the connector's prepared call; its run sets SecretOut and
	// UpstreamError.
	conn *connector.Call
	// withheld: the call is being recorded with its arguments and result
	// withheld (recordCall's second try).
	withheld bool
	// event, when set, gives recordCall the event type and payload to
	// record instead of a plain tool_call (runtime decisions, decide.go).
	event func(toolEvent) (string, any)
	// runtime, for a runtime decision, is what its approval is bound to
	// and shows besides the arguments (decide.go).
	runtime *runtimeBinding
}

// secretOut is the secret value the call saw (set by its run).
func (c *call) secretOut() string {
	if c.conn == nil {
		return ""
	}
	return c.conn.SecretOut
}

// upstreamError: a proxied tool answered with isError (the receipt's
// status is error; the agent still gets the answer).
func (c *call) upstreamError() bool { return c.conn != nil && c.conn.UpstreamError }

// prepare checks the arguments against the tool's definition and lets its
// connector prepare the call.
func (t *tool) prepare(a *connector.Args) (*call, *Error) {
	if t.def.Schema == nil {
		// A tool with its own schema checks its arguments itself.
		a.Closed(t.def)
	}
	if a.Err() != nil {
		return nil, a.Err()
	}
	cc, e := t.def.Prepare(a)
	if e != nil {
		return nil, e
	}
	if cc == nil || cc.Run == nil || cc.Resource == "" {
		// Fail closed: nothing to decide on or nothing to run.
		return nil, errf(http.StatusInternalServerError, CodeConnectorError, "%s: the connector prepared no call", t.name)
	}
	if cc.Context == nil {
		cc.Context = map[string]string{}
	}
	return &call{tool: t, resource: cc.Resource, ctx: cc.Context, run: cc.Run, label: cc.Label, reveal: cc.Reveal, conn: cc}, nil
}

func badArg(format string, a ...any) *Error { return connector.BadArg(format, a...) }
