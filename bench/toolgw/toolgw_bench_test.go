package toolgwbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/localbus"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store/sqlite"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/internal/toolgw"
)

const (
	vaultName  = "kv-bench"
	secretPath = "agent/app/db-password"
	secretVal  = "bench-secret-value-0123456789"
	busName    = "sb-bench"
	queue      = "orders-staging"
	policy     = `{"policy_version":"2","policy_id":"bench","issuer_did":"did:web:bench.example","statements":[
		{"sid":"Read","effect":"Allow","actions":["keyvault:secrets.get"],"resources":["kv://kv-bench/secrets/agent/**"]},
		{"sid":"Send","effect":"Allow","actions":["servicebus:send"],"resources":["sb://sb-bench/orders-staging"],
		 "conditions":{"NumericLessThan":{"ServiceBus:MessageBytes":"131072"}}}]}`
)

var (
	getArgs  = map[string]any{"vault": vaultName, "name": secretPath}
	sendBody = `{"order":42,"amount":"19.99","currency":"EUR"}`
	sendArgs = map[string]any{"namespace": busName, "entity": queue, "body": sendBody,
		"application_properties": map[string]any{"schema_version": "3", "correlation_id": "c-1"}}
)

// Each party runs in its own process: the dev vault and the gateway are
// this test binary started again with TOOLGW_BENCH_ROLE set; the calls come
// from this process.
// roles runs this binary as the benchmark's processes.
var roles = testkit.Roles{Prefix: "TOOLGW_BENCH"}

func TestMain(m *testing.M) {
	switch roles.Role() {
	case "":
		os.Exit(m.Run())
	case "devvault":
		srv, err := devvault.New(devvault.Options{Vault: vaultName, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		name, _ := keyvault.ToName(secretPath)
		if err == nil {
			_, err = srv.Put(name, secretVal, "text/plain")
		}
		if err == nil {
			_, err = srv.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		raw, _ := json.Marshal(srv.Conn())
		fmt.Println(string(raw))
	case "gateway":
		server.TuneGC() // as clawea serve does
		var conn devvault.Conn
		json.Unmarshal([]byte(os.Getenv("TOOLGW_BENCH_CONN")), &conn)
		vault, err := conn.Client()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(os.Getenv("TOOLGW_BENCH_DATA")), Listen: "127.0.0.1:0",
			Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
			ToolGateway: toolgw.Options{Vaults: []keyvault.Client{vault}},
			LocalBuses:  []string{busName}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		u, err := node.Listen()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go node.Serve(context.Background())
		fmt.Println(u)
	}
	roles.Serve("gateway")
}

// op is one way of making a call; it returns an error when the call did
// not succeed.
type op struct {
	name string
	do   func(ctx context.Context) error
}

type fixture struct {
	kvDirect, kvJSON, kvMCP       op
	sendDirect, sendJSON, sendMCP op
	// jobs returns n more gateway ops for Key Vault gets, each on its own
	// job (agents run their own jobs).
	jobs func(n int) []op
	done func()
}

func setup(b testing.TB) *fixture {
	ctx := context.Background()
	connLine, stopVault := roles.Spawn(b, "devvault")
	dir := keystore.Dir(b.TempDir())
	gwURL, stopGW := roles.Spawn(b, "gateway", "TOOLGW_BENCH_CONN="+connLine, "TOOLGW_BENCH_DATA="+string(dir))
	var conn devvault.Conn
	if err := json.Unmarshal([]byte(connLine), &conn); err != nil {
		b.Fatal(err)
	}
	vault, err := conn.Client()
	if err != nil {
		b.Fatal(err)
	}
	// The local queue, directly: the same code on a store of its own.
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "direct.db"))
	if err != nil {
		b.Fatal(err)
	}
	bus := localbus.New(st, busName, localbus.Options{})

	tok, _, _ := dir.AdminToken()
	admin := client.New(gwURL, tok)
	var pub struct {
		Hash string `json:"policy_hash_b64u"`
	}
	if _, _, err := admin.Do(ctx, "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": json.RawMessage(policy)}, &pub); err != nil {
		b.Fatal(err)
	}
	var agent struct {
		DID string `json:"did"`
	}
	admin.Do(ctx, "POST", "/v1/agents", map[string]string{"name": "bench"}, &agent)
	newJob := func() string {
		var st jobs.Started
		if _, _, err := admin.Do(ctx, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: pub.Hash, TTLSec: 3600}, &st); err != nil {
			b.Fatal(err)
		}
		return st.Token
	}
	jobTok := newJob()
	var sessions []*mcp.ClientSession
	mcpOp := func(name, tool string, args map[string]any) op {
		hc := &http.Client{Transport: bearer{jobTok, httpc.Transport}}
		c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gwURL + "/mcp", HTTPClient: hc, DisableStandaloneSSE: true}, nil)
		if err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, cs)
		return op{name, func(ctx context.Context) error {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
			if err != nil {
				return err
			}
			if res.IsError {
				return fmt.Errorf("%s: %v", tool, res.Content[0].(*mcp.TextContent).Text)
			}
			return nil
		}}
	}
	jsonOp := func(name, tool, tok string, args map[string]any) op {
		body, _ := json.Marshal(map[string]any{"tool": tool, "arguments": args})
		return op{name, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, "POST", gwURL+"/v1/tools/call", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := httpc.Do(req)
			if err != nil {
				return err
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: HTTP %d %s", tool, resp.StatusCode, raw)
			}
			return nil
		}}
	}
	f := &fixture{
		kvDirect: op{"Key Vault get, directly (azsecrets)", func(ctx context.Context) error {
			_, err := vault.Get(ctx, secretPath, "")
			return err
		}},
		kvJSON: jsonOp("Key Vault get, gateway JSON API", "keyvault_get_secret", jobTok, getArgs),
		kvMCP:  mcpOp("Key Vault get, gateway MCP", "keyvault_get_secret", getArgs),
		sendDirect: op{"queue send, directly (local queue)", func(ctx context.Context) error {
			return bus.Send(ctx, queue, servicebus.Message{Body: []byte(sendBody), Properties: map[string]any{"schema_version": "3", "correlation_id": "c-1"}})
		}},
		sendJSON: jsonOp("queue send, gateway JSON API", "servicebus_send", jobTok, sendArgs),
		sendMCP:  mcpOp("queue send, gateway MCP", "servicebus_send", sendArgs),
	}
	f.jobs = func(n int) []op {
		out := make([]op, n)
		for i := range out {
			out[i] = jsonOp("Key Vault get, gateway JSON API", "keyvault_get_secret", newJob(), getArgs)
		}
		return out
	}
	f.done = func() {
		for _, cs := range sessions {
			cs.Close()
		}
		st.Close()
		stopGW()
		stopVault()
	}
	return f
}

