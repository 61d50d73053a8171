package modelgwbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/testkit"
)

// The upstream answers every chat call with the same 1 KiB OpenAI-style
// body, or streams it in 8 chunks.
var (
	reply      = buildReply()
	chatBody   = []byte(`{"model":"bench-model","messages":[{"role":"user","content":"How many payments failed yesterday?"}]}`)
	streamBody = []byte(`{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"How many payments failed yesterday?"}]}`)
)

func buildReply() []byte {
	content := strings.Repeat("All payments settled; nothing to report. ", 21)
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench-model",
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}, "finish_reason": "stop"}},
		"usage":   map[string]any{"prompt_tokens": 9, "completion_tokens": 140, "total_tokens": 149}})
	return b
}

func upstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !bytes.Contains(body, []byte(`"stream":true`)) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(reply)))
		w.Write(reply)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	for i := 0; i < 8; i++ {
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", strings.Repeat("x", 100))
		fl.Flush()
	}
	io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":8}}\n\ndata: [DONE]\n\n")
}

func serve(h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }
}

type target struct {
	name string
	url  string
	hdr  http.Header
}

// Each party runs in its own process, as it would in production: the
// upstream, the reverse proxy and the gateway are this test binary started
// again with MODELGW_BENCH_ROLE set; the load comes from this process.
// (In one process, the client, the gateway and the upstream would compete
// for the same scheduler and the numbers would measure that.)
// roles runs this binary as the benchmark's processes.
var roles = testkit.Roles{Prefix: "MODELGW_BENCH"}

func TestMain(m *testing.M) {
	switch roles.Role() {
	case "":
		os.Exit(m.Run())
	case "upstream":
		u, _ := serve(http.HandlerFunc(upstream))
		fmt.Println(u)
	case "proxy":
		u, _ := url.Parse(os.Getenv("MODELGW_BENCH_UPSTREAM"))
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
		rp.FlushInterval = -1
		p, _ := serve(rp)
		fmt.Println(p)
	case "gateway":
		server.TuneGC() // as clawea serve does
		node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(os.Getenv("MODELGW_BENCH_DATA")), Listen: "127.0.0.1:0",
			Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
			ModelGateway: modelgw.Options{Providers: []modelgw.Provider{{Name: "bench", BaseURL: os.Getenv("MODELGW_BENCH_UPSTREAM") + "/v1"}}}})
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

// setup starts the upstream, a plain reverse proxy to it, and a clawea
// node whose model gateway points at it, with one open job.
func setup(b testing.TB) (direct, proxy, gateway target, done func()) {
	direct, proxy, gateway, _, done = setupJobs(b, 0)
	return
}

// setupJobs is setup with extra gateway targets, each with its own job.
func setupJobs(b testing.TB, extra int) (direct, proxy, gateway target, more []target, done func()) {
	upURL, stopUp := roles.Spawn(b, "upstream")
	rpURL, stopRP := roles.Spawn(b, "proxy", "MODELGW_BENCH_UPSTREAM="+upURL)
	dir := keystore.Dir(b.TempDir())
	gwURL, stopGW := roles.Spawn(b, "gateway", "MODELGW_BENCH_UPSTREAM="+upURL, "MODELGW_BENCH_DATA="+string(dir))
	ctx := context.Background()
	tok, _, _ := dir.AdminToken()
	admin := client.New(gwURL, tok)
	var pub struct {
		Hash string `json:"policy_hash_b64u"`
	}
	policy := `{"policy_version":"2","policy_id":"bench","issuer_did":"did:web:bench.example","statements":[{"sid":"A","effect":"Allow","actions":["model:invoke"],"resources":["model://bench/*"]}]}`
	if _, _, err := admin.Do(ctx, "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": json.RawMessage(policy)}, &pub); err != nil {
		b.Fatal(err)
	}
	var agent struct {
		DID string `json:"did"`
	}
	admin.Do(ctx, "POST", "/v1/agents", map[string]string{"name": "bench"}, &agent)
	newJob := func() target {
		var st jobs.Started
		if _, _, err := admin.Do(ctx, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: pub.Hash, TTLSec: 3600}, &st); err != nil {
			b.Fatal(err)
		}
		return target{"clawea model gateway", gwURL + "/v1/proxy/bench/v1/chat/completions", http.Header{"Authorization": {"Bearer " + st.Token}}}
	}
	direct = target{"upstream directly", upURL + "/v1/chat/completions", http.Header{}}
	proxy = target{"httputil.ReverseProxy", rpURL + "/v1/chat/completions", http.Header{}}
	gateway = newJob()
	for i := 0; i < extra; i++ {
		more = append(more, newJob())
	}
	return direct, proxy, gateway, more, func() {
		stopGW()
		stopRP()
		stopUp()
	}
}

var httpc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 512, DisableCompression: true}}

// once sends one request and returns the time to the last byte (or, with
// ttfb, to the first byte of the body).
func once(t target, body []byte, ttfb bool) (time.Duration, error) {
	req, _ := http.NewRequest("POST", t.url, bytes.NewReader(body))
	req.Header = t.hdr.Clone()
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("%s: HTTP %d %s", t.name, resp.StatusCode, raw)
	}
	var first time.Duration
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 && first == 0 {
			first = time.Since(start)
		}
		if err != nil {
			break
		}
	}
	if ttfb {
		return first, nil
	}
	return time.Since(start), nil
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)*50/100], ds[len(ds)*99/100]
}

