package decidebench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/toolgw"
)

const policy = `{"policy_version":"2","policy_id":"bench-decide","issuer_did":"did:web:bench.example","statements":[
	{"sid":"Read","effect":"Allow","actions":["tool:execute"],"resources":["tool://openclaw/read"]},
	{"sid":"Exec","effect":"Allow","actions":["tool:execute"],"resources":["tool://openclaw/exec"]},
	{"sid":"DenyElevated","effect":"Deny","actions":["tool:execute"],"resources":["tool://**"],
	 "conditions":{"Bool":{"Claim:Runtime:Elevated":"true"}}}]}`

// body is an OpenClaw before_tool_call as the plugin would send it.
func body(name string, elevated bool) []byte {
	raw, _ := json.Marshal(map[string]any{
		"tool":   map[string]any{"runtime": "openclaw", "name": name},
		"params": map[string]any{"command": "git status --short", "workdir": "/workspace", "timeout": 30},
		"correlation": map[string]any{"run_id": "run-7f3a", "tool_call_id": "call-0001", "session_key": "agent:main:main", "agent_id": "main",
			"trace": map[string]any{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		"facts": map[string]any{"sandboxed": true, "elevated": elevated, "requester": map[string]any{"channel": "ops", "sender_is_owner": true}},
	})
	return raw
}

type fixture struct {
	node *server.Node
	url  string
	tok  string
}

func setup(b *testing.B) *fixture {
	ctx := context.Background()
	dir := keystore.Dir(b.TempDir())
	node, err := server.Open(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LocalBuses: []string{"sb-bench"}}) // the tool gateway runs when it has a connector
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { node.Close() })
	url, err := node.Listen()
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
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
	return &fixture{node: node, url: url, tok: st.Token}
}

func report(b *testing.B, ds []time.Duration, base []time.Duration) {
	slices.Sort(ds)
	p50, p99 := ds[len(ds)/2], ds[len(ds)*99/100]
	b.ReportMetric(float64(p50)/1e6, "p50-ms")
	b.ReportMetric(float64(p99)/1e6, "p99-ms")
	if len(base) > 0 {
		slices.Sort(base)
		b50 := base[len(base)/2]
		b.ReportMetric(float64(b50)/1e6, "noop-p50-ms")
		b.ReportMetric(float64(p50-b50)/1e6, "added-p50-ms")
	}
}

// BenchmarkDecide times Gateway.DecideTool (token check, policy decision,
// egress guard, the runtime_decision event; for deny, the signed denial
// receipt) and, for result, CloseDecision (the tool_call event and its
// signed receipt), in process.
func BenchmarkDecide(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	decide := func(raw []byte) *toolgw.DecideAnswer {
		j, ae := f.node.Tools.Authorize(ctx, f.tok)
		if ae != nil {
			b.Fatal(ae)
		}
		req, pe := toolgw.ParseDecideRequest(raw)
		if pe != nil {
			b.Fatal(pe)
		}
		ans, de := f.node.Tools.DecideTool(ctx, j, req)
		if de != nil {
			b.Fatal(de)
		}
		return ans
	}
	for _, c := range []struct {
		name, want string
		raw        []byte
	}{{"allow", "allow", body("exec", false)}, {"deny", "deny", body("exec", true)}} {
		b.Run(c.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				t0 := time.Now()
				ans := decide(c.raw)
				if ans.Decision != c.want {
					b.Fatalf("%s: %+v", c.name, ans)
				}
				ds = append(ds, time.Since(t0))
				closeOpen(b, f, ans)
			}
			report(b, ds, nil)
		})
	}
	b.Run("result", func(b *testing.B) {
		res := &toolgw.ResultRequest{Status: toolgw.ResultSuccess, Result: canon.NewString("M README.md\n?? notes.txt\n")}
		var ds []time.Duration
		for b.Loop() {
			ans := decide(body("exec", false))
			j, _ := f.node.Tools.Authorize(ctx, f.tok)
			t0 := time.Now()
			if _, e := f.node.Tools.CloseDecision(ctx, j, ans.DecisionID, res); e != nil {
				b.Fatal(e)
			}
			ds = append(ds, time.Since(t0))
		}
		report(b, ds, nil)
	})
}

// BenchmarkDecideLoopback posts the same body over loopback HTTP to
// POST /v1/decide and to a no-op handler (reads the body, answers a small
// JSON object) on the same machine, alternating call by call, and reports
// the p50 the decision API adds.
func BenchmarkDecideLoopback(b *testing.B) {
	f := setup(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	noop := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"decision":"allow"}`))
	})}
	go noop.Serve(ln)
	b.Cleanup(func() { noop.Close() })
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func(url string, raw []byte) []byte {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+f.tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d", url, resp.StatusCode)
		}
		return out
	}
	for _, c := range []struct {
		name string
		raw  []byte
	}{{"allow", body("exec", false)}, {"deny", body("exec", true)}} {
		b.Run(c.name, func(b *testing.B) {
			var ds, base []time.Duration
			for b.Loop() {
				t0 := time.Now()
				post("http://"+ln.Addr().String()+"/", c.raw)
				t1 := time.Now()
				out := post(f.url+"/v1/decide", c.raw)
				base, ds = append(base, t1.Sub(t0)), append(ds, time.Since(t1))
				var ans toolgw.DecideAnswer
				json.Unmarshal(out, &ans)
				closeOpen(b, f, &ans)
			}
			report(b, ds, base)
		})
	}
}

// closeOpen closes an allowed decision, untimed: a job may keep only 256
// decisions open.
func closeOpen(b *testing.B, f *fixture, ans *toolgw.DecideAnswer) {
	if ans.Decision != toolgw.DecisionAllow {
		return
	}
	ctx := context.Background()
	j, ae := f.node.Tools.Authorize(ctx, f.tok)
	if ae != nil {
		b.Fatal(ae)
	}
	if _, e := f.node.Tools.CloseDecision(ctx, j, ans.DecisionID, &toolgw.ResultRequest{Status: toolgw.ResultSuccess, Result: canon.Value{Kind: canon.Null}}); e != nil {
		b.Fatal(e)
	}
}
