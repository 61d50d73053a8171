package registry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/internal/store/postgres"
	"github.com/clawea/clawea/internal/store/sqlite"
	"github.com/clawea/clawea/internal/store/storetest"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

type backend struct {
	name   string
	open   func(t *testing.T) store.Store
	tamper func(t *testing.T, s store.Store, hash string, payload []byte)
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) store.Store {
			db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}, func(t *testing.T, s store.Store, hash string, payload []byte) {
			if _, err := s.(*sqlite.DB).SQL().Exec(`UPDATE wpcs SET payload = ? WHERE hash = ?`, payload, hash); err != nil {
				t.Fatal(err)
			}
		}},
		{"postgres", func(t *testing.T) store.Store {
			db, err := postgres.Open(context.Background(), storetest.PostgresDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}, func(t *testing.T, s store.Store, hash string, payload []byte) {
			if _, err := s.(*postgres.DB).Pool().Exec(context.Background(), `UPDATE wpcs SET payload = $1 WHERE hash = $2`, payload, hash); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

const token = "test-admin-token"

func newRegistry(t *testing.T, s store.Store) (*httptest.Server, *signer.Key) {
	key, _ := signer.FromSeed(testkit.Seed(42))
	srv := &Server{Store: s, Signer: key, Authorize: AdminToken(token), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }}
	mux := http.NewServeMux()
	srv.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, key
}

func example(t *testing.T, name string) []byte {
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRegistryRoundTrip(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			ts, key := newRegistry(t, s)
			ctx := context.Background()
			c, err := NewClient(ts.URL, ClientOptions{Signers: []string{key.DID()}})
			if err != nil {
				t.Fatal(err)
			}
			doc := example(t, "kv-boundary.wpc.json")
			res, err := c.Publish(ctx, doc, token)
			if err != nil || res.Status != http.StatusCreated || res.Existed || len(res.PolicyHash) != 43 {
				t.Fatalf("publish: %+v %v", res, err)
			}
			again, err := c.Publish(ctx, doc, token)
			if err != nil || again.Status != http.StatusOK || !again.Existed || string(again.Envelope) != string(res.Envelope) {
				t.Fatalf("republish must return the first envelope: %+v %v", again, err)
			}
			got, err := c.Fetch(ctx, res.PolicyHash)
			if err != nil || got.Hash() != res.PolicyHash || got.PolicyID() != "kv-boundary-finance" {
				t.Fatalf("fetch: %v", err)
			}
			// An unlisted signer is refused even for a good policy.
			other, _ := NewClient(ts.URL, ClientOptions{Signers: []string{"did:key:z6MkneMkZqwqRiU5mJzSG3kDwzt9P8C59N4NGTfBLfSGE7c7"}})
			if _, err := other.Fetch(ctx, res.PolicyHash); ErrCode(err) != "WPC_SIGNER_NOT_ALLOWED" {
				t.Errorf("other allowlist: %v", err)
			}
			noList, _ := NewClient(ts.URL, ClientOptions{})
			if _, err := noList.Fetch(ctx, res.PolicyHash); ErrCode(err) != "WPC_SIGNER_ALLOWLIST_REQUIRED" {
				t.Errorf("no allowlist: %v", err)
			}
			// Tampering with the stored policy is detected on read.
			b.tamper(t, s, res.PolicyHash, []byte(strings.Replace(string(doc), "kv-boundary-finance", "kv-boundary-evil", 1)))
			resp, body := get(t, ts.URL+"/v1/wpc/"+res.PolicyHash)
			if resp.StatusCode != 500 || !strings.Contains(body, `"code":"WPC_CORRUPTED"`) {
				t.Errorf("tampered: %d %s", resp.StatusCode, body)
			}
			fresh, _ := NewClient(ts.URL, ClientOptions{Signers: []string{key.DID()}})
			if _, err := fresh.Fetch(ctx, res.PolicyHash); ErrCode(err) != CodeRegistryError {
				t.Errorf("client on a corrupted registry: %v", err)
			}
		})
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

func post(t *testing.T, url, auth, body string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestRegistryErrors(t *testing.T) {
	ts, _ := newRegistry(t, backends()[0].open(t))
	code := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		c, _ := e["code"].(string)
		return c
	}
	good := `{"wpc":` + string(example(t, "secrets-isolation.wpc.json")) + `}`
	tests := []struct {
		name, auth, body string
		status           int
		code             string
	}{
		{"no auth", "", good, 401, CodeUnauthorized},
		{"wrong token", "Bearer nope", good, 401, CodeUnauthorized},
		{"basic auth", "Basic " + token, good, 401, CodeUnauthorized},
		{"oversize", "Bearer " + token, `{"wpc":{"metadata":"` + strings.Repeat("x", 70000) + `"}}`, 413, CodePayloadTooLarge},
		{"not json", "Bearer " + token, `{`, 400, CodeInvalidJSON},
		{"no wpc", "Bearer " + token, `{"policy":{}}`, 400, CodeInvalidRequest},
		{"invalid wpc", "Bearer " + token, `{"wpc":{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z","statements":[{"sid":"s","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"Regex":{"k":"v"}}}]}}`, 400, CodeInvalidWPC},
		{"good", "bearer " + token, good, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := post(t, ts.URL+"/v1/wpc", tt.auth, tt.body)
			if status != tt.status || code(out) != tt.code {
				t.Errorf("got %d %q (%v), want %d %q", status, code(out), out, tt.status, tt.code)
			}
			if tt.code == CodeInvalidWPC {
				det := out["error"].(map[string]any)["details"].(map[string]any)
				if det["reason_code"] != "WPC_UNKNOWN_OPERATOR" || det["path"] != "statements[0].conditions.Regex" {
					t.Errorf("details %v", det)
				}
			}
			if status < 300 && out["ok"] != true {
				t.Errorf("ok flag: %v", out)
			}
			if _, has := out["ok"]; status >= 400 && (has || len(out) != 1) {
				t.Errorf("an error body is not just {\"error\":{...}}: %v", out)
			}
		})
	}
	for path, want := range map[string]string{
		"/v1/wpc/short":                             "400 " + CodeInvalidPolicyHash,
		"/v1/wpc/" + strings.Repeat("*", 43):        "400 " + CodeInvalidPolicyHash,
		"/v1/wpc/" + strings.Repeat("A", 43):        "404 " + CodeWPCNotFound,
		"/v1/wpc/" + strings.Repeat("A", 43) + "/x": "400 " + CodeInvalidPolicyHash,
	} {
		resp, body := get(t, ts.URL+path)
		var out map[string]any
		json.Unmarshal([]byte(body), &out)
		if got := strings.TrimSpace(strings.Fields(resp.Status)[0] + " " + code(out)); got != want {
			t.Errorf("GET %s: %s, want %s", path, got, want)
		}
	}
}

func TestRegistryList(t *testing.T) {
	ts, key := newRegistry(t, backends()[0].open(t))
	c, _ := NewClient(ts.URL, ClientOptions{Signers: []string{key.DID()}})
	for _, f := range []string{"kv-boundary.wpc.json", "secrets-isolation.wpc.json", "servicebus-send-only.wpc.json"} {
		if _, err := c.Publish(context.Background(), example(t, f), token); err != nil {
			t.Fatal(err)
		}
	}
	_, body := get(t, ts.URL+"/v1/wpc?limit=2")
	var page struct {
		OK        bool        `json:"ok"`
		Policies  []ListEntry `json:"policies"`
		NextAfter string      `json:"next_after"`
		SignerDID string      `json:"signer_did"`
	}
	json.Unmarshal([]byte(body), &page)
	if !page.OK || len(page.Policies) != 2 || page.NextAfter == "" || page.SignerDID != key.DID() {
		t.Fatalf("page 1: %s", body)
	}
	_, body = get(t, ts.URL+"/v1/wpc?limit=2&after="+page.NextAfter)
	page.NextAfter, page.Policies = "", nil
	json.Unmarshal([]byte(body), &page)
	if len(page.Policies) != 1 || page.NextAfter != "" {
		t.Fatalf("page 2: %s", body)
	}
	if resp, _ := get(t, ts.URL+"/v1/wpc?limit=0"); resp.StatusCode != 400 {
		t.Errorf("limit=0: %d", resp.StatusCode)
	}
}

func TestClientRules(t *testing.T) {
	if _, err := NewClient("http://registry.example.com", ClientOptions{}); ErrCode(err) != CodeBaseURL {
		t.Errorf("plain http to a remote host: %v", err)
	}
	if _, err := NewClient("https://registry.example.com", ClientOptions{}); err != nil {
		t.Errorf("https: %v", err)
	}
	c, _ := NewClient("http://127.0.0.1:1", ClientOptions{AllowAnySigner: true, HTTPClient: &http.Client{Timeout: time.Second}})
	if _, err := c.Fetch(context.Background(), strings.Repeat("A", 43)); ErrCode(err) != CodeFetchFailed {
		t.Errorf("unreachable: %v", err)
	}
	if _, err := c.Fetch(context.Background(), "bad"); ErrCode(err) != "POLICY_HASH_INVALID" {
		t.Errorf("bad hash: %v", err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not json")) }))
	defer bad.Close()
	c2, _ := NewClient(bad.URL, ClientOptions{AllowAnySigner: true})
	if _, err := c2.Fetch(context.Background(), strings.Repeat("A", 43)); ErrCode(err) != CodeBadJSON {
		t.Errorf("bad json: %v", err)
	}
}
