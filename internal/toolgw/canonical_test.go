package toolgw_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/localbus"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/toolgw"
)

// The acceptance policy of issue P6 item 1: a broad Allow with a narrower
// Deny, for Key Vault and Service Bus, plus a listing, a subscription pair
// and an approval-gated write, so that every connector resource kind has
// an object the policy decides on.
const canonPolicy = `{
  "policy_version": "2", "policy_id": "canonical-names", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "AllowSecrets", "effect": "Allow", "actions": ["keyvault:secrets.get", "keyvault:secrets.reveal", "keyvault:secrets.list_versions"],
     "resources": ["kv://kv-prod-finance-001/secrets/**"]},
    {"sid": "DenyProd", "effect": "Deny", "actions": ["keyvault:*"], "resources": ["kv://kv-prod-finance-001/secrets/prod/**"]},
    {"sid": "AllowListing", "effect": "Allow", "actions": ["keyvault:secrets.list"], "resources": ["kv://kv-prod-finance-001/secrets"]},
    {"sid": "AllowWritesWithApproval", "effect": "Allow", "actions": ["keyvault:secrets.set"],
     "resources": ["kv://kv-prod-finance-001/secrets/agent/**"], "conditions": {"Bool": {"Request:HasHumanApproval": "true"}}},
    {"sid": "AllowNamespace", "effect": "Allow", "actions": ["servicebus:send", "servicebus:peek"], "resources": ["sb://sb-orders/*"]},
    {"sid": "DenyOrdersProd", "effect": "Deny", "actions": ["servicebus:*"], "resources": ["sb://*/orders-prod"]},
    {"sid": "AllowAuditSubs", "effect": "Allow", "actions": ["servicebus:peek"], "resources": ["sb://sb-orders/events/subscriptions/*"]},
    {"sid": "DenyProdSub", "effect": "Deny", "actions": ["servicebus:peek"], "resources": ["sb://sb-orders/events/subscriptions/audit-prod"]}
  ]}`

const (
	canonVault = "kv-prod-finance-001"
	canonNS    = "sb-orders"
)

// spellings returns ways to write name: case variants (the same object to
// Azure) and look-alikes (padding, percent-encoding, NUL, zero-width and
// full-width characters, Unicode case folding, path tricks) that clawea
// must refuse. caseOnly is the subset that differ from name only in ASCII
// case: they must be accepted. With kv, the spellings Key Vault's name
// mapping could confuse ("--" is the separator a '/' becomes) are added;
// on Service Bus "a--b" is simply another entity.
func spellings(name string, kv bool) (all, caseOnly []string) {
	caseOnly = []string{strings.ToUpper(name), title(name), alternate(name)}
	all = append([]string{}, caseOnly...)
	all = append(all,
		name+" ", " "+name, name+"\t", name+"\n", name+"\x00", "\x00"+name,
		strings.Replace(name, "-", "%2D", 1), strings.Replace(name, "-", "%2d", 1), strings.Replace(name, "/", "%2F", 1),
		strings.Replace(name, "-", "\u200b-", 1), "\u200b"+name, name+"\ufeff", "\u00ad"+name,
		fullWidth(name), fullWidth(name[:1])+name[1:],
		strings.Replace(name, "k", "\u212a", 1), // KELVIN SIGN folds to k in Unicode
		strings.Replace(name, "s", "\u017f", 1), // LONG S folds to s
		strings.Replace(name, "i", "\u0131", 1), // dotless i
		strings.Replace(name, "-", "\u2010", 1), // HYPHEN
		strings.Replace(name, "-", "\u2011", 1), // NON-BREAKING HYPHEN
		strings.Replace(name, "/", "//", 1), "./"+name, name+"/", "/"+name, name+"/.",
		"x/../"+name, strings.Replace(name, "/", "/./", 1), strings.Replace(name, "/", "\\", 1),
		name+"/$DeadLetterQueue", name+"%00", name+"\u0301",
	)
	if kv {
		all = append(all, strings.Replace(name, "-", "--", 1), strings.Replace(name, "/", "--", 1),
			strings.ToUpper(strings.Replace(name, "/", "--", 1)), strings.Replace(name, "/", "---", 1))
	}
	return all, caseOnly
}

