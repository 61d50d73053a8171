package toolgw_test

// The Key Vault and Service Bus example policies' decision tables
// (examples/policies/*.cases.json), replayed end to end: each case becomes a
// tool call through the official MCP client, in a job of its own, against a
// node whose tool gateway drives the real azsecrets client at dev vaults and
// the real azservicebus client at the AMQP stub broker.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/connector/servicebus/amqpstub"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/policy"
)

type policyCase struct {
	Name     string            `json:"name"`
	Action   string            `json:"action"`
	Resource string            `json:"resource"`
	Context  map[string]string `json:"context"`
	Expect   string            `json:"expect"`
	// Statements, when present, are the deciding statements; an empty
	// list means no statement decided (the default deny).
	Statements *[]string `json:"statements"`
}

func loadCases(t *testing.T, name string) []policyCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", name+".cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []policyCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// devVault starts a dev vault named name, seeded with secrets, and returns
// the azsecrets-backed client the gateway uses.
func devVault(t *testing.T, name string, secrets ...string) keyvault.Client {
	t.Helper()
	srv, err := devvault.New(devvault.Options{Vault: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := srv.Conn().Client()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range secrets {
		if _, err := c.Set(context.Background(), p, "value-of-"+p, "text/plain"); err != nil {
			t.Fatalf("seeding %s: %v", p, err)
		}
	}
	return c
}

// stubNamespace starts an AMQP stub broker and returns the azservicebus-
// backed bus for it under the namespace name policies use.
func stubNamespace(t *testing.T, name string) servicebus.Bus {
	t.Helper()
	s := amqpstub.Start(t)
	b, err := servicebus.NewAzure("", servicebus.AzureOptions{ConnectionString: s.ConnectionString(),
		Client: &azservicebus.ClientOptions{RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return servicebus.Named(b, name)
}

// unreachable are cases no real call can produce, with the reason.
var unreachable = map[string]string{
	"missing size": "the gateway always measures the message, so ServiceBus:MessageBytes is always set",
}

func TestExamplePoliciesThroughMCP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dev vaults and an AMQP stub broker")
	}
	e := startWith(t, toolgw.Options{
		Vaults: []keyvault.Client{
			devVault(t, "kv-prod-finance-001", "agent/app/db-password", "agent/readonly/reports/api-key", "prod/db-password"),
			devVault(t, "kv-dev-001", "agent/app/db-password"),
		},
		Buses: []servicebus.Bus{stubNamespace(t, "sb-orders-001")},
	}, nil)
	catalog := map[string]toolgw.ToolInfo{}
	for _, ti := range e.node.Tools.Tools(nil) {
		catalog[ti.Action] = ti
	}
	var skipped []string
	for _, name := range []string{"kv-boundary", "servicebus-send-only"} {
		hash := e.publish(example(t, name))
		for _, c := range loadCases(t, name) {
			t.Run(name+"/"+c.Name, func(t *testing.T) {
				if why, ok := unreachable[c.Name]; ok {
					skipped = append(skipped, c.Name)
					t.Skip(why)
				}
				ti, ok := catalog[c.Action]
				if !ok {
					// No tool performs the action, so no job can do it.
					if c.Expect != "deny" {
						t.Fatalf("no tool performs %s, but the case expects %s", c.Action, c.Expect)
					}
					return
				}
				e.runCase(t, hash, ti, c)
			})
		}
	}
	if !slices.Equal(slices.Sorted(func(yield func(string) bool) {
		for k := range unreachable {
			if !yield(k) {
				return
			}
		}
	}), slices.Sorted(slices.Values(skipped))) {
		t.Errorf("cases marked unreachable %v, cases skipped %v", unreachable, skipped)
	}
}

// runCase replays one case as a tool call in a fresh job.
func (e *env) runCase(t *testing.T, policyHash string, ti toolgw.ToolInfo, c policyCase) {
	jobID, tok := e.job(policyHash)
	args := caseArgs(t, ti, c)
	if n := c.Context["ServiceBus:MessagesSentInJob"]; n != "" {
		k, _ := strconv.Atoi(n)
		if _, err := e.node.Store.AddCounter(context.Background(), jobID, "servicebus.messages_sent", int64(k)); err != nil {
			t.Fatal(err)
		}
	}
	approved := c.Context[policy.ApprovalKey] == "true"
	cs := e.mcpSession(tok)
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	listed := slices.ContainsFunc(list.Tools, func(x *mcp.Tool) bool { return x.Name == ti.Name })
	if !listed {
		// The policy can never allow the action: the tool is hidden and
		// unknown over MCP; the JSON API names the deciding statement.
		if c.Expect != "deny" {
			t.Fatalf("%s is not listed, but the case expects %s", ti.Name, c.Expect)
		}
		if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: ti.Name, Arguments: args}); err == nil || !strings.Contains(err.Error(), "unknown tool") {
			t.Fatalf("calling the hidden %s: %v", ti.Name, err)
		}
		code, text := e.jsonCall(t, tok, ti.Name, args)
		e.expectDenied(t, c, code, text)
		return
	}
	a := call(t, cs, ti.Name, args)
	if approved && a.code() == toolgw.CodeApprovalRequired {
		id, _ := a.errObj["approval_id"].(string)
		if status, code := e.decide(id, "allow"); status != http.StatusOK {
			t.Fatalf("approving: %d %s", status, code)
		}
		a = call(t, cs, ti.Name, args)
	}
	switch c.Expect {
	case "allow":
		if a.isError {
			t.Fatalf("expected the call to run: %s %s", a.code(), a.text)
		}
		if a.receipt == "" {
			t.Error("no receipt id")
		}
	case "deny":
		e.expectDenied(t, c, a.code(), a.text)
	case "needs_approval":
		if a.code() != toolgw.CodeApprovalRequired {
			t.Fatalf("expected %s, got %s %s", toolgw.CodeApprovalRequired, a.code(), a.text)
		}
		checkStatements(t, c, a.text)
	default:
		t.Fatalf("unknown expectation %q", c.Expect)
	}
}

func (e *env) expectDenied(t *testing.T, c policyCase, code, text string) {
	t.Helper()
	if code != toolgw.CodePolicyDenied {
		t.Fatalf("expected %s, got %q %s", toolgw.CodePolicyDenied, code, text)
	}
	checkStatements(t, c, text)
}

func checkStatements(t *testing.T, c policyCase, text string) {
	t.Helper()
	if c.Statements == nil {
		return
	}
	for _, sid := range *c.Statements {
		if !strings.Contains(text, sid) {
			t.Errorf("the answer does not name statement %s: %s", sid, text)
		}
	}
}

// jsonCall calls a tool through the plain JSON API and returns the error
// code ("" when the call ran) and its message with the deciding
// statements.
func (e *env) jsonCall(t *testing.T, tok, tool string, args map[string]any) (string, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"tool": tool, "arguments": args})
	req, _ := http.NewRequest("POST", e.url+"/v1/tools/call", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Error *toolgw.Error `json:"error"`
	}
	json.Unmarshal(raw, &out)
	if out.Error == nil {
		return "", ""
	}
	return out.Error.Code, out.Error.Msg + " statements=" + strings.Join(out.Error.Statements, ",")
}

