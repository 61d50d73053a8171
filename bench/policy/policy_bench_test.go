package policybench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/policy"
)

// Cedar renderings of the example policies. Cedar has no path globs with a
// '/' boundary, so resources are matched with `like` on a context string;
// on the requests below the two engines reach the same decisions (checked
// by TestSameDecisions).
const cedarKV = `
permit (principal, action == Action::"keyvault:secrets.get", resource)
when { context.path like "kv://kv-prod-finance-001/secrets/agent/app/*" || context.path like "kv://kv-prod-finance-001/secrets/agent/readonly/*" };
permit (principal, action == Action::"keyvault:secrets.set", resource)
when { context.path like "kv://kv-prod-finance-001/secrets/agent/app/*" && context.approved };
forbid (principal, action, resource)
when { context.path like "kv://kv-prod-finance-001/secrets/prod/*" || context.path like "kv://kv-prod-finance-001/secrets/breakglass/*" };
forbid (principal, action in [Action::"keyvault:secrets.list", Action::"keyvault:secrets.list_versions"], resource);
forbid (principal, action in [Action::"keyvault:secrets.delete", Action::"keyvault:secrets.purge"], resource);
forbid (principal, action, resource) when { context.family == "keys" || context.family == "certificates" };
`

const cedarSB = `
permit (principal, action == Action::"servicebus:send", resource)
when { context.path like "sb://*/orders-staging" && context.bytes < 131072 && context.sent < 200
       && context.props has schema_version && context.props has correlation_id };
forbid (principal, action, resource) when { context.path like "sb://*/orders-prod" || context.path like "sb://*/orders-prod/*" };
forbid (principal, action, resource) when { context.family == "manage" };
forbid (principal, action == Action::"servicebus:send", resource) when { context.props has authorization };
forbid (principal, action == Action::"servicebus:send", resource) when { context.props has cookie };
forbid (principal, action == Action::"servicebus:send", resource) when { context.props has "set-cookie" };
permit (principal, action in [Action::"servicebus:deadletter.read", Action::"servicebus:deadletter.purge"], resource)
when { context.path like "sb://*/orders-staging/$deadletterqueue" && context.approved };
`

type scenario struct {
	name    string
	ours    *policy.Policy
	req     policy.Request
	cedar   *cedar.PolicySet
	creq    cedar.Request
	allowed bool
}