type bearer struct {
	tok string
	rt  http.RoundTripper
}

func (h bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+h.tok)
	return h.rt.RoundTrip(r)
}

var httpc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256, DisableCompression: true}}

type stats struct{ p50, p90, p99 time.Duration }

// sequential measures latency at light load: one call at a time.
func sequential(b testing.TB, o op, n int) stats {
	ctx := context.Background()
	for i := 0; i < 50; i++ { // warm connections and caches
		if err := o.do(ctx); err != nil {
			b.Fatalf("%s: %v", o.name, err)
		}
	}
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := o.do(ctx); err != nil {
			b.Fatalf("%s: %v", o.name, err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return stats{ds[len(ds)*50/100], ds[len(ds)*90/100], ds[len(ds)*99/100]}
}

// saturate runs one client per op until total calls are done and returns
// calls per second.
func saturate(b testing.TB, ops []op, total int) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for _, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if err := o.do(context.Background()); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	return float64(total) / time.Since(start).Seconds()
}

// BenchmarkToolGateway runs the whole comparison once per iteration (use
// -benchtime 1x): latency at light load of a Key Vault get and a queue
// send, made directly on the connector and through the gateway's JSON API
// and MCP endpoint, and Key Vault get throughput with BENCH_CLIENTS
// concurrent clients each on its own job. BENCH_N (default 2000),
// BENCH_CLIENTS (16) and BENCH_TOTAL (6000) bound the work; BENCH_ONLY=TEXT
// runs only the calls whose name contains TEXT (with
// TOOLGW_BENCH_CPUPROFILE=FILE, to profile the gateway on one kind of call).
func BenchmarkToolGateway(b *testing.B) {
	n, clients, total := testkit.IntEnv("BENCH_N", 2000), testkit.IntEnv("BENCH_CLIENTS", 16), testkit.IntEnv("BENCH_TOTAL", 6000)
	only := os.Getenv("BENCH_ONLY") // run only the calls whose name has this (for profiling)
	for i := 0; i < b.N; i++ {
		f := setup(b)
		type row struct {
			o    op
			s    stats
			base *stats
		}
		var rows []row
		for _, group := range [][]op{{f.kvDirect, f.kvJSON, f.kvMCP}, {f.sendDirect, f.sendJSON, f.sendMCP}} {
			base := new(stats)
			for j, o := range group {
				if only != "" && !strings.Contains(o.name, only) {
					continue
				}
				s := sequential(b, o, n)
				if j == 0 {
					*base = s
				}
				rows = append(rows, row{o, s, base})
			}
		}
		var directRate, gwRate float64
		if only == "" {
			directRate = saturate(b, slices.Repeat([]op{f.kvDirect}, clients), total)
			gwRate = saturate(b, f.jobs(clients), total)
		}
		f.done()
		if only != "" {
			for _, r := range rows {
				fmt.Fprintf(os.Stderr, "%-38s p50 %s\n", r.o.name, r.s.p50.Round(time.Microsecond))
			}
			continue
		}

		fmt.Fprintf(os.Stderr, "\n%-38s %9s %9s %9s %14s\n", "call", "p50", "p90", "p99", "added p50")
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "%-38s %9s %9s %9s %14s\n", r.o.name, r.s.p50.Round(time.Microsecond), r.s.p90.Round(time.Microsecond),
				r.s.p99.Round(time.Microsecond), (r.s.p50 - r.base.p50).Round(time.Microsecond))
		}
		fmt.Fprintf(os.Stderr, "throughput, Key Vault get with %d clients: directly %.0f calls/s, through the gateway %.0f calls/s (%d jobs, %d calls)\n",
			clients, directRate, gwRate, clients, total)
		b.ReportMetric(float64(rows[1].s.p50-rows[0].s.p50)/1e6, "kv-json-added-p50-ms")
		b.ReportMetric(float64(rows[2].s.p50-rows[0].s.p50)/1e6, "kv-mcp-added-p50-ms")
		b.ReportMetric(float64(rows[4].s.p50-rows[3].s.p50)/1e6, "send-json-added-p50-ms")
		b.ReportMetric(float64(rows[5].s.p50-rows[3].s.p50)/1e6, "send-mcp-added-p50-ms")
		b.ReportMetric(gwRate, "gateway-calls/s")
	}
}

