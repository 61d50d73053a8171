package runtimetools

import "testing"

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		runtime, name, want string
		known               bool
	}{
		{"openclaw", "exec", "exec", false}, // exact-only
		{"openclaw", "Bash", "exec", false},
		{"openclaw", "process", "process", false},
		{"openclaw", "nodes", "nodes", false},
		{"openclaw", "gateway", "gateway", false},
		{"openclaw", "sessions_spawn", "sessions_spawn", false},
		{"openclaw", "cron", "automations", false},
		{"openclaw", "automations", "automations", false},
		{"openclaw", "web_fetch", "web_fetch", true},
		{"openclaw", "READ", "read", true},
		{"openclaw", "my_plugin_tool", "my_plugin_tool", false},
		{"other", "exec", "exec", false},
		{"other", "bash", "bash", false},
	} {
		got, known := Resolve(tc.runtime, tc.name)
		if got != tc.want || known != tc.known {
			t.Errorf("%s/%s: %s %v, want %s %v", tc.runtime, tc.name, got, known, tc.want, tc.known)
		}
	}
}

// TestExactOnlyAreNeverGlobbable: every exact-only tool resolves as not
// allowable by a glob, and is not also listed as known.
func TestExactOnlyAreNeverGlobbable(t *testing.T) {
	for rt, tools := range exactOnly {
		for name := range tools {
			if _, ok := Resolve(rt, name); ok {
				t.Errorf("%s/%s is exact-only but a glob may allow it", rt, name)
			}
			if known[rt][name] {
				t.Errorf("%s/%s is both known and exact-only", rt, name)
			}
		}
	}
}
