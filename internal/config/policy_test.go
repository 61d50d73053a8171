package config

import "testing"

// The policy section: operators and the approval switch; unknown keys
// fail.
func TestPolicySection(t *testing.T) {
	f, err := Parse([]byte(`{"policy": {"require_approval": false, "operators": ["did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Policy == nil || f.Policy.RequireApproval == nil || *f.Policy.RequireApproval || len(f.Policy.Operators) != 1 {
		t.Fatalf("policy: %+v", f.Policy)
	}
	if f, _ := Parse([]byte(`{"policy": {}}`)); f.Policy.RequireApproval != nil {
		t.Error("an absent require_approval must stay unset (clawea serve's default applies)")
	}
	if _, err := Parse([]byte(`{"policy": {"require_aproval": false}}`)); err == nil {
		t.Error("a misspelt key was accepted")
	}
}
