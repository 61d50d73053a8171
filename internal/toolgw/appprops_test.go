package toolgw_test

import (
	"context"
	"testing"

	"github.com/clawea/clawea/internal/connector/localbus"
	"github.com/clawea/clawea/internal/toolgw"
)

// Application property names are data the policy tests
// (ServiceBus:AppProperty.<name>) and the consumer reads: both must see the
// same names. Names are case-sensitive on the wire, so the policy tests them
// as written, and a message whose names differ only in case, or hold
// characters that look alike, is refused.
func TestApplicationPropertyNames(t *testing.T) {
	e := startWith(t, toolgw.Options{}, []string{"sb-orders"})
	pol := []byte(`{
  "policy_version": "2", "policy_id": "app-props", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "SendTenant", "effect": "Allow", "actions": ["servicebus:send", "servicebus:peek"], "resources": ["sb://sb-orders/*"],
     "conditions": {"StringEquals": {"ServiceBus:AppProperty.tenant": "contoso"}}},
    {"sid": "SendSubs", "effect": "Allow", "actions": ["servicebus:send"], "resources": ["sb://sb-orders/events/subscriptions/*"]},
    {"sid": "NoProd", "effect": "Deny", "actions": ["servicebus:send"], "resources": ["**"],
     "conditions": {"StringEquals": {"ServiceBus:AppProperty.env": "prod"}}}
  ]}`)
	_, tok := e.job(e.publish(pol))
	call := (&canonEnv{env: e, tok: tok}).viaJSON(t)
	send := func(props map[string]any) string {
		return call("servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "q1", "body": "x", "application_properties": props}).code
	}
	cases := []struct {
		name  string
		props map[string]any
		want  string
	}{
		{"allowed", map[string]any{"tenant": "contoso"}, ""},
		{"denied by its value", map[string]any{"tenant": "contoso", "env": "prod"}, toolgw.CodePolicyDenied},
		// A Deny on a name holds whatever case the sender used.
		{"denied in another case", map[string]any{"tenant": "contoso", "ENV": "prod"}, toolgw.CodePolicyDenied},
		// Names that differ only in case would let the policy and the
		// consumer read different values.
		{"names differing in case", map[string]any{"tenant": "contoso", "env": "prod", "ENV": "dev"}, toolgw.CodeInvalidArguments},
		{"names differing in case, allowed values", map[string]any{"tenant": "contoso", "Tenant": "x"}, toolgw.CodeInvalidArguments},
		{"kelvin sign", map[string]any{"tenant": "contoso", "\u212aind": "other"}, toolgw.CodeInvalidArguments},
		{"zero-width", map[string]any{"tenant": "contoso", "en\u200bv": "prod"}, toolgw.CodeInvalidArguments},
		{"space", map[string]any{"tenant": "contoso", "e nv": "prod"}, toolgw.CodeInvalidArguments},
		{"control", map[string]any{"tenant": "contoso", "env\x00": "prod"}, toolgw.CodeInvalidArguments},
	}
	for _, c := range cases {
		// Many tries: the old code's outcome depended on map order.
		for range 8 {
			if got := send(c.props); got != c.want {
				t.Fatalf("%s: %q, want %q", c.name, got, c.want)
			}
		}
	}
	bus := localbus.New(e.node.Store, "sb-orders", localbus.Options{})
	ms, _ := bus.Peek(context.Background(), "q1", 100)
	for _, m := range ms {
		if m.Properties["env"] == "prod" || m.Properties["ENV"] == "prod" || m.Properties["tenant"] != "contoso" {
			t.Fatalf("a message the policy should have refused was sent: %v", m.Properties)
		}
	}
	// The local bus, like Azure, refuses a send into a subscription.
	if got := call("servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "events/subscriptions/audit", "body": "x",
		"application_properties": map[string]any{"tenant": "contoso"}}).code; got == "" {
		t.Fatal("a message was sent into a subscription")
	}
}
