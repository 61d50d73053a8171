package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/signer"
)

// marker is the text of every injected store failure: a Go error with
// SQL and a file path, none of which may reach a response.
const marker = "INTERNAL-MARKER /var/lib/clawea/secret.db: sql: no rows in result set"

// failStore fails every method with marker while on is set.
type failStore struct {
	store.Store
	on atomic.Bool
}

func (f *failStore) fail() error { return errors.New(marker) }

// TestFailStoreCoversTheStore: failStore declares every method of
// store.Store (but Backend and Close) itself, so a new store method
// cannot escape the failure injection by being promoted from the
// embedded store.
func TestFailStoreCoversTheStore(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
			continue
		}
		if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && id.Name == "failStore" {
				declared[fd.Name.Name] = true
			}
		}
	}
	st := reflect.TypeOf((*store.Store)(nil)).Elem()
	for i := range st.NumMethod() {
		if m := st.Method(i).Name; m != "Backend" && m != "Close" && !declared[m] {
			t.Errorf("failStore does not fail store method %s", m)
		}
	}
}

func (f *failStore) PutWPC(ctx context.Context, w store.WPC) (r0 store.WPC, r1 bool, r2 error) {
	if f.on.Load() {
		return r0, r1, f.fail()
	}
	return f.Store.PutWPC(ctx, w)
}

func (f *failStore) GetWPC(ctx context.Context, hash string) (r0 store.WPC, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetWPC(ctx, hash)
}

func (f *failStore) ListWPCs(ctx context.Context, after string, limit int) (r0 []store.WPC, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListWPCs(ctx, after, limit)
}

func (f *failStore) PutIssuerKey(ctx context.Context, k store.IssuerKey) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.PutIssuerKey(ctx, k)
}

func (f *failStore) ListIssuerKeys(ctx context.Context) (r0 []store.IssuerKey, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListIssuerKeys(ctx)
}

func (f *failStore) PutIssuedToken(ctx context.Context, t store.IssuedToken) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.PutIssuedToken(ctx, t)
}

func (f *failStore) GetIssuedToken(ctx context.Context, tokenHash string) (r0 store.IssuedToken, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetIssuedToken(ctx, tokenHash)
}

func (f *failStore) Revoke(ctx context.Context, r store.Revocation) (r0 store.Revocation, r1 bool, r2 error) {
	if f.on.Load() {
		return r0, r1, f.fail()
	}
	return f.Store.Revoke(ctx, r)
}

func (f *failStore) GetRevocation(ctx context.Context, tokenHash string) (r0 store.Revocation, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetRevocation(ctx, tokenHash)
}

func (f *failStore) RevocationsSince(ctx context.Context, after int64, limit int) (r0 []store.Revocation, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.RevocationsSince(ctx, after, limit)
}

func (f *failStore) CreateJob(ctx context.Context, j store.Job) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.CreateJob(ctx, j)
}

func (f *failStore) GetJob(ctx context.Context, id string) (r0 store.Job, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetJob(ctx, id)
}

func (f *failStore) ListJobs(ctx context.Context, after string, status string, limit int) (r0 []store.Job, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListJobs(ctx, after, status, limit)
}

func (f *failStore) JobsChangedSince(ctx context.Context, after int64, limit int) (r0 []store.Job, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.JobsChangedSince(ctx, after, limit)
}

func (f *failStore) SetJobStatus(ctx context.Context, id string, from string, to string, at time.Time) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.SetJobStatus(ctx, id, from, to, at)
}

func (f *failStore) AppendEvent(ctx context.Context, jobID string, next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error) {
	if f.on.Load() {
		return store.JobEvent{}, f.fail()
	}
	return f.Store.AppendEvent(ctx, jobID, next)
}

func (f *failStore) ListEvents(ctx context.Context, jobID string) (r0 []store.JobEvent, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListEvents(ctx, jobID)
}

