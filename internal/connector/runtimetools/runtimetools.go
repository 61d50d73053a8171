// Package runtimetools knows the tools agent runtimes run themselves
// (OpenClaw's exec, read, write, browser...), which the tool gateway's
// decision API decides on (docs/decide.md): a call is action tool:execute
// on tool://<runtime>/<name>. It owns the catalogue of each runtime's tool
// names and aliases; the gateway owns the decision, the approvals and the
// records (internal/toolgw, decide.go).
package runtimetools

import "strings"

// known are the tools clawea knows per runtime (OpenClaw's core tools, in
// lower case). A policy may allow a known tool through a glob
// (tool://openclaw/*); any other tool only through an Allow statement that
// names its resource exactly.
var known = map[string]map[string]bool{
	"openclaw": setOf("exec", "process", "code_execution", "read", "write", "edit", "apply_patch",
		"web_search", "x_search", "web_fetch", "memory_search", "memory_get", "browser", "canvas",
		"message", "image", "pdf", "view_image", "tts", "session_status", "sessions_list",
		"sessions_history", "sessions_send", "sessions_spawn", "subagents", "agents_list", "cron",
		"gateway", "nodes", "ask_user"),
}

// aliases map a runtime's other names of a tool to the one the policy
// sees, so that a Deny of tool://openclaw/exec holds for "bash".
var aliases = map[string]map[string]string{
	"openclaw": {"bash": "exec"},
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Resolve returns the name the policy sees for a runtime's tool (lower
// case, aliases resolved) and whether clawea knows that tool.
func Resolve(runtime, name string) (string, bool) {
	name = strings.ToLower(name)
	if a, ok := aliases[runtime][name]; ok {
		name = a
	}
	return name, known[runtime][name]
}
