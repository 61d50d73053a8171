package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

// foldDoc builds a policy "allow <allow>, deny <deny>" on keyvault:* and
// servicebus:* actions, with optional conditions on the deny.
func foldDoc(t testing.TB, allow, deny string, denyConds map[string]map[string]string) *Policy {
	t.Helper()
	st := []map[string]any{
		{"sid": "AllowBroad", "effect": "Allow", "actions": []string{"keyvault:*", "servicebus:*"}, "resources": []string{allow}},
		{"sid": "DenyProd", "effect": "Deny", "actions": []string{"keyvault:*", "servicebus:*"}, "resources": []string{deny}},
	}
	if denyConds != nil {
		st[1]["conditions"] = denyConds
	}
	raw, _ := json.Marshal(map[string]any{"policy_version": "2", "policy_id": "fold", "issuer_did": "did:web:example.com", "statements": st})
	doc, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decide(p *Policy, action, resource string, ctx MapContext) Effect {
	var d Decision
	p.Evaluate(&Request{Action: action, Resource: resource, Context: ctx}, &d)
	return d.Effect
}

// TestFoldedPatternsMeanTheSame: whatever case the author typed, a pattern
// decides canonical (lower-case) requests as its lower-case spelling does,
// and a request in another case gets the canonical request's decision.
func TestFoldedPatternsMeanTheSame(t *testing.T) {
	for _, c := range []struct{ allow, deny, action, prodRes, otherRes string }{
		{"kv://kv-prod/secrets/**", "kv://kv-prod/secrets/prod/**", "keyvault:secrets.get", "kv://kv-prod/secrets/prod/db", "kv://kv-prod/secrets/agent/db"},
		{"kv://KV-Prod/Secrets/**", "kv://KV-PROD/secrets/PROD/**", "keyvault:secrets.get", "kv://kv-prod/secrets/prod/db", "kv://kv-prod/secrets/agent/db"},
		{"KV://kv-prod/secrets/**", "**/Secrets/PROD/**", "keyvault:secrets.get", "kv://kv-prod/secrets/prod/db", "kv://kv-prod/secrets/agent/db"},
		{"sb://sb-orders/*", "sb://*/orders-prod", "servicebus:send", "sb://sb-orders/orders-prod", "sb://sb-orders/orders-staging"},
		{"sb://SB-Orders/*", "sb://*/Orders-PROD", "servicebus:send", "sb://sb-orders/orders-prod", "sb://sb-orders/orders-staging"},
		{"SB://sb-orders/*", "sb://sb-orders/Orders-?rod", "servicebus:send", "sb://sb-orders/orders-prod", "sb://sb-orders/orders-staging"},
	} {
		p := foldDoc(t, c.allow, c.deny, nil)
		for _, res := range []string{c.prodRes, strings.ToUpper(c.prodRes), strings.Replace(c.prodRes, "prod", "PrOd", -1)} {
			if e := decide(p, c.action, res, nil); e != Deny {
				t.Errorf("allow %q deny %q: %s on %s = %s, want deny", c.allow, c.deny, c.action, res, e)
			}
		}
		if e := decide(p, c.action, c.otherRes, nil); e != Allow {
			t.Errorf("allow %q deny %q: %s on %s = %s, want allow", c.allow, c.deny, c.action, c.otherRes, e)
		}
	}
	// Other resource kinds are matched as written.
	p := foldDoc(t, "**", "model://OpenAI/**", nil)
	if e := decide(p, "keyvault:x", "model://openai/gpt", nil); e != Allow {
		t.Errorf("model:// folded: %s", e)
	}
	// The fold is ASCII-only: U+212A KELVIN SIGN is not 'k'.
	p = foldDoc(t, "kv://kv-prod/secrets/**", "kv://kv-prod/secrets/\u212aey", nil)
	if e := decide(p, "keyvault:x", "kv://kv-prod/secrets/key", nil); e != Allow {
		t.Errorf("Kelvin sign folded onto k: %s", e)
	}
}

func TestFoldedConditionValues(t *testing.T) {
	conds := map[string]map[string]string{"StringLike": {"KeyVault:SecretName": "PROD/*"}}
	p := foldDoc(t, "kv://kv-prod/secrets/**", "kv://kv-prod/secrets/**", conds)
	for _, name := range []string{"prod/db", "PROD/db", "Prod/DB"} {
		if e := decide(p, "keyvault:secrets.get", "kv://kv-prod/secrets/"+strings.ToLower(name), MapContext{"KeyVault:SecretName": name}); e != Deny {
			t.Errorf("StringLike PROD/* on %q: %s", name, e)
		}
	}
	conds = map[string]map[string]string{"StringEquals": {"ServiceBus:Entity": "Orders-Prod"}}
	p = foldDoc(t, "sb://sb-orders/*", "sb://sb-orders/*", conds)
	if e := decide(p, "servicebus:send", "sb://sb-orders/orders-prod", MapContext{"ServiceBus:Entity": "orders-prod"}); e != Deny {
		t.Errorf("StringEquals Orders-Prod: %s", e)
	}
	// Keys that are not connector names are compared as written.
	conds = map[string]map[string]string{"StringEquals": {"ServiceBus:Subject": "Refund"}}
	p = foldDoc(t, "sb://sb-orders/*", "sb://sb-orders/*", conds)
	if e := decide(p, "servicebus:send", "sb://sb-orders/q", MapContext{"ServiceBus:Subject": "refund"}); e != Allow {
		t.Errorf("ServiceBus:Subject folded: %s", e)
	}
}

func TestFoldKeepsHashAsWritten(t *testing.T) {
	a, b := foldDoc(t, "kv://v/secrets/**", "kv://v/secrets/PROD/**", nil), foldDoc(t, "kv://v/secrets/**", "kv://v/secrets/prod/**", nil)
	if a.Hash() == b.Hash() {
		t.Error("two documents that differ in case have one hash")
	}
}

func TestLintFolded(t *testing.T) {
	raw := `{"policy_version":"2","policy_id":"p","issuer_did":"did:web:example.com","statements":[
	 {"sid":"A","effect":"Allow","actions":["keyvault:*"],"resources":["kv://v/secrets/**","model://OpenAI/*"]},
	 {"sid":"D","effect":"Deny","actions":["keyvault:*"],"resources":["kv://v/secrets/PROD/**","**/Breakglass/**","kv://v/secrets/ｐrod/**"],
	  "conditions":{"StringEquals":{"KeyVault:Vault":"V","ServiceBus:Subject":"Keep"}}}]}`
	doc := mustParse(t, raw)
	got := map[string]string{}
	for _, w := range Lint(doc) {
		got[w.Path] += w.Code + " "
	}
	want := map[string]string{
		"statements[1].resources[0]":                           WarnResourcePatternFolded + " ",
		"statements[1].resources[1]":                           WarnResourcePatternFolded + " ",
		"statements[1].resources[2]":                           WarnResourcePatternUnmatchable + " ",
		"statements[1].conditions.StringEquals.KeyVault:Vault": WarnConditionValueFolded + " ",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("lint at %s: %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("lint: %v", got)
	}
}

// FuzzFoldedDecision: for any pattern and name, a kv:// or sb:// request
// gets the decision of its folded spelling, and a pattern decides as its
// folded spelling does.
func FuzzFoldedDecision(f *testing.F) {
	f.Add("prod/**", "PROD/db")
	f.Add("Orders-?rod", "orders-prod")
	f.Add("*/X*", "a/xy")
	f.Fuzz(func(t *testing.T, pat, name string) {
		if checkGlob(pat) != nil || strings.ContainsAny(name, "\n\r") {
			return
		}
		for _, scheme := range []string{"kv://v/secrets/", "sb://ns/"} {
			mk := func(p string) *Policy {
				raw, _ := json.Marshal(map[string]any{"policy_version": "2", "policy_id": "f", "issuer_did": "did:web:example.com",
					"statements": []map[string]any{{"sid": "s", "effect": "Allow", "actions": []string{"*"}, "resources": []string{scheme + p}}}})
				doc, err := Parse(raw)
				if err != nil {
					return nil
				}
				pol, err := Compile(doc, nil)
				if err != nil {
					t.Fatal(err)
				}
				return pol
			}
			p, pf := mk(pat), mk(foldASCII(pat))
			if p == nil || pf == nil {
				return
			}
			res := scheme + name
			e := decide(p, "a", res, nil)
			if e2 := decide(p, "a", scheme+foldASCII(name), nil); e != e2 {
				t.Fatalf("%q on %q: %s, on its folded spelling %s", pat, res, e, e2)
			}
			if e3 := decide(pf, "a", res, nil); e != e3 {
				t.Fatalf("%q on %q: %s, folded pattern %s", pat, res, e, e3)
			}
		}
	})
}
