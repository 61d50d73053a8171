package toolgw_test

// Issue P7 item 4: a connector failure keeps its class in the answer and
// in the signed tool receipt. Key Vault failures come from the dev vault's
// fault injection through the real azsecrets client inside the gateway;
// Service Bus failures from the sbstub broker through the real
// azservicebus client; "unreachable" from a closed loopback port. Before
// the fix every one of them was CONNECTOR_TIMEOUT.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/connector/servicebus/amqpstub"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/verify"
)

const codesPolicy = `{
  "policy_version": "2", "policy_id": "connector-codes", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "Secrets", "effect": "Allow", "actions": ["keyvault:secrets.get"], "resources": ["kv://*/secrets/**"]},
    {"sid": "Bus", "effect": "Allow", "actions": ["servicebus:peek"], "resources": ["sb://*/*"]}
  ]}`

const codesCallTimeout = 2 * time.Second

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type codesEnv struct {
	*env
	srv   *devvault.Server
	jobID string
	tok   string
}

// startCodes starts a node whose gateway has the dev vault (with faults),
// a vault on a closed port, a bus on the sbstub broker (with faults) and a
// bus on a closed port.
func startCodes(t *testing.T) *codesEnv {
	t.Helper()
	srv, err := devvault.New(devvault.Options{Vault: canonVault})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	noRetry := keyvault.AzureOptions{Transport: srv.Client(), DisableChallengeResourceVerification: true, Retry: policy.RetryOptions{MaxRetries: -1}}
	kv, err := keyvault.NewAzure(srv.Vault(), srv.URL(), srv.Credential(), noRetry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Set(context.Background(), "agent/app/x", "value-x", ""); err != nil {
		t.Fatal(err)
	}
	kvDown, err := keyvault.NewAzure("kv-down", "https://"+closedPort(t), srv.Credential(), noRetry)
	if err != nil {
		t.Fatal(err)
	}
	faults := map[string]devvault.Fault{
		"agent--app--forbidden": {Status: http.StatusForbidden},
		"agent--app--conflict":  {Status: http.StatusConflict},
		"agent--app--busy":      {Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second},
		"agent--app--down":      {Status: http.StatusServiceUnavailable},
		"agent--app--broken":    {Status: http.StatusInternalServerError},
		"agent--app--stuck":     {Hang: true},
	}
	for name, f := range faults {
		if err := srv.SetFault(name, f); err != nil {
			t.Fatal(err)
		}
	}

	stub := amqpstub.Start(t, "--absent", "gone", "--deny", "secret", "--refuse", "busy=com.microsoft:server-busy", "--hang", "stuck")
	retry := &azservicebus.ClientOptions{RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond}}
	bus, err := servicebus.NewAzure("", servicebus.AzureOptions{ConnectionString: stub.ConnectionString(), Client: retry})
	if err != nil {
		t.Fatal(err)
	}
	busDown, err := servicebus.NewAzure("", servicebus.AzureOptions{Client: retry,
		ConnectionString: "Endpoint=sb://" + closedPort(t) + ";SharedAccessKeyName=x;SharedAccessKey=dGVzdA==;UseDevelopmentEmulator=true"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(); busDown.Close() })

	e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{kv, kvDown},
		Buses:       []servicebus.Bus{servicebus.Named(bus, "sb-stub"), servicebus.Named(busDown, "sb-down")},
		CallTimeout: codesCallTimeout}, nil)
	jobID, tok := e.job(e.publish([]byte(codesPolicy)))
	return &codesEnv{env: e, srv: srv, jobID: jobID, tok: tok}
}

// storedReceipt finds a tool receipt in the job's stored evidence, checks
// its signature, and returns its result_status and the disclosed
// result.error.code.
func (c *codesEnv) storedReceipt(t *testing.T, id string) (status, code string) {
	t.Helper()
	items, err := c.node.Store.ListItems(context.Background(), c.jobID)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Kind != evidence.KindToolReceipt || it.ItemID != id {
			continue
		}
		if out := verify.Check(it.JSON, verify.KindToolReceipt, verify.Options{}); out.Status != verify.StatusPass {
			t.Errorf("receipt %s does not verify: %s %s", id, out.ReasonCode, out.Reason)
		}
		var env struct {
			Payload receipt.ToolV2 `json:"payload"`
		}
		if err := json.Unmarshal(it.JSON, &env); err != nil {
			t.Fatal(err)
		}
		p := env.Payload
		if p.ResultDisclosure == nil {
			t.Fatalf("receipt %s discloses no result", id)
		}
		leaf, ok := p.ResultDisclosure.DisclosedLeaves["result.error"]
		if !ok {
			t.Fatalf("receipt %s: no result.error disclosed: %+v", id, p.ResultDisclosure.DisclosedLeaves)
		}
		raw, _ := json.Marshal(leaf.Value)
		var e struct {
			Code string `json:"code"`
		}
		json.Unmarshal(raw, &e)
		return p.ResultStatus, e.Code
	}
	t.Fatalf("no stored tool receipt %s", id)
	return "", ""
}