func (f *failStore) AddItem(ctx context.Context, it store.JobItem) (r0 store.JobItem, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.AddItem(ctx, it)
}

func (f *failStore) ListItems(ctx context.Context, jobID string) (r0 []store.JobItem, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListItems(ctx, jobID)
}

func (f *failStore) PutBundle(ctx context.Context, b store.Bundle) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.PutBundle(ctx, b)
}

func (f *failStore) ListBundles(ctx context.Context, jobID string) (r0 []store.Bundle, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListBundles(ctx, jobID)
}

func (f *failStore) PutAgent(ctx context.Context, a store.Agent) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.PutAgent(ctx, a)
}

func (f *failStore) GetAgent(ctx context.Context, did string) (r0 store.Agent, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetAgent(ctx, did)
}

func (f *failStore) ListAgents(ctx context.Context) (r0 []store.Agent, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListAgents(ctx)
}

func (f *failStore) AddUsage(ctx context.Context, jobID string, d store.Usage, limit store.Usage) (r0 store.Usage, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.AddUsage(ctx, jobID, d, limit)
}

func (f *failStore) GetUsage(ctx context.Context, jobID string) (r0 store.Usage, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetUsage(ctx, jobID)
}

func (f *failStore) ClaimCall(ctx context.Context, c store.GatewayCall) (r0 store.GatewayCall, r1 bool, r2 error) {
	if f.on.Load() {
		return r0, r1, f.fail()
	}
	return f.Store.ClaimCall(ctx, c)
}

func (f *failStore) CompleteCall(ctx context.Context, c store.GatewayCall) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.CompleteCall(ctx, c)
}

func (f *failStore) ReleaseCall(ctx context.Context, jobID string, nonce string) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.ReleaseCall(ctx, jobID, nonce)
}

func (f *failStore) GetCall(ctx context.Context, jobID string, nonce string) (r0 store.GatewayCall, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetCall(ctx, jobID, nonce)
}

func (f *failStore) CreateApproval(ctx context.Context, a store.Approval) (r0 store.Approval, r1 bool, r2 error) {
	if f.on.Load() {
		return r0, r1, f.fail()
	}
	return f.Store.CreateApproval(ctx, a)
}

func (f *failStore) GetApproval(ctx context.Context, id string) (r0 store.Approval, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetApproval(ctx, id)
}

func (f *failStore) FindApproval(ctx context.Context, jobID string, tool string, argsHash string, policyHash string) (r0 store.Approval, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.FindApproval(ctx, jobID, tool, argsHash, policyHash)
}

func (f *failStore) ListApprovals(ctx context.Context, status string, after string, limit int) (r0 []store.Approval, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ListApprovals(ctx, status, after, limit)
}

func (f *failStore) SetApprovalStatus(ctx context.Context, id string, from string, to string, approver string, decision []byte, at time.Time) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.SetApprovalStatus(ctx, id, from, to, approver, decision, at)
}

func (f *failStore) SetLockdown(ctx context.Context, l store.Lockdown) (r0 store.Lockdown, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.SetLockdown(ctx, l)
}

func (f *failStore) GetLockdown(ctx context.Context) (r0 store.Lockdown, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.GetLockdown(ctx)
}

func (f *failStore) SetConnectorSwitch(ctx context.Context, c store.ConnectorSwitch) (r0 store.ConnectorSwitch, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.SetConnectorSwitch(ctx, c)
}

func (f *failStore) DeniedConnectors(ctx context.Context) (r0 []store.ConnectorSwitch, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.DeniedConnectors(ctx)
}

func (f *failStore) ConnectorSwitchLog(ctx context.Context, limit int) (r0 []store.ConnectorSwitch, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.ConnectorSwitchLog(ctx, limit)
}

func (f *failStore) LockdownLog(ctx context.Context, limit int) (r0 []store.Lockdown, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.LockdownLog(ctx, limit)
}

func (f *failStore) AddCounter(ctx context.Context, jobID string, name string, delta int64) (r0 int64, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.AddCounter(ctx, jobID, name, delta)
}