// caseArgs turns a case's action, resource and context into the tool's
// arguments.
func caseArgs(t *testing.T, ti toolgw.ToolInfo, c policyCase) map[string]any {
	t.Helper()
	args := map[string]any{}
	props, _ := ti.InputSchema["properties"].(map[string]any)
	has := func(k string) bool { _, ok := props[k]; return ok }
	switch {
	case strings.HasPrefix(c.Resource, "kv://"):
		vault, rest, _ := strings.Cut(strings.TrimPrefix(c.Resource, "kv://"), "/")
		args["vault"] = vault
		if name, ok := strings.CutPrefix(rest, "secrets/"); ok && has("name") {
			args["name"] = name
		}
		if has("value") {
			args["value"] = "case-value"
		}
	case strings.HasPrefix(c.Resource, "sb://"):
		ns, entity, _ := strings.Cut(strings.TrimPrefix(c.Resource, "sb://"), "/")
		args["namespace"], args["entity"] = ns, strings.TrimSuffix(entity, "/$deadletterqueue")
		if has("mode") {
			args["mode"] = "peek_lock"
			args["wait_seconds"] = 0
		}
		if has("body") {
			n := 100
			if s := c.Context["ServiceBus:MessageBytes"]; s != "" {
				n, _ = strconv.Atoi(s)
			}
			args["body"] = strings.Repeat("x", n)
			ap := map[string]any{}
			for k, v := range c.Context {
				if p, ok := strings.CutPrefix(k, "ServiceBus:AppProperty."); ok {
					ap[p] = v
				}
			}
			args["application_properties"] = ap
		}
	default:
		t.Fatalf("no argument mapping for resource %s", c.Resource)
	}
	return args
}