// callJSON calls a tool over the JSON API.
func (c *codesEnv) callJSON(t *testing.T, ctx context.Context, tool string, args map[string]any) (int, map[string]any, error) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"tool": tool, "arguments": args})
	req, _ := http.NewRequestWithContext(ctx, "POST", c.url+"/v1/tools/call", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Error map[string]any `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Error, nil
}

func TestConnectorFailureCodesInAnswersAndReceipts(t *testing.T) {
	c := startCodes(t)
	kv := func(vault, name string) map[string]any { return map[string]any{"vault": vault, "name": name} }
	sb := func(ns, entity string) map[string]any { return map[string]any{"namespace": ns, "entity": entity} }
	for _, tc := range []struct {
		what   string
		tool   string
		args   map[string]any
		status int
		code   string
		rs     string // result_status in the receipt
	}{
		{"kv 403", "keyvault_get_secret", kv(canonVault, "agent/app/forbidden"), 403, toolgw.CodeForbidden, receipt.StatusError},
		{"kv 404", "keyvault_get_secret", kv(canonVault, "agent/app/missing"), 404, toolgw.CodeNotFound, receipt.StatusError},
		{"kv 409", "keyvault_get_secret", kv(canonVault, "agent/app/conflict"), 409, toolgw.CodeConflict, receipt.StatusError},
		{"kv 429", "keyvault_get_secret", kv(canonVault, "agent/app/busy"), 429, toolgw.CodeConnectorThrottled, receipt.StatusError},
		{"kv 503", "keyvault_get_secret", kv(canonVault, "agent/app/down"), 502, toolgw.CodeConnectorUnreachable, receipt.StatusError},
		{"kv 500", "keyvault_get_secret", kv(canonVault, "agent/app/broken"), 502, toolgw.CodeConnectorError, receipt.StatusError},
		{"kv closed port", "keyvault_get_secret", kv("kv-down", "agent/app/x"), 502, toolgw.CodeConnectorUnreachable, receipt.StatusError},
		{"kv hang", "keyvault_get_secret", kv(canonVault, "agent/app/stuck"), 504, toolgw.CodeConnectorTimeout, receipt.StatusTimeout},
		{"sb not found", "servicebus_peek", sb("sb-stub", "gone"), 404, toolgw.CodeNotFound, receipt.StatusError},
		{"sb unauthorized", "servicebus_peek", sb("sb-stub", "secret"), 403, toolgw.CodeForbidden, receipt.StatusError},
		{"sb server busy", "servicebus_peek", sb("sb-stub", "busy"), 429, toolgw.CodeConnectorThrottled, receipt.StatusError},
		{"sb closed port", "servicebus_peek", sb("sb-down", "orders"), 502, toolgw.CodeConnectorUnreachable, receipt.StatusError},
		{"sb hang", "servicebus_peek", sb("sb-stub", "stuck"), 504, toolgw.CodeConnectorTimeout, receipt.StatusTimeout},
	} {
		t.Run(tc.what, func(t *testing.T) {
			status, e, err := c.callJSON(t, context.Background(), tc.tool, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			code, _ := e["code"].(string)
			msg, _ := e["message"].(string)
			id, _ := e["receipt_id"].(string)
			if status != tc.status || code != tc.code || id == "" {
				t.Fatalf("answer %d %q (receipt %q), want %d %q: %v", status, code, id, tc.status, tc.code, e)
			}
			// Class-level messages: no host, no service text, no Go error.
			for _, leak := range []string{"127.0.0.1", "HTTP ", "keyvault:", "servicebus:", "amqp", "Caller is not authorized", "dial"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message %q carries internal text %q", msg, leak)
				}
			}
			if tc.code == toolgw.CodeConnectorThrottled && tc.tool == "keyvault_get_secret" && !strings.Contains(msg, "retry after 3 s") {
				t.Errorf("throttled message %q lacks the service's Retry-After", msg)
			}
			rs, rcode := c.storedReceipt(t, id)
			if rs != tc.rs || rcode != tc.code {
				t.Errorf("receipt: result_status %q code %q, want %q %q", rs, rcode, tc.rs, tc.code)
			}
		})
	}

	// Over MCP the agent reads the same code.
	cs := c.mcpSession(c.tok)
	if a := call(t, cs, "keyvault_get_secret", kv(canonVault, "agent/app/forbidden")); a.code() != toolgw.CodeForbidden {
		t.Errorf("MCP: %+v", a)
	}
	if a := call(t, cs, "keyvault_get_secret", kv(canonVault, "agent/app/x")); a.isError || a.out["value"] == nil {
		t.Errorf("MCP, a healthy secret: %+v", a)
	}

	// The bundle of the job verifies with every failure in it.
	c.finish(c.jobID)
}

// TestConnectorCallerCancelled: a caller that goes away while the
// connector hangs is recorded as CLIENT_CANCELLED, not as a timeout.
func TestConnectorCallerCancelled(t *testing.T) {
	c := startCodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := c.callJSON(t, ctx, "keyvault_get_secret", map[string]any{"vault": canonVault, "name": "agent/app/stuck"}); err == nil {
		t.Fatal("the hung call answered")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		items, _ := c.node.Store.ListItems(context.Background(), c.jobID)
		for _, it := range items {
			if it.Kind == evidence.KindToolReceipt {
				rs, code := c.storedReceipt(t, it.ItemID)
				if rs != receipt.StatusError || code != toolgw.CodeClientCancelled {
					t.Errorf("receipt: result_status %q code %q, want error %s", rs, code, toolgw.CodeClientCancelled)
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no receipt for the cancelled call")
}