func (f *failStore) BusSend(ctx context.Context, m store.BusMessage) (r0 store.BusMessage, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.BusSend(ctx, m)
}

func (f *failStore) BusPeek(ctx context.Context, ns string, entity string, max int) (r0 []store.BusMessage, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.BusPeek(ctx, ns, entity, max)
}

func (f *failStore) BusReceive(ctx context.Context, ns string, entity string, max int, lockFor time.Duration, now time.Time) (r0 []store.BusMessage, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.BusReceive(ctx, ns, entity, max, lockFor, now)
}

func (f *failStore) BusSettle(ctx context.Context, ns string, entity string, lockToken string, action string, reason string, desc string, now time.Time) (r0 error) {
	if f.on.Load() {
		return f.fail()
	}
	return f.Store.BusSettle(ctx, ns, entity, lockToken, action, reason, desc, now)
}

func (f *failStore) BusReceiveDead(ctx context.Context, ns string, entity string, max int) (r0 []store.BusMessage, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.BusReceiveDead(ctx, ns, entity, max)
}

func (f *failStore) AddPolicyChange(ctx context.Context, c store.PolicyChange) (r0 store.PolicyChange, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.AddPolicyChange(ctx, c)
}

func (f *failStore) PolicyChangesSince(ctx context.Context, after int64, limit int) (r0 []store.PolicyChange, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.PolicyChangesSince(ctx, after, limit)
}

func (f *failStore) BusPurgeDead(ctx context.Context, ns string, entity string) (r0 int, r1 error) {
	if f.on.Load() {
		return r0, f.fail()
	}
	return f.Store.BusPurgeDead(ctx, ns, entity)
}

// leak matches internal text: the marker, SQL, file paths, Go error
// idioms.
var leak = regexp.MustCompile(`(?i)INTERNAL-MARKER|\bsql\b|/var/|/tmp/|\.db\b|no rows|goroutine|panic|runtime error|%!|unexpected EOF|invalid character|json: |unmarshal`)

type walkNode struct {
	node  *server.Node
	url   string
	admin string
	job   string
	token string
	hash  string
	fs    *failStore
	op    *signer.Key // the policy operator
}

func startWalkNode(t *testing.T) *walkNode {
	t.Helper()
	w := startNodeWith(t, nil)
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "demo-job.wpc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Hash string `json:"policy_hash_b64u"`
	}
	w.mustCall(t, "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": raw}, &pub)
	var agent struct {
		DID string `json:"did"`
	}
	w.mustCall(t, "POST", "/v1/agents", map[string]string{"name": "walker"}, &agent)
	var st jobs.Started
	w.mustCall(t, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: pub.Hash}, &st)
	w.job, w.token, w.hash = st.Job.ID, st.Token, pub.Hash
	return w
}

// startNodeWith starts a node with every role (a local model, a dev vault,
// a local bus) and a policy operator; edit adjusts its configuration.
func startNodeWith(t *testing.T, edit func(*server.Config)) *walkNode {
	t.Helper()
	up := localmodel.New(localmodel.Options{})
	base, err := up.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	dir := keystore.Dir(t.TempDir())
	dv, err := devvault.New(devvault.Options{Vault: "kv-prod-finance-001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dv.Put("agent--app--db-password", "s3cret-canary", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := dv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Close() })
	kv, err := dv.Conn().Client()
	if err != nil {
		t.Fatal(err)
	}
	fs := &failStore{}
	op, err := signer.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0",
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		ModelGateway: modelgw.Options{Providers: []modelgw.Provider{{Name: "local", BaseURL: base}}},
		ToolGateway:  toolgw.Options{Vaults: []keyvault.Client{kv}},
		LocalBuses:   []string{"sb-orders"},
		WrapStore:    func(s store.Store) store.Store { fs.Store = s; return fs },
		Policy:       server.PolicyLifecycle{Operators: []string{op.DID()}}}
	if edit != nil {
		edit(&cfg)
	}
	node, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	url, err := node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	tok, _, _ := cfg.DataDir.AdminToken()
	return &walkNode{node: node, url: url, admin: tok, fs: fs, op: op}
}

func (w *walkNode) mustCall(t *testing.T, method, path string, body, out any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, w.url+path, bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+w.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, got)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatal(err)
		}
	}
}

