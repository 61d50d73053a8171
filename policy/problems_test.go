package policy

import (
	"reflect"
	"strings"
	"testing"
)

// TestProblemsListsEveryProblem: lint sees each top-level problem and the
// first problem of each statement at once; a valid policy has none.
func TestProblemsListsEveryProblem(t *testing.T) {
	bad := `{"policy_version":"2","policy_id":"","issuer_did":"nope","extra":1,"statements":[
	 {"sid":"A","effect":"Maybe","actions":["x:y"],"resources":["kv://v/secrets/a"]},
	 {"sid":"B","effect":"Allow","actions":[],"resources":["tool://x"]},
	 {"sid":"C","effect":"Allow","actions":["x:y"],"resources":["tool://x"]},
	 {"sid":"C","effect":"Allow","actions":["x:y"],"resources":["tool://y"]}]}`
	got := Problems([]byte(bad))
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Code+"@"+p.Path)
	}
	want := []string{"WPC_UNKNOWN_FIELD@extra", "WPC_BAD_VALUE@policy_id", "WPC_BAD_VALUE@issuer_did",
		"WPC_BAD_VALUE@statements[0].effect", "WPC_BAD_VALUE@statements[1].actions", "WPC_DUPLICATE_SID@statements[3].sid"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("problems:\n got %v\nwant %v", paths, want)
	}
	good := `{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x.example","statements":[
	 {"sid":"A","effect":"Allow","actions":["x:y"],"resources":["tool://x"]}]}`
	if p := Problems([]byte(good)); p != nil {
		t.Errorf("a valid policy: %v", p)
	}
	if p := Problems([]byte(`{`)); len(p) != 1 || p[0].Code != CodeInvalidJSON {
		t.Errorf("not JSON: %v", p)
	}
}

// FuzzProblems: Problems is empty exactly when Parse accepts the document,
// and its first problem is the one Parse reports.
func FuzzProblems(f *testing.F) {
	f.Add([]byte(`{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x.example","statements":[{"sid":"A","effect":"Allow","actions":["x:y"],"resources":["tool://x"]}]}`))
	f.Add([]byte(`{"policy_version":"2","policy_id":"","issuer_did":"x","z":1,"statements":[{"sid":"A"},{"sid":"A","effect":"Allow","actions":["a:b"],"resources":["r://x"]}]}`))
	f.Add([]byte(`{"policy_version":"1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data)
		ps := Problems(data)
		if (err == nil) != (len(ps) == 0) {
			t.Fatalf("Parse error %v, problems %v", err, ps)
		}
		if err != nil {
			pe, ok := err.(*Error)
			if ok && !reflect.DeepEqual(pe, ps[0]) {
				t.Fatalf("Parse says %v, the first problem is %v", pe, ps[0])
			}
		}
	})
}
