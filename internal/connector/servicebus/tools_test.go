package servicebus

import (
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/policy"
)

// nsOnly is a Bus that only has a name (Prepare never reaches the bus).
type nsOnly struct {
	Bus
	name string
}

func (n nsOnly) Namespace() string { return n.name }

func sbTools(t testing.TB) map[string]*connector.Tool {
	s, err := NewTools([]Bus{nsOnly{name: "sb-orders"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*connector.Tool{}
	for _, tl := range s.Tools() {
		out[tl.Name] = tl
	}
	return out
}

func prepare(tl *connector.Tool, raw string) (*connector.Call, *connector.Args, *connector.Error) {
	v, err := canon.Parse([]byte(raw))
	if err != nil || !v.IsObject() {
		return nil, nil, nil
	}
	a := connector.NewArgs(v)
	a.Closed(tl)
	if a.Err() != nil {
		return nil, a, a.Err()
	}
	c, e := tl.Prepare(a)
	return c, a, e
}

func TestNewToolsRefusesTwoSpellings(t *testing.T) {
	if _, err := NewTools([]Bus{nsOnly{name: "sb-orders"}, nsOnly{name: "SB-Orders"}}); err == nil || !strings.Contains(err.Error(), "configured twice") {
		t.Errorf("two spellings: %v", err)
	}
	if s, _ := NewTools(nil); len(s.Tools()) != 0 {
		t.Error("tools without a namespace")
	}
}

func TestPrepare(t *testing.T) {
	tools := sbTools(t)
	c, a, e := prepare(tools["servicebus_send"], `{"namespace":"SB-Orders","entity":"Orders","body":"x","application_properties":{"Tier":"gold","n":2}}`)
	if e != nil {
		t.Fatal(e)
	}
	if c.Resource != "sb://sb-orders/orders" || c.Context["ServiceBus:AppProperty.tier"] != "gold" || c.Context["ServiceBus:AppProperty.n"] != "2" || c.Mutating {
		t.Errorf("send: %+v", c)
	}
	if got := string(canon.AppendCompact(nil, &a.V)); !strings.HasPrefix(got, `{"namespace":"sb-orders","entity":"orders",`) {
		t.Errorf("arguments: %s", got)
	}
	if cnt := tools["servicebus_send"].Counts; len(cnt) != 2 || cnt[0].Key != KeyMessagesSent || cnt[1].Key != KeySentInMinute || cnt[1].Window != time.Minute {
		t.Errorf("send counter: %+v", cnt)
	}
	c, _, e = prepare(tools["servicebus_receive"], `{"namespace":"sb-orders","entity":"q","mode":"receive_and_delete"}`)
	if e != nil || !c.Mutating {
		t.Errorf("receive_and_delete is a write: %v %+v", e, c)
	}
	c, _, e = prepare(tools["servicebus_receive"], `{"namespace":"sb-orders","entity":"q","mode":"peek_lock"}`)
	if e != nil || c.Mutating {
		t.Errorf("peek_lock is not a write: %v %+v", e, c)
	}
	c, _, e = prepare(tools["servicebus_deadletter_read"], `{"namespace":"sb-orders","entity":"t/subscriptions/S"}`)
	if e != nil || c.Resource != "sb://sb-orders/t/subscriptions/s/$deadletterqueue" {
		t.Errorf("dead-letter: %v %+v", e, c)
	}
	for raw, code := range map[string]string{
		`{"namespace":"sb-nowhere","entity":"q","body":"x"}`:                                       CodeUnknownNamespace,
		`{"namespace":"sb-orders","entity":"q","body":"x","application_properties":{"A":1,"a":2}}`: connector.CodeInvalidArguments,
		`{"namespace":"sb-orders","entity":"q","body":"x","application_properties":{"a b":1}}`:     connector.CodeInvalidArguments,
		`{"namespace":"sb-orders","entity":"q","body":"x","application_properties":{"a":{"b":1}}}`: connector.CodeInvalidArguments,
		`{"namespace":"sb-orders","entity":"q/../x","body":"x"}`:                                   connector.CodeInvalidArguments,
		`{"namespace":"sb-orders","entity":"q","body":"x","application_properties":[1]}`:           connector.CodeInvalidArguments,
	} {
		if _, _, e := prepare(tools["servicebus_send"], raw); e == nil || e.Code != code {
			t.Errorf("%s: %v, want %s", raw, e, code)
		}
	}
}

func TestContextKeysKnownToPolicy(t *testing.T) {
	tools := sbTools(t)
	for name, raw := range map[string]string{
		"servicebus_send":    `{"namespace":"sb-orders","entity":"q","body":"x","subject":"s","content_type":"t","application_properties":{"k":"v"}}`,
		"servicebus_receive": `{"namespace":"sb-orders","entity":"q","mode":"peek_lock"}`,
	} {
		c, _, e := prepare(tools[name], raw)
		if e != nil {
			t.Fatal(name, e)
		}
		for k := range c.Context {
			if ck, ok := policy.CanonicalKey(k); !ok || ck != k {
				t.Errorf("%s sets %s, which the policy language does not know", name, k)
			}
		}
	}
	if ck, ok := policy.CanonicalKey(KeyMessagesSent); !ok || ck != KeyMessagesSent {
		t.Errorf("%s is unknown to the policy language", KeyMessagesSent)
	}
}

// FuzzPrepare feeds untrusted arguments to every Service Bus tool: it
// never panics, refuses with INVALID_ARGUMENTS or UNKNOWN_NAMESPACE, and
// otherwise decides on a canonical resource of the configured namespace;
// application properties reach the context under lower-case names only.
func FuzzPrepare(f *testing.F) {
	for _, s := range []string{`{"namespace":"sb-orders","entity":"q","body":"x","application_properties":{"A":1,"b":true}}`,
		`{"namespace":"SB-ORDERS","entity":"T/Subscriptions/S","mode":"receive_and_delete","max":3}`, `{"namespace":"sb-orders","entity":"q","lock_token":"x","reason":"r"}`,
		`{"namespace":"sb-orders","entity":"q\u0000"}`, `{}`} {
		f.Add(s)
	}
	tools := sbTools(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, tl := range tools {
			c, a, e := prepare(tl, raw)
			if a == nil {
				return
			}
			if e != nil {
				if e.Code != connector.CodeInvalidArguments && e.Code != CodeUnknownNamespace {
					t.Fatalf("%s: code %s", tl.Name, e.Code)
				}
				continue
			}
			ent := a.V.Get("entity").Str
			if ce, err := CanonicalEntity(ent); err != nil || ce != ent || !strings.HasPrefix(c.Resource, "sb://sb-orders/"+ent) || c.Run == nil {
				t.Fatalf("%s: entity %q resource %s", tl.Name, ent, c.Resource)
			}
			for k := range c.Context {
				if strings.HasPrefix(k, "ServiceBus:AppProperty.") && strings.ToLower(k[len("ServiceBus:AppProperty."):]) != k[len("ServiceBus:AppProperty."):] {
					t.Fatalf("%s: key %q", tl.Name, k)
				}
			}
		}
	})
}