// concrete turns a route pattern into requests: methods and a path with
// its wildcards filled.
func (w *walkNode) concrete(pattern string) ([]string, string) {
	methods := []string{"GET", "POST"}
	path := pattern
	if m, p, ok := strings.Cut(pattern, " "); ok {
		methods, path = []string{m}, p
	}
	for k, v := range map[string]string{"{id}": w.job, "{hash...}": strings.Repeat("A", 43), "{hash}": strings.Repeat("A", 43), "{nonce}": "nonce-1",
		"{provider}": "local", "{rest...}": "v1/chat/completions"} {
		path = strings.ReplaceAll(path, k, v)
	}
	return methods, path
}

// checkBody asserts the one error shape on a failure and no internal text
// in any body.
func checkBody(t *testing.T, what string, status int, ctype string, body []byte) {
	t.Helper()
	if m := leak.Find(body); m != nil {
		t.Errorf("%s: %d body holds internal text %q: %s", what, status, m, body)
	}
	if status < 400 {
		return
	}
	var b struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if !strings.HasPrefix(ctype, "application/json") || json.Unmarshal(body, &b) != nil || b.Error == nil ||
		!regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`).MatchString(b.Error.Code) || b.Error.Message == "" {
		t.Errorf("%s: %d body is not {\"error\":{\"code\",\"message\"}} (%s): %s", what, status, ctype, body)
	}
}

// TestEveryRouteAnswersWithoutInternalText walks every registered route
// with each kind of credential, healthy and with every store method
// failing, and checks every answer.
func TestEveryRouteAnswersWithoutInternalText(t *testing.T) {
	w := startWalkNode(t)
	if len(w.node.Routes) < 30 {
		t.Fatalf("only %d routes registered: %v", len(w.node.Routes), w.node.Routes)
	}
	creds := map[string]map[string]string{
		"none":     {},
		"admin":    {"Authorization": "Bearer " + w.admin},
		"job":      {"Authorization": "Bearer " + w.token},
		"job-cst":  {"X-CST": w.token},
		"garbage":  {"Authorization": "Bearer not-a-token/../../etc/passwd"},
		"jwt-junk": {"Authorization": "Bearer eyJhbGciOiJFZERTQSJ9.e30.AAAA"},
		"conflict": {"X-CST": w.token, "Authorization": "Bearer " + w.admin},
		"run-id":   {"X-CST": w.token, "X-Run-Id": "job_other.s1"},
		"pol-hash": {"X-CST": w.token, "X-Policy-Hash": strings.Repeat("B", 43)},
	}
	bodies := []string{`{}`, `{"not json`, `{"tool":"keyvault_get_secret","arguments":{"vault":"kv-prod-finance-001","name":"agent/app/db-password"}}`}
	client := &http.Client{Timeout: 20 * time.Second}
	n := 0
	for _, failing := range []bool{false, true} {
		w.fs.on.Store(failing)
		for _, pattern := range w.node.Routes {
			methods, path := w.concrete(pattern)
			for _, method := range methods {
				for cname, hs := range creds {
					for _, body := range bodies {
						if method == "GET" && body != bodies[0] {
							continue
						}
						req, _ := http.NewRequest(method, w.url+path, strings.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Accept", "application/json, text/event-stream")
						for k, v := range hs {
							req.Header.Set(k, v)
						}
						ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
						resp, err := client.Do(req.WithContext(ctx))
						if err != nil {
							cancel()
							t.Fatalf("%s %s: %v", method, path, err)
						}
						raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
						resp.Body.Close()
						cancel()
						n++
						what := method + " " + path + " [" + cname + "] failing=" + map[bool]string{false: "no", true: "yes"}[failing]
						if resp.Header.Get("X-Request-Id") == "" {
							t.Errorf("%s: no X-Request-Id", what)
						}
						checkBody(t, what, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
						// Healthy, the admin reads what it may read.
						if !failing && cname == "admin" && method == "GET" && resp.StatusCode != http.StatusOK &&
							(strings.HasPrefix(pattern, "GET /v1/jobs") && !strings.HasSuffix(pattern, "/bundles") && !strings.HasSuffix(pattern, "/export") || strings.HasPrefix(pattern, "GET /v1/agents") ||
								pattern == "GET /v1/lockdown" || pattern == "GET /v1/approvals" || pattern == "GET /v1/wpc") {
							t.Errorf("%s: %d %s", what, resp.StatusCode, raw)
						}
					}
				}
			}
		}
	}
	// Paths and methods no route serves answer in the shape too.
	for _, r := range [][2]string{{"GET", "/nope"}, {"DELETE", "/v1/jobs"}, {"PUT", "/v1/wpc"}} {
		req, _ := http.NewRequest(r[0], w.url+r[1], nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%v: %d", r, resp.StatusCode)
		}
		checkBody(t, r[0]+" "+r[1], resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	t.Logf("%d requests over %d routes", n, len(w.node.Routes))
}

// TestConflictingCredentialsRefusedEverywhere: every job-token surface
// refuses two headers with different tokens, an X-Run-Id of another job
// and an X-Policy-Hash other than the pin, with the same codes.
func TestConflictingCredentialsRefusedEverywhere(t *testing.T) {
	w := startWalkNode(t)
	var agent struct {
		DID string `json:"did"`
	}
	w.mustCall(t, "POST", "/v1/agents", map[string]string{"name": "other"}, &agent)
	var jobsOut struct {
		Jobs []struct {
			PolicyHash string `json:"policy_hash_b64u"`
		} `json:"jobs"`
	}
	w.mustCall(t, "GET", "/v1/jobs", nil, &jobsOut)
	var other jobs.Started
	w.mustCall(t, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: jobsOut.Jobs[0].PolicyHash}, &other)
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/tools", ""},
		{"POST", "/v1/tools/call", `{"tool":"keyvault_get_secret","arguments":{"vault":"kv-prod-finance-001","name":"agent/app/db-password"}}`},
		{"POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
		{"POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`},
		{"GET", "/v1/jobs/" + w.job, ""},
	}
	cases := []struct {
		name    string
		headers map[string]string
		code    string
	}{
		{"auth+cst", map[string]string{"Authorization": "Bearer " + other.Token, "X-CST": w.token}, "STRICT_AUTH_HEADERS"},
		{"cst+scoped", map[string]string{"X-Scoped-Token": other.Token, "X-CST": w.token}, "STRICT_AUTH_HEADERS"},
		{"run-id", map[string]string{"X-CST": w.token, "X-Run-Id": other.Job.ID + ".s1"}, "TOKEN_JOB_MISMATCH"},
	}
	for _, rt := range routes {
		for _, c := range cases {
			code := request(t, w.url, rt.method, rt.path, rt.body, c.headers)
			if code != c.code {
				t.Errorf("%s %s %s: code %q, want %q", rt.method, rt.path, c.name, code, c.code)
			}
		}
		if rt.path == "/v1/jobs/"+w.job {
			continue // no policy pin on job routes
		}
		code := request(t, w.url, rt.method, rt.path, rt.body, map[string]string{"X-CST": w.token, "X-Policy-Hash": strings.Repeat("B", 43)})
		if code != "POLICY_HASH_MISMATCH" {
			t.Errorf("%s %s policy hash: code %q", rt.method, rt.path, code)
		}
	}
}

func request(t *testing.T, base, method, path, body string, headers map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(raw, &b)
	if b.Error.Code == "" {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return b.Error.Code
}
