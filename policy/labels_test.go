package policy

import (
	"maps"
	"strings"
	"testing"
)

func TestLabels(t *testing.T) {
	good := map[string]string{"change_ticket": "CHG-1234", "team": "ops/eu@x+1", "a": strings.Repeat("v", MaxLabelValueBytes)}
	if err := CheckLabels(good); err != nil {
		t.Fatal(err)
	}
	back, err := LabelsFromScopes(append([]string{"tool:call"}, LabelScopes(good)...))
	if err != nil || !maps.Equal(back, good) {
		t.Fatalf("round trip: %v %v", back, err)
	}
	for _, bad := range []map[string]string{
		{"Change": "x"}, {"1a": "x"}, {"a-b": "x"}, {"": "x"}, {strings.Repeat("a", MaxLabelNameBytes+1): "x"},
		{"a": ""}, {"a": "x y"}, {"a": "x=y"}, {"a": "x*"}, {"a": "é"}, {"a": strings.Repeat("v", MaxLabelValueBytes+1)},
		{ReservedLabel: "x"},
	} {
		if CheckLabels(bad) == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	many := map[string]string{}
	for i := 0; i <= MaxLabels; i++ {
		many[string(rune('a'+i))] = "v"
	}
	if CheckLabels(many) == nil {
		t.Error("too many labels accepted")
	}
	for _, scopes := range [][]string{{"label:a"}, {"label:A=b"}, {"label:a=b", "label:a=c"}, {"label:a=b c"}} {
		if _, err := LabelsFromScopes(scopes); err == nil {
			t.Errorf("%q accepted", scopes)
		}
	}
	if l, err := LabelsFromScopes([]string{"proxy:call", "tool:write"}); err != nil || l != nil {
		t.Errorf("no labels: %v %v", l, err)
	}
}

func FuzzLabelsFromScopes(f *testing.F) {
	for _, s := range []string{"label:change_ticket=CHG-1", "label:a=b\nlabel:a=c", "label:=x", "tool:call\nlabel:x=y/z@1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		scopes := strings.Split(in, "\n")
		l, err := LabelsFromScopes(scopes)
		if err != nil {
			return
		}
		if CheckLabels(l) != nil && len(l) <= MaxLabels {
			// Only the reserved name passes LabelsFromScopes and fails CheckLabels.
			if _, ok := l[ReservedLabel]; !ok {
				t.Fatalf("labels read from scopes fail the check: %v", l)
			}
		}
		again, err := LabelsFromScopes(LabelScopes(l))
		if err != nil || !maps.Equal(again, l) {
			t.Fatalf("round trip: %v -> %v (%v)", l, again, err)
		}
	})
}

func TestGovernsAndJobKeys(t *testing.T) {
	mk := func(actions string) *Policy {
		doc, err := Parse([]byte(`{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x.example","statements":[
		 {"sid":"S","effect":"Allow","actions":[` + actions + `],"resources":["*"]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(doc, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for actions, want := range map[string]bool{`"*"`: false, `"**"`: false, `"*:start"`: false, `"tool:*"`: false,
		`"job:start"`: true, `"job:*"`: true, `"keyvault:secrets.get","job:start"`: true, `"token:issue"`: false} {
		if got := mk(actions).Governs(ActionJobStart); got != want {
			t.Errorf("%s governs job:start: %v", actions, got)
		}
	}
	if k, ok := CanonicalKey("job:label.Change_Ticket"); !ok || k != "Job:Label.change_ticket" {
		t.Errorf("label key: %s %v", k, ok)
	}
	doc, err := Parse([]byte(`{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x.example","statements":[
	 {"sid":"A","effect":"Deny","actions":["keyvault:secrets.set"],"resources":["*"],"conditions":{"NumericGreaterThan":{"Job:TTL":"60"}}},
	 {"sid":"B","effect":"Deny","actions":["job:start"],"resources":["*"],"conditions":{"NumericGreaterThan":{"Job:TTL":"60"},"StringEquals":{"Job:Label.bad-name":"x"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, w := range Lint(doc) {
		codes = append(codes, w.Code+"@"+w.Path)
	}
	got := strings.Join(codes, " ")
	if !strings.Contains(got, WarnJobKeyOutsideJobAction+"@statements[0]") || strings.Contains(got, WarnJobKeyOutsideJobAction+"@statements[1]") ||
		!strings.Contains(got, WarnJobLabelName+"@statements[1]") {
		t.Errorf("lint: %s", got)
	}
}