func load(tb testing.TB, name string) *policy.Policy {
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", name))
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := policy.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := policy.Compile(doc, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func cedarSet(tb testing.TB, src string) *cedar.PolicySet {
	ps, err := cedar.NewPolicySetFromBytes("bench.cedar", []byte(src))
	if err != nil {
		tb.Fatal(err)
	}
	return ps
}

func cedarReq(action string, ctx cedar.RecordMap) cedar.Request {
	return cedar.Request{
		Principal: cedar.NewEntityUID("Agent", "did:key:z6MkAgent"),
		Action:    cedar.NewEntityUID("Action", cedar.String(action)),
		Resource:  cedar.NewEntityUID("Resource", "r"),
		Context:   cedar.NewRecord(ctx),
	}
}

// hundred builds a 100-statement policy in both languages: statement i
// allows action svc:op<i> on res://svc<i>/**; the request matches the last.
// A v2 document may hold at most 64 statements, so this one is built in
// code rather than parsed; the evaluator itself has no such limit.
func hundred(tb testing.TB) (*policy.Policy, *cedar.PolicySet) {
	var stmts []string
	var parsed []policy.Statement
	var ced strings.Builder
	for i := 0; i < 100; i++ {
		stmts = append(stmts, fmt.Sprintf(`{"sid":"S%d","effect":"Allow","actions":["svc:op%d"],"resources":["res://svc%d/**"]}`, i, i, i))
		parsed = append(parsed, policy.Statement{SID: fmt.Sprintf("S%d", i), Effect: "Allow",
			Actions: []string{fmt.Sprintf("svc:op%d", i)}, Resources: []string{fmt.Sprintf("res://svc%d/**", i)}})
		fmt.Fprintf(&ced, "permit (principal, action == Action::\"svc:op%d\", resource) when { context.path like \"res://svc%d/*\" };\n", i, i)
	}
	v, err := canon.Parse([]byte(`{"policy_version":"2","policy_id":"hundred","issuer_did":"did:key:z6Mk","statements":[` + strings.Join(stmts, ",") + `]}`))
	if err != nil {
		tb.Fatal(err)
	}
	doc := &policy.Document{Version: "2", Value: v, V2: &policy.V2{PolicyID: "hundred", IssuerDID: "did:key:z6Mk", Statements: parsed}}
	p, err := policy.Compile(doc, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return p, cedarSet(tb, ced.String())
}

func scenarios(tb testing.TB) []scenario {
	kv, sb := load(tb, "kv-boundary.wpc.json"), load(tb, "servicebus-send-only.wpc.json")
	ckv, csb := cedarSet(tb, cedarKV), cedarSet(tb, cedarSB)
	h, ch := hundred(tb)
	kvPath := "kv://kv-prod-finance-001/secrets/agent/app/db-password"
	prodPath := "kv://kv-prod-finance-001/secrets/prod/db-password"
	sbCtx := policy.MapContext{"ServiceBus:MessageBytes": "2048", "ServiceBus:MessagesSentInJob": "3",
		"ServiceBus:AppProperty.schema_version": "3", "ServiceBus:AppProperty.correlation_id": "c-1"}
	sbCedar := cedar.RecordMap{"path": cedar.String("sb://sb-orders-001/orders-staging"), "bytes": cedar.Long(2048), "sent": cedar.Long(3),
		"family": cedar.String("send"), "approved": cedar.False,
		"props": cedar.NewRecord(cedar.RecordMap{"schema_version": cedar.String("3"), "correlation_id": cedar.String("c-1")})}
	return []scenario{
		{"kv-get-allowed", kv, policy.Request{Action: "keyvault:secrets.get", Resource: kvPath, Context: policy.MapContext{}},
			ckv, cedarReq("keyvault:secrets.get", cedar.RecordMap{"path": cedar.String(kvPath), "family": cedar.String("secrets"), "approved": cedar.False}), true},
		{"kv-get-prod-denied", kv, policy.Request{Action: "keyvault:secrets.get", Resource: prodPath, Context: policy.MapContext{}},
			ckv, cedarReq("keyvault:secrets.get", cedar.RecordMap{"path": cedar.String(prodPath), "family": cedar.String("secrets"), "approved": cedar.False}), false},
		{"sb-send-allowed", sb, policy.Request{Action: "servicebus:send", Resource: "sb://sb-orders-001/orders-staging", Context: sbCtx},
			csb, cedarReq("servicebus:send", sbCedar), true},
		{"hundred-last-statement", h, policy.Request{Action: "svc:op99", Resource: "res://svc99/item/1", Context: policy.MapContext{}},
			ch, cedarReq("svc:op99", cedar.RecordMap{"path": cedar.String("res://svc99/item/1")}), true},
		{"hundred-no-match", h, policy.Request{Action: "svc:op100", Resource: "res://svc100/x", Context: policy.MapContext{}},
			ch, cedarReq("svc:op100", cedar.RecordMap{"path": cedar.String("res://svc100/x")}), false},
	}
}

func TestSameDecisions(t *testing.T) {
	for _, sc := range scenarios(t) {
		var d policy.Decision
		sc.ours.Evaluate(&sc.req, &d)
		cd, diag := cedar.Authorize(sc.cedar, cedar.EntityMap{}, sc.creq)
		if len(diag.Errors) > 0 {
			t.Errorf("%s: cedar errors %v", sc.name, diag.Errors)
		}
		if (d.Effect == policy.Allow) != sc.allowed || bool(cd) != sc.allowed {
			t.Errorf("%s: clawea %s, cedar %v, want allowed=%v", sc.name, d.Effect, cd, sc.allowed)
		}
	}
}

// BenchmarkDecision evaluates each scenario with both engines in the same
// run: clawea/<scenario> and cedar/<scenario>.
func BenchmarkDecision(b *testing.B) {
	for _, sc := range scenarios(b) {
		b.Run("clawea/"+sc.name, func(b *testing.B) {
			var d policy.Decision
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sc.ours.Evaluate(&sc.req, &d)
			}
		})
		b.Run("cedar/"+sc.name, func(b *testing.B) {
			entities := cedar.EntityMap{}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				cedar.Authorize(sc.cedar, entities, sc.creq)
			}
		})
	}
}
