package runtimetools

import "testing"

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		runtime, name, want string
		known               bool
	}{
		{"openclaw", "exec", "exec", true},
		{"openclaw", "Bash", "exec", true},
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