// lightLoad measures latency at light load: one request at a time. The
// targets take turns in blocks (rounds blocks of n/rounds calls each, in
// the same order every round, after a short warm-up per block), so that
// each is measured in steady use, as one phase per target would, while
// the host's speed, which drifts by up to 2x within seconds on a shared
// VM, weighs on every target alike. The percentiles pool all rounds.
func lightLoad(b testing.TB, ts []target, body []byte, n, rounds int, ttfb bool) (p50, p99 []time.Duration) {
	ds := make([][]time.Duration, len(ts))
	per := max(n/rounds, 1)
	for r := 0; r < rounds; r++ {
		for j, t := range ts {
			for i := 0; i < 20; i++ { // warm connections and caches
				if _, err := once(t, body, ttfb); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < per; i++ {
				d, err := once(t, body, ttfb)
				if err != nil {
					b.Fatal(err)
				}
				ds[j] = append(ds[j], d)
			}
		}
	}
	for _, d := range ds {
		a, z := percentiles(d)
		p50, p99 = append(p50, a), append(p99, z)
	}
	return p50, p99
}

// saturate measures throughput with many concurrent clients, all on t.
func saturate(b testing.TB, t target, clients, total int) float64 {
	ts := make([]target, clients)
	for i := range ts {
		ts[i] = t
	}
	return saturateEach(b, ts, total)
}

// saturateEach runs one client per target.
func saturateEach(b testing.TB, ts []target, total int) float64 {
	clients := len(ts)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if _, err := once(ts[c], chatBody, false); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		panic(err)
	}
	return float64(total) / time.Since(start).Seconds()
}

// BenchmarkModelGateway runs the whole comparison once per iteration (use
// -benchtime 1x): latency at light load (p50, p99) for the upstream
// directly, a plain httputil.ReverseProxy and the gateway; streaming time
// to first byte; throughput at saturation, with each client on its own job
// (agents run their own jobs) and, as a worst case, every client on one
// job. BENCH_N (default 2000), BENCH_CLIENTS (32) and BENCH_TOTAL (6000)
// bound the work; BENCH_ROUNDS (4) is how many blocks the light-load calls
// of each target are split into (1: one phase per target).
func BenchmarkModelGateway(b *testing.B) {
	n, clients, total := testkit.IntEnv("BENCH_N", 2000), testkit.IntEnv("BENCH_CLIENTS", 32), testkit.IntEnv("BENCH_TOTAL", 6000)
	rounds := testkit.IntEnv("BENCH_ROUNDS", 4)
	for i := 0; i < b.N; i++ {
		direct, proxy, gateway, more, done := setupJobs(b, clients-1)
		type row struct {
			name     string
			p50, p99 time.Duration
			ttfb50   time.Duration
			rps      float64
		}
		var rows []row
		ts := []target{direct, proxy, gateway}
		p50, p99 := lightLoad(b, ts, chatBody, n, rounds, false)
		ttfb, _ := lightLoad(b, ts, streamBody, n/4, rounds, true)
		for i, t := range ts {
			rows = append(rows, row{t.name, p50[i], p99[i], ttfb[i], 0})
		}
		rows[0].rps = saturate(b, direct, clients, total)
		rows[1].rps = saturate(b, proxy, clients, total)
		rows[2].rps = saturateEach(b, append([]target{gateway}, more...), total)
		oneJob := saturate(b, gateway, clients, total)
		done()
		d, rp, gw := rows[0], rows[1], rows[2]
		fmt.Fprintf(os.Stderr, "\n%-24s %9s %9s %12s %10s\n", "target", "p50", "p99", "stream TTFB", "req/s")
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "%-24s %9s %9s %12s %10.0f\n", r.name, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.ttfb50.Round(time.Microsecond), r.rps)
		}
		fmt.Fprintf(os.Stderr, "gateway added over direct: p50 %s, p99 %s, stream TTFB %s; over the reverse proxy: p50 %s, p99 %s\n",
			(gw.p50 - d.p50).Round(time.Microsecond), (gw.p99 - d.p99).Round(time.Microsecond), (gw.ttfb50 - d.ttfb50).Round(time.Microsecond),
			(gw.p50 - rp.p50).Round(time.Microsecond), (gw.p99 - rp.p99).Round(time.Microsecond))
		fmt.Fprintf(os.Stderr, "throughput: gateway %.0f req/s = %.2fx the reverse proxy (%d clients on %d jobs, %d requests); all clients on one job: %.0f req/s = %.2fx\n",
			gw.rps, gw.rps/rp.rps, clients, clients, total, oneJob, oneJob/rp.rps)
		b.ReportMetric(float64(gw.p50-d.p50)/1e6, "added-p50-ms")
		b.ReportMetric(float64(gw.p99-d.p99)/1e6, "added-p99-ms")
		b.ReportMetric(float64(gw.ttfb50-d.ttfb50)/1e6, "added-ttfb-ms")
		b.ReportMetric(gw.rps/rp.rps, "throughput-vs-proxy")
		b.ReportMetric(gw.rps, "gateway-req/s")
	}
}
