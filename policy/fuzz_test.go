package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

// FuzzParseEvaluate parses arbitrary documents and evaluates every valid
// one against a few requests: nothing may panic, and a decision is always
// one of the three effects with deciding statements only from the policy.
//
//	go test ./policy -run '^$' -fuzz FuzzParseEvaluate -fuzztime 60s
func FuzzParseEvaluate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testkit.RepoRoot(), "examples", "policies", "*.wpc.json"))
	for _, file := range files {
		data, _ := os.ReadFile(file)
		f.Add(data, "keyvault:secrets.get", "kv://kv-prod-finance-001/secrets/agent/app/x", "3")
	}
	f.Add([]byte(`{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z","statements":[{"sid":"s","effect":"Allow","actions":["a?*"],"resources":["**/x/**"],"conditions":{"NumericLessThan":{"n":"5"}}}]}`), "ab", "q/x/y", "4")
	f.Add([]byte(`{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z","allowed_models":["gpt*"]}`), "model:invoke", "model://openai/gpt", "1")
	f.Fuzz(func(t *testing.T, data []byte, action, resource, n string) {
		doc, err := Parse(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		p, err := Compile(doc, func(string) (*Document, error) { return nil, nil })
		if err != nil {
			return // unresolvable inherits
		}
		ctx := MapContext{"n": n, "ServiceBus:MessageBytes": n, ApprovalKey: "true", "Request:ViaGateway": n}
		var d Decision
		p.Evaluate(&Request{Action: action, Resource: resource, Context: ctx}, &d)
		if d.Effect > NeedsApproval {
			t.Fatalf("effect %d", d.Effect)
		}
		known := map[string]bool{}
		if doc.V2 != nil {
			for _, s := range doc.V2.Statements {
				known[s.SID] = true
			}
		}
		for _, sid := range d.Statements() {
			if !known[sid] {
				t.Fatalf("unknown deciding statement %q", sid)
			}
		}
		_ = p.Explain(&Request{Action: action, Resource: resource, Context: ctx}).Text()
		_ = Lint(doc)
	})
}
