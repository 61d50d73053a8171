package policy

import (
	"testing"
)

// TestConditionKeysAnyCase: a condition key written in another case than
// the gateways set it means the same key: the Deny fires, References finds
// it, and lint says what it was compiled to. An unknown key is flagged.
func TestConditionKeysAnyCase(t *testing.T) {
	doc := mustParse(t, `{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x","statements":[
		{"sid":"All","effect":"Allow","actions":["*"],"resources":["**"]},
		{"sid":"NoProd","effect":"Deny","actions":["keyvault:secrets.get"],"resources":["**"],
		 "conditions":{"StringLike":{"keyvault:secretname":"prod/**"}}},
		{"sid":"Cap","effect":"Deny","actions":["servicebus:send"],"resources":["**"],
		 "conditions":{"NumericGreaterThan":{"SERVICEBUS:MESSAGESSENTINJOB":"2"}}},
		{"sid":"Prop","effect":"Deny","actions":["servicebus:send"],"resources":["**"],
		 "conditions":{"StringEquals":{"servicebus:appproperty.Env":"prod"}}},
		{"sid":"Typo","effect":"Deny","actions":["servicebus:send"],"resources":["**"],
		 "conditions":{"StringEquals":{"ServiceBus:Enitty":"x"}}}]}`)
	p, err := Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	decide := func(action, res string, ctx map[string]string) Effect {
		var d Decision
		p.Evaluate(&Request{Action: action, Resource: res, Context: MapContext(ctx)}, &d)
		return d.Effect
	}
	if got := decide("keyvault:secrets.get", "kv://v/secrets/prod/db", map[string]string{"KeyVault:SecretName": "prod/db"}); got != Deny {
		t.Errorf("lower-case key: %v, want Deny", got)
	}
	if !p.References("ServiceBus:MessagesSentInJob") || !p.References("servicebus:messagessentinjob") {
		t.Error("References misses a key written in another case")
	}
	if got := decide("servicebus:send", "sb://ns/q", map[string]string{"ServiceBus:MessagesSentInJob": "3"}); got != Deny {
		t.Errorf("upper-case key: %v, want Deny", got)
	}
	// The prefix is matched in any case, and the property name compiled
	// in lower case, as the gateway sets it.
	if got := decide("servicebus:send", "sb://ns/q", map[string]string{"ServiceBus:AppProperty.env": "prod"}); got != Deny {
		t.Errorf("property key: %v, want Deny", got)
	}
	if got := decide("servicebus:send", "sb://ns/q", map[string]string{"ServiceBus:AppProperty.envx": "prod"}); got != Allow {
		t.Errorf("another property name: %v, want Allow", got)
	}
	codes := map[string]int{}
	for _, w := range Lint(doc) {
		codes[w.Code]++
	}
	if codes[WarnConditionKeyCase] != 3 || codes[WarnConditionKeyUnknown] != 1 {
		t.Errorf("lint codes %v", codes)
	}
}

func TestCanonicalKey(t *testing.T) {
	for in, want := range map[string]string{
		"keyvault:vault":                "KeyVault:Vault",
		"Request:HasHumanApproval":      ApprovalKey,
		"SERVICEBUS:APPPROPERTY.Tenant": "ServiceBus:AppProperty.tenant",
		"ServiceBus:AppProperty.":       "ServiceBus:AppProperty.",
		"Custom:Thing":                  "Custom:Thing",
		"keyvault:vault\u200b":          "keyvault:vault\u200b",
		"\u212aeyVault:Vault":           "\u212aeyVault:Vault", // no Unicode folding
	} {
		if got, _ := CanonicalKey(in); got != want {
			t.Errorf("CanonicalKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClaimKeys: the runtime's unproven claims compile as known keys in
// any case; an Allow conditioned on one is flagged, a Deny on one is not,
// and a Claim: key no gateway sets is unknown.
func TestClaimKeys(t *testing.T) {
	doc := mustParse(t, `{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x","statements":[
		{"sid":"ExecIfClaimed","effect":"Allow","actions":["tool:execute"],"resources":["tool://openclaw/exec"],
		 "conditions":{"Bool":{"claim:runtime:sandboxed":"true"}}},
		{"sid":"ExecIfProven","effect":"Allow","actions":["tool:execute"],"resources":["tool://openclaw/exec"],
		 "conditions":{"Bool":{"Runtime:Sandboxed":"true"}}},
		{"sid":"NoElevated","effect":"Deny","actions":["tool:execute"],"resources":["**"],
		 "conditions":{"Bool":{"Claim:Runtime:Elevated":"true"}}},
		{"sid":"Typo","effect":"Deny","actions":["tool:execute"],"resources":["**"],
		 "conditions":{"Bool":{"Claim:Runtime:Sandboxd":"true"}}}]}`)
	p, err := Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	decide := func(ctx map[string]string) Effect {
		var d Decision
		p.Evaluate(&Request{Action: "tool:execute", Resource: "tool://openclaw/exec", Context: MapContext(ctx)}, &d)
		return d.Effect
	}
	if got := decide(map[string]string{"Claim:Runtime:Sandboxed": "true"}); got != Allow {
		t.Errorf("claim in another case: %v, want Allow", got)
	}
	if got := decide(map[string]string{"Claim:Runtime:Sandboxed": "true", "Claim:Runtime:Elevated": "true"}); got != Deny {
		t.Errorf("deny on a claim: %v, want Deny", got)
	}
	var paths []string
	codes := map[string]int{}
	for _, w := range Lint(doc) {
		codes[w.Code]++
		if w.Code == WarnAllowOnClaim {
			paths = append(paths, w.Path)
		}
	}
	if codes[WarnAllowOnClaim] != 1 || len(paths) != 1 || paths[0] != "statements[0].conditions.Bool.claim:runtime:sandboxed" {
		t.Errorf("ALLOW_ON_UNPROVEN_CLAIM: %v %v", codes, paths)
	}
	if codes[WarnConditionKeyUnknown] != 1 || codes[WarnConditionKeyCase] != 1 {
		t.Errorf("lint codes %v", codes)
	}
	for in, want := range map[string]bool{"Claim:Runtime:Sandboxed": true, "CLAIM:x": true, "Claim:": true, "Claim": false, "Runtime:Sandboxed": false} {
		if IsClaimKey(in) != want {
			t.Errorf("IsClaimKey(%q) != %v", in, want)
		}
	}
}