func title(s string) string {
	b := []byte(s)
	up := true
	for i, c := range b {
		if up && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '/' || c == '-'
	}
	return string(b)
}

func alternate(s string) string {
	b := []byte(s)
	for i, c := range b {
		if i%2 == 1 && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f {
			r += 0xfee0
		}
		b.WriteRune(r)
	}
	return b.String()
}

// canonEnv is a node with the dev vault (the real azsecrets client inside
// the gateway) and a local bus, and a job under canonPolicy.
type canonEnv struct {
	*env
	srv   *devvault.Server
	jobID string
	tok   string
}

func startCanon(t *testing.T) *canonEnv {
	t.Helper()
	srv, err := devvault.New(devvault.Options{Vault: canonVault})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	kv, err := srv.Conn().Client()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"prod/db-password", "prod/api-key", "prod/service", "agent/app/db-password"} {
		if _, err := kv.Set(context.Background(), p, "value-of-"+p, "text/plain"); err != nil {
			t.Fatal(err)
		}
	}
	e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{kv}}, []string{canonNS})
	jobID, tok := e.job(e.publish([]byte(canonPolicy)))
	return &canonEnv{env: e, srv: srv, jobID: jobID, tok: tok}
}

// outcome is a call's result: the error code ("" when it ran), the error
// message, and the output.
type outcome struct {
	code, msg string
	out       map[string]any
}

type caller func(tool string, args map[string]any) outcome

func (e *canonEnv) viaMCP(t *testing.T) caller {
	cs := e.mcpSession(e.tok)
	return func(tool string, args map[string]any) outcome {
		a := call(t, cs, tool, args)
		msg, _ := a.errObj["message"].(string)
		return outcome{code: a.code(), msg: msg, out: a.out}
	}
}