// BenchmarkCall measures Gateway.Call in process, without HTTP: token
// check, policy decision, redaction and the signed receipt written to the
// job's chain, around a local connector (an in-memory vault; the local
// queue in the node's own SQLite store). Each sub-benchmark times every
// call and reports p50 and p99, the connector called directly, and the
// p50 the gateway adds.
func BenchmarkCall(b *testing.B) {
	ctx := context.Background()
	vault := keyvault.NewFake(vaultName)
	if _, err := vault.Set(ctx, secretPath, secretVal, "text/plain"); err != nil {
		b.Fatal(err)
	}
	dir := keystore.Dir(b.TempDir())
	node, err := server.Open(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ToolGateway: toolgw.Options{Vaults: []keyvault.Client{vault}}, LocalBuses: []string{busName}})
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	url, err := node.Listen()
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go node.Serve(sctx)
	tok, _, _ := dir.AdminToken()
	admin := client.New(url, tok)
	var pub struct {
		Hash string `json:"policy_hash_b64u"`
	}
	if _, _, err := admin.Do(ctx, "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": json.RawMessage(policy)}, &pub); err != nil {
		b.Fatal(err)
	}
	var agent struct {
		DID string `json:"did"`
	}
	admin.Do(ctx, "POST", "/v1/agents", map[string]string{"name": "bench"}, &agent)
	var st jobs.Started
	if _, _, err := admin.Do(ctx, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: pub.Hash, TTLSec: 3600}, &st); err != nil {
		b.Fatal(err)
	}
	bus := localbus.New(node.Store, busName, localbus.Options{})
	get, _ := json.Marshal(getArgs)
	send, _ := json.Marshal(sendArgs)
	msg := servicebus.Message{Body: []byte(sendBody), Properties: map[string]any{"schema_version": "3", "correlation_id": "c-1"}}
	for _, c := range []struct {
		tool   string
		args   []byte
		direct func() error
	}{
		{"keyvault_get_secret", get, func() error { _, err := vault.Get(ctx, secretPath, ""); return err }},
		{"servicebus_send", send, func() error { return bus.Send(ctx, queue, msg) }},
	} {
		b.Run(c.tool, func(b *testing.B) {
			var gw, direct []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := c.direct(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				j, ae := node.Tools.Authorize(ctx, st.Token)
				if ae != nil {
					b.Fatal(ae)
				}
				if _, ce := node.Tools.Call(ctx, j, c.tool, c.args); ce != nil {
					b.Fatal(ce)
				}
				direct, gw = append(direct, t1.Sub(t0)), append(gw, time.Since(t1))
			}
			slices.Sort(gw)
			slices.Sort(direct)
			p50, p99, d50 := gw[len(gw)/2], gw[len(gw)*99/100], direct[len(direct)/2]
			b.ReportMetric(float64(p50)/1e6, "p50-ms")
			b.ReportMetric(float64(p99)/1e6, "p99-ms")
			b.ReportMetric(float64(d50)/1e6, "direct-p50-ms")
			b.ReportMetric(float64(p50-d50)/1e6, "added-p50-ms")
		})
	}
}
