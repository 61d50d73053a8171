package toolgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/toolgw"
)

// lateVault applies a write at once, as a remote service that received the
// request does, and answers after delay (or never, within the test).
type lateVault struct {
	*memVault
	delay   time.Duration
	getSeen chan string
	writes  atomic.Int32
}

func (v *lateVault) Set(ctx context.Context, path, value, ct string) (keyvault.Secret, error) {
	s, err := v.memVault.Set(ctx, path, value, ct)
	v.writes.Add(1)
	select {
	case <-ctx.Done():
		return keyvault.Secret{}, ctx.Err()
	case <-time.After(v.delay):
		return s, err
	}
}

func (v *lateVault) Get(ctx context.Context, path, version string) (keyvault.Secret, error) {
	select {
	case <-ctx.Done():
		v.getSeen <- "cancelled"
		return keyvault.Secret{}, ctx.Err()
	case <-time.After(v.delay):
		v.getSeen <- "completed"
		return v.memVault.Get(ctx, path, version)
	}
}

const writePolicy = `{"policy_version":"2","policy_id":"w","issuer_did":"did:web:test.example","statements":[
	{"sid":"W","effect":"Allow","actions":["keyvault:secrets.set","keyvault:secrets.get"],"resources":["kv://*/secrets/agent/**"]}]}`

// waitEvidence polls the job's evidence until want holds or 10 s pass.
func waitEvidence(t *testing.T, e *env, jobID string, want func(kinds map[string]int, receipts []string) bool) (map[string]int, []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		items, err := e.node.Store.ListItems(context.Background(), jobID)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		var receipts []string
		for _, it := range items {
			kinds[it.Kind]++
			if it.Kind == evidence.KindToolReceipt {
				receipts = append(receipts, string(it.JSON))
			}
		}
		if want(kinds, receipts) || time.Now().After(deadline) {
			return kinds, receipts
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAbortedWriteIsRecorded: an agent that hangs up in the middle of a
// write cannot cut it out of the evidence, on any path (the /mcp direct
// path, the MCP SDK's handler, the JSON API): the write runs to its end and
// its receipt and side-effect record are stored.
func TestAbortedWriteIsRecorded(t *testing.T) {
	body := func(name string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"keyvault_set_secret","arguments":{"vault":"` + vaultName + `","name":"` + name + `","value":"v-123456789"}}}`
	}
	for _, path := range []string{"mcp-direct", "mcp-sdk", "json-api"} {
		t.Run(path, func(t *testing.T) {
			lv := &lateVault{memVault: &memVault{name: vaultName, m: map[string]keyvault.Secret{}}, delay: 400 * time.Millisecond, getSeen: make(chan string, 4)}
			e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{lv}}, nil)
			jobID, tok := e.job(e.publish([]byte(writePolicy)))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			var req *http.Request
			switch path {
			case "json-api":
				b, _ := json.Marshal(map[string]any{"tool": "keyvault_set_secret", "arguments": map[string]any{"vault": vaultName, "name": "agent/app/x", "value": "v-123456789"}})
				req, _ = http.NewRequestWithContext(ctx, "POST", e.url+"/v1/tools/call", bytes.NewReader(b))
			default:
				h := e.node.Tools.MCPHandler()
				if path == "mcp-sdk" {
					h = e.node.Tools.MCPHandlerSDK()
				}
				srv := httptest.NewServer(h)
				defer srv.Close()
				req, _ = http.NewRequestWithContext(ctx, "POST", srv.URL, strings.NewReader(body("agent/app/x")))
				for k, v := range oldProtoHeaders("2025-11-25") {
					req.Header.Set(k, v)
				}
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("the call answered before the client gave up; the test proves nothing")
			}
			kinds, receipts := waitEvidence(t, e, jobID, func(k map[string]int, _ []string) bool { return k[evidence.KindSideEffect] > 0 })
			if lv.writes.Load() != 1 {
				t.Fatalf("writes %d, want 1", lv.writes.Load())
			}
			if kinds[evidence.KindSideEffect] != 1 || len(receipts) != 1 || !strings.Contains(receipts[0], `"result_status":"success"`) {
				t.Errorf("the write happened; evidence %v, receipts %v", kinds, receipts)
			}
		})
	}
}

// TestTimedOutWriteIsAPossibleSideEffect: a write the connector did not
// answer within CallTimeout may still have been applied: its receipt says
// timeout and "write": "unknown", with a side-effect record beside it.
func TestTimedOutWriteIsAPossibleSideEffect(t *testing.T) {
	lv := &lateVault{memVault: &memVault{name: vaultName, m: map[string]keyvault.Secret{}}, delay: time.Hour, getSeen: make(chan string, 4)}
	e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{lv}, CallTimeout: 200 * time.Millisecond}, nil)
	jobID, tok := e.job(e.publish([]byte(writePolicy)))
	b, _ := json.Marshal(map[string]any{"tool": "keyvault_set_secret", "arguments": map[string]any{"vault": vaultName, "name": "agent/app/y", "value": "v-123456789"}})
	req, _ := http.NewRequest("POST", e.url+"/v1/tools/call", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if out.Error.Code != toolgw.CodeConnectorTimeout {
		t.Fatalf("code %q, want %s", out.Error.Code, toolgw.CodeConnectorTimeout)
	}
	kinds, receipts := waitEvidence(t, e, jobID, func(k map[string]int, _ []string) bool { return k[evidence.KindSideEffect] > 0 })
	if kinds[evidence.KindSideEffect] != 1 || len(receipts) != 1 || !strings.Contains(receipts[0], `"result_status":"timeout"`) || !strings.Contains(receipts[0], `unknown`) {
		t.Errorf("evidence %v, receipts %v", kinds, receipts)
	}
}

// TestAbortedReadMayBeCancelled: a read has no side effect; the JSON API
// still cancels it when the caller goes away (CLIENT_CANCELLED, no
// side-effect record).
func TestAbortedReadMayBeCancelled(t *testing.T) {
	lv := &lateVault{memVault: &memVault{name: vaultName, m: map[string]keyvault.Secret{}}, delay: 2 * time.Second, getSeen: make(chan string, 4)}
	lv.memVault.Set(context.Background(), "agent/app/r", "v-123456789", "")
	e := startWith(t, toolgw.Options{Vaults: []keyvault.Client{lv}}, nil)
	jobID, tok := e.job(e.publish([]byte(writePolicy)))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	b, _ := json.Marshal(map[string]any{"tool": "keyvault_get_secret", "arguments": map[string]any{"vault": vaultName, "name": "agent/app/r"}})
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/v1/tools/call", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("answered")
	}
	if got := <-lv.getSeen; got != "cancelled" {
		t.Errorf("the read was %s", got)
	}
	kinds, receipts := waitEvidence(t, e, jobID, func(_ map[string]int, r []string) bool { return len(r) > 0 })
	if kinds[evidence.KindSideEffect] != 0 || len(receipts) != 1 || !strings.Contains(receipts[0], `"result_status":"error"`) {
		t.Errorf("evidence %v, receipts %v", kinds, receipts)
	}
}