func (e *canonEnv) viaJSON(t *testing.T) caller {
	return func(tool string, args map[string]any) outcome {
		body, _ := json.Marshal(map[string]any{"tool": tool, "arguments": args})
		req, _ := http.NewRequest("POST", e.url+"/v1/tools/call", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+e.tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var r struct {
			Error  *toolgw.Error   `json:"error"`
			Output json.RawMessage `json:"output"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s: %s", tool, raw)
		}
		if r.Error != nil {
			return outcome{code: r.Error.Code, msg: r.Error.Msg}
		}
		var out map[string]any
		json.Unmarshal(r.Output, &out)
		return outcome{out: out}
	}
}

// resourceKind is one connector resource kind: a tool, the argument that
// names the object, the other arguments, and a denied and an allowed
// object with the decision the canonical spelling gets.
type resourceKind struct {
	name    string
	tool    string
	arg     string
	base    map[string]any
	objects []string
}

func kinds() []resourceKind {
	kv := map[string]any{"vault": canonVault}
	sb := map[string]any{"namespace": canonNS}
	return []resourceKind{
		{"secret", "keyvault_reveal_secret", "name", kv, []string{"prod/db-password", "prod/api-key", "prod/service", "agent/app/db-password"}},
		{"secret versions", "keyvault_list_versions", "name", kv, []string{"prod/db-password", "agent/app/db-password"}},
		{"vault of a secret", "keyvault_reveal_secret", "vault", map[string]any{"name": "prod/db-password"}, []string{canonVault}},
		{"vault listing", "keyvault_list_secrets", "vault", map[string]any{}, []string{canonVault}},
		{"entity", "servicebus_send", "entity", map[string]any{"namespace": canonNS, "body": "x"}, []string{"orders-prod", "orders-staging"}},
		{"namespace", "servicebus_send", "namespace", map[string]any{"entity": "orders-prod", "body": "x"}, []string{canonNS}},
		{"subscription", "servicebus_peek", "entity", sb, []string{"events/subscriptions/audit-prod", "events/subscriptions/audit"}},
	}
}

func with(base map[string]any, k string, v any) map[string]any {
	m := map[string]any{}
	for a, b := range base {
		m[a] = b
	}
	m[k] = v
	return m
}

// TestEverySpellingGetsTheCanonicalDecision is the property of issue P6
// item 1 for every connector resource kind, through MCP and the JSON API:
// any spelling of an object is either refused with INVALID_ARGUMENTS before
// a decision, or decided exactly as the canonical spelling; spellings that
// differ only in case (the same object to Azure) are never refused; and no
// spelling of a prod secret's name is served.
func TestEverySpellingGetsTheCanonicalDecision(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev vault and a node")
	}
	e := startCanon(t)
	for _, via := range []struct {
		name string
		c    caller
	}{{"mcp", e.viaMCP(t)}, {"json", e.viaJSON(t)}} {
		t.Run(via.name, func(t *testing.T) {
			for _, k := range kinds() {
				for _, obj := range k.objects {
					want := via.c(k.tool, with(k.base, k.arg, obj))
					if want.code != "" && want.code != toolgw.CodePolicyDenied {
						t.Fatalf("%s %q: canonical spelling got %s %s", k.name, obj, want.code, want.msg)
					}
					all, caseOnly := spellings(obj, strings.HasPrefix(k.tool, "keyvault_"))
					for _, s := range all {
						got := via.c(k.tool, with(k.base, k.arg, s))
						if got.code == toolgw.CodeInvalidArguments {
							for _, c := range caseOnly {
								if c == s {
									t.Errorf("%s: %+q differs from %q only in case but was refused: %s", k.name, s, obj, got.msg)
								}
							}
							continue
						}
						if got.code != want.code {
							t.Errorf("%s: %+q got %q (%s); the canonical %q got %q", k.name, s, got.code, got.msg, obj, want.code)
						}
						if v, _ := got.out["value"].(string); strings.Contains(v, "value-of-prod/") {
							t.Errorf("%s: %+q served a prod secret", k.name, s)
						}
						if want.out != nil && got.out != nil && k.tool == "keyvault_reveal_secret" && got.out["value"] != want.out["value"] {
							t.Errorf("%s: %+q read %v, the canonical spelling %v", k.name, s, got.out["value"], want.out["value"])
						}
					}
				}
			}
		})
	}

	// No spelling reached the prod entity: it holds no message.
	bus := localbus.New(e.node.Store, canonNS, localbus.Options{})
	if ms, err := bus.Peek(context.Background(), "orders-prod", 100); err != nil || len(ms) != 0 {
		t.Errorf("orders-prod holds %d messages (%v)", len(ms), err)
	}
	if ms, err := bus.Peek(context.Background(), "orders-staging", 100); err != nil || len(ms) == 0 {
		t.Errorf("orders-staging holds no message (%v): the allowed sends did not run", err)
	}
}

// TestAcceptanceKeyVault: under "allow secrets/**, deny secrets/prod/**"
// no spelling of a prod secret's name is served through MCP or the JSON
// API, while the dev vault itself, through the real azsecrets client,
// does resolve another case to the prod secret (so the bypass would be
// real without canonical names). Allowed calls report the canonical name
// in the output, the redaction label and the denial message.
func TestAcceptanceKeyVault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev vault and a node")
	}
	e := startCanon(t)

	// The dev vault folds case, as Key Vault does.
	c, err := azsecrets.NewClient(e.srv.URL(), e.srv.Credential(), &azsecrets.ClientOptions{
		ClientOptions:                        azcore.ClientOptions{Transport: e.srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.GetSecret(context.Background(), "PROD--DB-Password", "", nil)
	if err != nil || resp.Value == nil || *resp.Value != "value-of-prod/db-password" {
		t.Fatalf("the dev vault does not fold case: %v", err)
	}

	for _, via := range []struct {
		name string
		c    caller
	}{{"mcp", e.viaMCP(t)}, {"json", e.viaJSON(t)}} {
		for _, tool := range []string{"keyvault_get_secret", "keyvault_reveal_secret"} {
			for _, name := range []string{"PROD/db-password", "Prod/DB-Password", "pRoD/Db-PaSsWoRd", "prod/DB-PASSWORD"} {
				got := via.c(tool, map[string]any{"vault": "KV-Prod-Finance-001", "name": name})
				if got.code != toolgw.CodePolicyDenied || !strings.Contains(got.msg, "kv://kv-prod-finance-001/secrets/prod/db-password") {
					t.Errorf("%s %s %q: %q %s", via.name, tool, name, got.code, got.msg)
				}
			}
		}
		got := via.c("keyvault_get_secret", map[string]any{"vault": "KV-PROD-FINANCE-001", "name": "Agent/App/DB-Password"})
		if got.code != "" || got.out["name"] != "agent/app/db-password" || got.out["vault"] != canonVault ||
			got.out["value"] != "[REDACTED:kv-prod-finance-001/agent/app/db-password]" {
			t.Errorf("%s: allowed read in another case: %+v", via.name, got)
		}
	}
}

// TestAcceptanceServiceBus: under "allow sb://ns/*, deny sb://*/orders-prod"
// no spelling reaches the prod entity, through MCP or the JSON API.
func TestAcceptanceServiceBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	e := startCanon(t)
	for _, via := range []caller{e.viaMCP(t), e.viaJSON(t)} {
		for _, ns := range []string{"sb-orders", "SB-Orders", "SB-ORDERS"} {
			for _, ent := range []string{"orders-prod", "Orders-Prod", "ORDERS-PROD", "orders-PROD"} {
				got := via("servicebus_send", map[string]any{"namespace": ns, "entity": ent, "body": "x"})
				if got.code != toolgw.CodePolicyDenied || !strings.Contains(got.msg, "sb://sb-orders/orders-prod") {
					t.Errorf("send %s/%s: %q %s", ns, ent, got.code, got.msg)
				}
			}
		}
		for _, ent := range []string{"orders-prod ", "orders%2Dprod", "orders-prod\x00", "orders\u200b-prod", "ｏrders-prod", "./orders-prod", "x/../orders-prod"} {
			if got := via("servicebus_send", map[string]any{"namespace": canonNS, "entity": ent, "body": "x"}); got.code != toolgw.CodeInvalidArguments {
				t.Errorf("send to %+q: %q %s", ent, got.code, got.msg)
			}
		}
	}
	bus := localbus.New(e.node.Store, canonNS, localbus.Options{})
	if ms, err := bus.Peek(context.Background(), "orders-prod", 100); err != nil || len(ms) != 0 {
		t.Errorf("orders-prod holds %d messages (%v)", len(ms), err)
	}
}

// TestApprovalBindsTheCanonicalName: an approval is bound to the canonical
// arguments, so a retry in another spelling of the same secret is the same
// call, and the recorded arguments hold the canonical name.
func TestApprovalBindsTheCanonicalName(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev vault and a node")
	}
	e := startCanon(t)
	cs := e.mcpSession(e.tok)
	a := call(t, cs, "keyvault_set_secret", map[string]any{"vault": "KV-Prod-Finance-001", "name": "Agent/App/Report", "value": "v-123456789"})
	id, _ := a.errObj["approval_id"].(string)
	if a.code() != toolgw.CodeApprovalRequired || id == "" {
		t.Fatalf("write: %+v", a)
	}
	var v toolgw.ApprovalView
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/approvals/"+id, nil, &v); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	if !strings.Contains(string(raw), "kv://kv-prod-finance-001/secrets/agent/app/report") || strings.Contains(string(raw), "Agent/App") {
		t.Errorf("approval view: %s", raw)
	}
	if status, code := e.decide(id, "allow"); status != 200 {
		t.Fatalf("allow: %d %s", status, code)
	}
	a = call(t, cs, "keyvault_set_secret", map[string]any{"vault": canonVault, "name": "agent/app/report", "value": "v-123456789"})
	if a.isError || a.out["name"] != "agent/app/report" {
		t.Fatalf("write after approval in another spelling: %+v", a)
	}
}
