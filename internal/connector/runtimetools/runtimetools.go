// Package runtimetools knows the tools agent runtimes run themselves
// (OpenClaw's exec, read, write, browser...), which the tool gateway's
// decision API decides on (docs/decide.md): a call is action tool:execute
// on tool://<runtime>/<name>. It owns the catalogue of each runtime's tool
// names and aliases; the gateway owns the decision, the approvals and the
// records (internal/toolgw, decide.go).
package runtimetools

import "strings"

// known are the tools clawea knows per runtime (OpenClaw's core tools, in
// lower case) that a policy may allow through a glob (tool://openclaw/*).
// Any other tool — an unknown one, or one of the powerful tools below — is
// allowed only by an Allow statement that names its resource exactly.
var known = map[string]map[string]bool{
	"openclaw": setOf("read", "write", "edit", "apply_patch",
		"web_search", "x_search", "web_fetch", "memory_search", "memory_get", "browser", "canvas",
		"message", "image", "pdf", "view_image", "tts", "session_status", "sessions_list",
		"sessions_history", "agents_list", "ask_user"),
}

// exactOnly are tools as strong as a shell, or able to run work clawea
// does not see (a command, stdin to a background command, code, a node's
// command, the gateway's own config, a spawned session on another
// runtime, scheduled runs): a glob never allows them (red team: Allow
// tool://openclaw/* with Deny exec still let process, nodes and gateway
// through).
var exactOnly = map[string]map[string]bool{
	"openclaw": setOf("exec", "process", "code_execution", "nodes", "gateway", "sessions_spawn",
		"sessions_send", "subagents", "automations"),
}

// aliases map a runtime's other names of a tool to the one the policy
// sees, so that a Deny of tool://openclaw/exec holds for "bash".
// OpenClaw 2026.9.6 renamed cron to automations.
var aliases = map[string]map[string]string{
	"openclaw": {"bash": "exec", "cron": "automations"},
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Resolve returns the name the policy sees for a runtime's tool (lower
// case, aliases resolved) and whether a glob may allow it (a known tool
// that is not exact-only).
func Resolve(runtime, name string) (string, bool) {
	name = strings.ToLower(name)
	if a, ok := aliases[runtime][name]; ok {
		name = a
	}
	return name, known[runtime][name] && !exactOnly[runtime][name]
}

// ExactOnly reports whether a runtime's tool (as Resolve names it) is
// allowed only by a statement naming its resource exactly.
func ExactOnly(runtime, name string) bool { return exactOnly[runtime][name] }
