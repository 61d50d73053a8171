package toolgw_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/server"
)

// BenchmarkProxiedCall measures what the MCP proxy adds to a call: each
// iteration calls read_text_file on two processes of the same pinned
// server-filesystem, once directly (the official Go MCP client over stdio)
// and once through clawea (the same client over streamable HTTP to /mcp:
// token, policy decision, egress guard, upstream call over stdio,
// redaction, signed receipt recorded in the job's chain). A third path
// calls the gateway in process (Gateway.Call with the same checks,
// upstream call and receipt, without the agent's HTTP leg).
//
// The paths take turns in short runs (the order rotating every iteration)
// and the first call of each run is not timed: a call to a node process
// right after a call to the other one is ≈ 0.6 ms slower on a 2-vCPU VM,
// and an agent's consecutive calls go to the same processes whichever
// path it uses. p50-added-µs is p50(proxied) - p50(direct),
// p50-gateway-added-µs p50(gateway) - p50(direct). p50-sdk-added-µs is
// the proxied call through the MCP SDK's handler alone (without the direct
// tools/call path, on a bare listener without the node's middleware).
func BenchmarkProxiedCall(b *testing.B) {
	server.TuneGC() // as clawea serve does
	dir := mcpServers(b)
	root := b.TempDir()
	root, _ = filepath.EvalSymlinks(root)
	file := filepath.Join(root, "notes.txt")
	os.WriteFile(file, []byte("hello from the upstream\n"), 0o600)
	js := serverJS(dir, "server-filesystem")

	// Direct.
	cmd := exec.Command("node", js, root)
	cmd.Env = []string{}
	dc, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()

	// Proxied.
	e := startProxy(b, `{"mcp": {"upstreams": [{"name": "fs", "command": "node", "args": [`+quote(js)+`, `+quote(root)+`]}]}}`)
	_, tok := e.job(e.publish([]byte(fsPolicy)))
	pc := e.mcpSession(tok)
	sdkSrv := httptest.NewServer(e.node.Tools.MCPHandlerSDK())
	defer sdkSrv.Close()
	sc, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: sdkSrv.URL, HTTPClient: &http.Client{Transport: headerTransport{tok}}, DisableStandaloneSSE: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()

	args := map[string]any{"path": file}
	g := e.node.Tools
	job, ae := g.Authorize(context.Background(), tok)
	if ae != nil {
		b.Fatal(ae)
	}
	rawArgs, _ := json.Marshal(args)
	inProcess := func() time.Duration {
		t0 := time.Now()
		if _, ce := g.Call(context.Background(), job, "fs__read_text_file", rawArgs); ce != nil {
			b.Fatal(ce)
		}
		return time.Since(t0)
	}
	one := func(cs *mcp.ClientSession, name string) time.Duration {
		t0 := time.Now()
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
		d := time.Since(t0)
		if err != nil || res.IsError {
			b.Fatalf("%s: %v %+v", name, err, res)
		}
		return d
	}
	for range 20 { // warm up the paths (JIT, connections, caches)
		one(dc, "read_text_file")
		one(pc, "fs__read_text_file")
		one(sc, "fs__read_text_file")
		inProcess()
	}
	const run = 4 // calls per turn, the first one untimed
	direct := make([]time.Duration, 0, b.N*(run-1))
	proxied := make([]time.Duration, 0, b.N*(run-1))
	gateway := make([]time.Duration, 0, b.N*(run-1))
	viaSDK := make([]time.Duration, 0, b.N*(run-1))
	paths := []struct {
		f   func() time.Duration
		out *[]time.Duration
	}{
		{func() time.Duration { return one(dc, "read_text_file") }, &direct},
		{func() time.Duration { return one(pc, "fs__read_text_file") }, &proxied},
		{inProcess, &gateway},
		{func() time.Duration { return one(sc, "fs__read_text_file") }, &viaSDK},
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for k := range paths {
			p := paths[(i+k)%len(paths)]
			p.f()
			for range run - 1 {
				*p.out = append(*p.out, p.f())
			}
		}
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Nanoseconds()) / 1e3
	}
	pd, pp := p50(direct), p50(proxied)
	b.ReportMetric(pd, "p50-direct-µs")
	b.ReportMetric(pp, "p50-proxied-µs")
	b.ReportMetric(pp-pd, "p50-added-µs")
	b.ReportMetric(p50(gateway)-pd, "p50-gateway-added-µs")
	b.ReportMetric(p50(viaSDK)-pd, "p50-sdk-added-µs")
}
