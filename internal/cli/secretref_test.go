package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
)

// ocPolicy allows the local model, OpenAI's gpt-4o-mini and Claude models.
const ocPolicy = `{"policy_version":"2","policy_id":"openclaw-test","issuer_did":"did:web:test.example",
 "statements":[{"sid":"AllowModels","effect":"Allow","actions":["model:invoke"],
   "resources":["model://local/*","model://openai/gpt-4o-mini","model://anthropic/claude-*"]}]}`

// ocNode runs a node with a model gateway (three providers over a local
// model) and returns its URL, its admin client, and a job id and token.
func ocNode(t *testing.T) (url string, admin *client.Client, job, tok string) {
	t.Helper()
	up := localmodel.New(localmodel.Options{})
	base, err := up.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	data := keystore.Dir(t.TempDir())
	node, err := server.Open(context.Background(), server.Config{DataDir: data, Listen: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ModelGateway: modelgw.Options{Providers: []modelgw.Provider{
			{Name: "local", BaseURL: base, Models: []string{localmodel.ModelName}},
			{Name: "openai", BaseURL: base, APIKey: "sk-in-gateway", Models: []string{"gpt-4o-mini", "gpt-4o"}},
			{Name: "anthropic", Kind: modelgw.KindAnthropic, BaseURL: base, APIKey: "sk-ant-in-gateway", Models: []string{"claude-sonnet-4-5"}},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err = node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	at, _, err := data.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	admin = client.New(url, at)
	var pub struct {
		Hash string `json:"policy_hash_b64u"`
	}
	if _, _, err := admin.Do(ctx, "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": json.RawMessage(ocPolicy)}, &pub); err != nil {
		t.Fatal(err)
	}
	var agent struct {
		DID string `json:"did"`
	}
	if _, _, err := admin.Do(ctx, "POST", "/v1/agents", map[string]string{"name": "oc"}, &agent); err != nil {
		t.Fatal(err)
	}
	var st jobs.Started
	if _, _, err := admin.Do(ctx, "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: pub.Hash}, &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLAWEA_ADMIN_TOKEN", at)
	t.Setenv("CLAWEA_SERVER", url)
	return url, admin, st.Job.ID, st.Token
}

type srResp struct {
	ProtocolVersion int                          `json:"protocolVersion"`
	Values          map[string]string            `json:"values"`
	Errors          map[string]map[string]string `json:"errors"`
	Error           *struct{ Code string }       `json:"error"`
}

// secretref runs clawea secretref as OpenClaw does: a JSON request on
// stdin, a JSON answer on stdout.
func secretref(t *testing.T, req string, args ...string) (int, srResp, string) {
	t.Helper()
	code, out, errs := run(t, req, append([]string{"secretref"}, args...)...)
	var r srResp
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON (exit %d): %q %s", code, out, errs)
	}
	if r.ProtocolVersion != 1 {
		t.Fatalf("protocolVersion %d", r.ProtocolVersion)
	}
	return code, r, errs
}

func TestSecretRefProtocol(t *testing.T) {
	url, admin, job, tok := ocNode(t)
	id := "job/" + job + "/token"
	req := `{"protocolVersion":1,"provider":"clawea","ids":["` + id + `","other/thing","job/job_other/token"]}`

	// From the environment, checked with the issuer.
	t.Setenv("CLAWEA_TOKEN", tok)
	t.Setenv("CLAWEA_TOKEN_FILE", "")
	code, r, errs := secretref(t, req, "--server", url)
	if code != 0 || r.Values[id] != tok || len(r.Values) != 1 {
		t.Fatalf("exit %d %+v %s", code, r, errs)
	}
	if r.Errors["other/thing"]["code"] != "NOT_FOUND" || r.Errors["job/job_other/token"]["code"] != "NOT_FOUND" {
		t.Fatalf("per-id errors: %+v", r.Errors)
	}
	for k, v := range r.Errors {
		if strings.Contains(v["message"], tok) {
			t.Fatalf("%s: error message carries the token", k)
		}
	}

	// From a private file; a shared file or a symlink is refused.
	t.Setenv("CLAWEA_TOKEN", "")
	dir := t.TempDir()
	f := filepath.Join(dir, "tok")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, r, _ := secretref(t, req, "--server", url, "--token-file", f); r.Values[id] != tok {
		t.Fatalf("file: %+v", r)
	}
	os.Chmod(f, 0o644)
	if _, r, _ := secretref(t, req, "--server", url, "--token-file", f); r.Values[id] != "" || r.Errors[id]["code"] != "TOKEN_SOURCE_UNSAFE" {
		t.Fatalf("shared file: %+v", r)
	}
	os.Chmod(f, 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(f, link)
	if _, r, _ := secretref(t, req, "--server", url, "--token-file", link); r.Values[id] != "" || r.Errors[id]["code"] != "TOKEN_SOURCE_UNSAFE" {
		t.Fatalf("symlink: %+v", r)
	}
	if _, r, _ := secretref(t, req, "--server", url, "--token-file", filepath.Join(dir, "none")); r.Errors[id]["code"] != "NOT_FOUND" {
		t.Fatalf("missing file: %+v", r)
	}
	// The same token twice is fine; two different tokens for a job are not.
	t.Setenv("CLAWEA_TOKEN", tok)
	if _, r, _ := secretref(t, req, "--server", url, "--token-file", f); r.Values[id] != tok {
		t.Fatalf("same token twice: %+v", r)
	}
	other := forgeToken(t, tok)
	os.WriteFile(f, []byte(other), 0o600)
	if _, r, _ := secretref(t, req, "--offline", "--token-file", f); r.Values[id] != "" || r.Errors[id]["code"] != "AMBIGUOUS_DUPLICATE_KEY" {
		t.Fatalf("two tokens: %+v", r)
	}

	// Unreachable issuer: fail closed; --offline skips the question.
	t.Setenv("CLAWEA_TOKEN_FILE", "")
	if _, r, _ := secretref(t, req, "--server", "http://127.0.0.1:1"); r.Values[id] != "" || r.Errors[id]["code"] != "ISSUER_UNAVAILABLE" {
		t.Fatalf("unreachable: %+v", r)
	}
	if _, r, _ := secretref(t, req, "--offline"); r.Values[id] != tok {
		t.Fatalf("offline: %+v", r)
	}

	// A revoked token is inactive: the issuer says so.
	if _, _, err := admin.Do(context.Background(), "POST", "/v1/tokens/revoke", map[string]string{"token": tok}, nil); err != nil {
		t.Fatal(err)
	}
	if _, r, _ := secretref(t, req, "--server", url); r.Values[id] != "" || r.Errors[id]["code"] != "TOKEN_INACTIVE" {
		t.Fatalf("revoked: %+v", r)
	}
	// A token that is not for the job, or garbage, is never returned.
	t.Setenv("CLAWEA_TOKEN", "not-a-token")
	if _, r, _ := secretref(t, req, "--offline"); len(r.Values) != 0 || r.Errors[id]["code"] != "NOT_FOUND" {
		t.Fatalf("garbage: %+v", r)
	}
}

// forgeToken returns a token with the same claims but another signature
// (a different string naming the same job).
func forgeToken(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWS")
	}
	sig := []byte(parts[2])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	return parts[0] + "." + parts[1] + "." + string(sig)
}

func TestSecretRefProtocolErrors(t *testing.T) {
	t.Setenv("CLAWEA_TOKEN", "")
	for _, c := range []struct{ in, code string }{
		{``, "INVALID_REQUEST"},
		{`[]`, "INVALID_REQUEST"},
		{`{"protocolVersion":2,"ids":["a"]}`, "UNSUPPORTED_PROTOCOL"},
		{`{"protocolVersion":"1","ids":["a"]}`, "UNSUPPORTED_PROTOCOL"},
		{`{"ids":["a"]}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1,"ids":[]}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1,"ids":[1]}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1,"ids":["a/../b"]}`, "" /* grammar allows it: answered per id */},
		{`{"protocolVersion":1,"ids":["-bad"]}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1,"ids":["a","a"]}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1,"ids":["a"]} {}`, "INVALID_REQUEST"},
		{`{"protocolVersion":1,"provider":7,"ids":["a"]}`, "INVALID_REQUEST"},
	} {
		code, r, _ := secretref(t, c.in, "--offline")
		if c.code == "" {
			if code != 0 || r.Error != nil || r.Errors["a/../b"]["code"] != "NOT_FOUND" {
				t.Errorf("%s: exit %d %+v", c.in, code, r)
			}
			continue
		}
		if code != ExitUsage || r.Error == nil || r.Error.Code != c.code || len(r.Values) != 0 {
			t.Errorf("%s: exit %d %+v", c.in, code, r)
		}
	}
}

func FuzzSecretRefRequest(f *testing.F) {
	for _, s := range []string{`{"protocolVersion":1,"provider":"clawea","ids":["job/job_1/token"]}`, `{"protocolVersion":1,"ids":["a","b"]}`,
		`{"protocolVersion":2}`, `[]`, `{"protocolVersion":1,"ids":["x"],"extra":{"a":[1,2]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, e := parseSecretRefRequest(raw)
		if (req == nil) == (e == nil) {
			t.Fatal("exactly one of request and error")
		}
		if e != nil {
			if e.Code != SecretRefInvalidRequest && e.Code != SecretRefUnsupported {
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if len(req.IDs) == 0 || len(req.IDs) > secretRefMaxIDs {
			t.Fatalf("%d ids", len(req.IDs))
		}
		seen := map[string]bool{}
		for _, id := range req.IDs {
			if !execIDRe.MatchString(id) || seen[id] {
				t.Fatalf("id %q", id)
			}
			seen[id] = true
		}
		// An accepted request resolves to an answer for every id, offline
		// with no token source: all errors, no value.
		resp := (&tokenSource{now: time.Now}).resolve(context.Background(), req)
		if len(resp.Values) != 0 || len(resp.Errors) != len(req.IDs) {
			t.Fatalf("%+v", resp)
		}
	})
}
