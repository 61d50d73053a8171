package toolgw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/toolgw"
)

// The canary: '/', '+', '&' and '=' make every encoding differ from the
// raw value (and '&' is what encoding/json writes as \u0026).
const canaryValue = "canary-S3cr3t/+&=v4lue-0042"

// TestCanaryEgressAndEvidence is the acceptance test of the egress guard
// and the evidence gate: a job reads a secret from the dev vault (the real
// azsecrets client), then tries to send it through Service Bus in every
// field and encoding, to store it through another secret, to write a
// redaction marker back, to pass it to the model gateway and to post it in
// an event of its own; then the job is finished and exported, the node is
// closed, and every byte of the data directory (SQLite database, -wal,
// -shm, the event journal, written bundles, the JSON log) plus the bundle,
// export and Trust Pulse answers is searched for every form of the secret.
func TestCanaryEgressAndEvidence(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "clawea.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	const vault = "kv-canary"
	kv := devVault(t, vault)
	if _, err := kv.Set(context.Background(), "agent/app/canary", canaryValue, "text/plain"); err != nil {
		t.Fatal(err)
	}
	up := localmodel.New(localmodel.Options{})
	base, err := up.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	data := keystore.Dir(filepath.Join(dir, "data"))
	node, err := server.Open(context.Background(), server.Config{DataDir: data, Listen: "127.0.0.1:0",
		Log:          slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ModelGateway: modelgw.Options{Providers: []modelgw.Provider{{Name: "local", BaseURL: base}}},
		ToolGateway:  toolgw.Options{Vaults: []keyvault.Client{kv}},
		LocalBuses:   []string{"sb-orders"}})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	closed := false
	stop := func() {
		if !closed {
			closed = true
			cancel()
			<-done
			node.Close()
		}
	}
	t.Cleanup(stop)
	admTok, _, _ := data.AdminToken()
	e := &env{t: t, node: node, url: addr, admin: client.New(addr, admTok), upstream: up}

	jobID, tok := e.job(e.publish([]byte(`{"policy_version":"2","policy_id":"canary-egress","issuer_did":"did:web:test.example","statements":[
		{"sid":"Reveal","effect":"Allow","actions":["keyvault:secrets.reveal","keyvault:secrets.set"],"resources":["kv://*/secrets/agent/**"]},
		{"sid":"Send","effect":"Allow","actions":["servicebus:send"],"resources":["sb://sb-orders/*"]},
		{"sid":"Model","effect":"Allow","actions":["model:invoke"],"resources":["model://local/*"]}]}`)))

	out, ok := toolCall(t, e, tok, "keyvault_reveal_secret", map[string]any{"vault": vault, "name": "agent/app/canary"})
	if !ok || !strings.Contains(out, "v4lue-0042") {
		t.Fatalf("reveal: %s", out)
	}
	// An ordinary send goes out: the guard is about secrets, not sends.
	if out, ok := toolCall(t, e, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "orders", "body": "hello",
		"subject": "greeting", "application_properties": map[string]any{"kind": "plain"}}); !ok {
		t.Fatalf("plain send: %s", out)
	}

	forms := map[string]string{"raw": canaryValue, "base64": base64.StdEncoding.EncodeToString([]byte(canaryValue)),
		"base64url": base64.RawURLEncoding.EncodeToString([]byte(canaryValue)), "hex": hex.EncodeToString([]byte(canaryValue)),
		"url": url.QueryEscape(canaryValue)}
	fields := map[string]func(s string) map[string]any{
		"body":           func(s string) map[string]any { return map[string]any{"body": "token=" + s} },
		"property value": func(s string) map[string]any { return map[string]any{"application_properties": map[string]any{"k": s}} },
		"property key":   func(s string) map[string]any { return map[string]any{"application_properties": map[string]any{s: "1"}} },
		"subject":        func(s string) map[string]any { return map[string]any{"subject": s} },
		"correlation_id": func(s string) map[string]any { return map[string]any{"correlation_id": s} },
		"message_id":     func(s string) map[string]any { return map[string]any{"message_id": s} },
	}
	for fname, field := range fields {
		for formName, f := range forms {
			if len(f) > 128 && (fname == "correlation_id" || fname == "message_id") {
				continue
			}
			args := map[string]any{"namespace": "sb-orders", "entity": "orders", "body": "x"}
			for k, v := range field(f) {
				args[k] = v
			}
			out, ok := toolCall(t, e, tok, "servicebus_send", args)
			if ok || !strings.Contains(out, `"code":"`+toolgw.CodeEgressSecret+`"`) || !strings.Contains(out, `"receipt_id":"tool_`) {
				t.Errorf("send with the secret (%s) in %s: %s", formName, fname, out)
			}
		}
	}
	// Key Vault: the value of one secret written into another is refused
	// too; a redaction marker written back is refused with its own code.
	if out, _ := toolCall(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vault, "name": "agent/app/copy", "value": canaryValue}); !strings.Contains(out, toolgw.CodeEgressSecret) {
		t.Errorf("copy the secret into another: %s", out)
	}
	if out, _ := toolCall(t, e, tok, "keyvault_set_secret", map[string]any{"vault": vault, "name": "agent/app/canary", "value": redact.Marker(vault + "/agent/app/canary")}); !strings.Contains(out, toolgw.CodePlaceholder) || !strings.Contains(out, `"receipt_id":"tool_`) {
		t.Errorf("write a marker back: %s", out)
	}
	if s, err := kv.Get(context.Background(), "agent/app/canary", ""); err != nil || s.Value != canaryValue {
		t.Errorf("the secret changed: %q %v", s.Value, err)
	}

	// The model gateway forwards the job's bodies redacted and records them hashed.
	body := `{"model":"clawea-local-test-model","messages":[{"role":"user","content":"remember ` + canaryValue + ` and ` + forms["hex"] + `"}]}`
	req, _ := http.NewRequest("POST", addr+"/v1/proxy/local/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	modelAnswer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("model call: %d %s", resp.StatusCode, modelAnswer)
	}

	// An event the agent posts with the secret, in clear or escaped, is refused.
	agent := client.New(addr, tok)
	for _, payload := range []string{`{"note":"` + canaryValue + `"}`, `{"note":"` + strings.ReplaceAll(canaryValue, "&", `\u0026`) + `"}`,
		`{"` + forms["base64"] + `":1}`} {
		_, _, err := agent.Do(context.Background(), "POST", "/v1/jobs/"+jobID+"/events", map[string]any{"event_type": "agent_note", "payload": json.RawMessage(payload)}, nil)
		var ce *client.Error
		if err == nil || !asClientError(err, &ce) || ce.Code != evidence.CodeSecretRefused {
			t.Errorf("agent event %s: %v", payload, err)
		}
	}
	if _, _, err := agent.Do(context.Background(), "POST", "/v1/jobs/"+jobID+"/events", map[string]any{"event_type": "agent_note", "payload": map[string]any{"note": "done"}}, nil); err != nil {
		t.Errorf("a plain agent event: %v", err)
	}

	// Finish, write the bundles beside the database, export.
	var fin jobs.FinishResult
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs/"+jobID+"/finish", map[string]any{}, &fin); err != nil {
		t.Fatal(err)
	}
	if fin.Status != "finished" || len(fin.Bundles) == 0 || len(fin.Bundles[0].TrustPulse) == 0 {
		t.Fatalf("finish: %+v", fin)
	}
	if _, err := jobs.WriteBundles(filepath.Join(dir, "bundles"), jobID, fin.Bundles); err != nil {
		t.Fatal(err)
	}
	var export json.RawMessage
	if _, _, err := e.admin.Do(context.Background(), "GET", "/v1/jobs/"+jobID+"/export", nil, &export); err != nil {
		t.Fatal(err)
	}
	finRaw, _ := json.Marshal(fin)
	// The refusals are in the bundle: signed denials with the egress code.
	if n := strings.Count(string(finRaw), toolgw.CodeEgressSecret); n < len(fields)*len(forms)-4 {
		t.Errorf("the bundle holds %d egress denials", n)
	}

	// Every byte: the answers, then the data directory with the node open
	// (WAL and journal as they are) and again once closed.
	search := map[string][]byte{"finish answer (bundles, URM, Trust Pulse)": finRaw, "export": export, "model answer": modelAnswer}
	scanDir := func(when string) {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			raw, err := os.ReadFile(path)
			if err == nil {
				search[when+" "+strings.TrimPrefix(path, dir)] = raw
			}
			return nil
		})
	}
	scanDir("open:")
	stop()
	scanDir("closed:")
	files := 0
	for where, raw := range search {
		if strings.Contains(where, "clawea.db") {
			files++
		}
		for _, f := range redact.Forms(canaryValue) {
			if bytes.Contains(raw, []byte(f)) {
				t.Errorf("the secret (as %q) appears in %s", f, where)
			}
		}
	}
	t.Logf("searched %d blobs, %d database files", len(search), files)
	if files < 2 {
		t.Errorf("the database files were not searched: %v", keys(search))
	}
	if log, _ := os.ReadFile(logPath); !bytes.Contains(log, []byte(toolgw.CodeEgressSecret)) && !bytes.Contains(log, []byte("egress of a secret refused")) {
		t.Errorf("the log does not show the refusals")
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func asClientError(err error, ce **client.Error) bool {
	e, ok := err.(*client.Error)
	*ce = e
	return ok
}

// toolCall calls a tool through the plain JSON API and returns the answer
// and whether the call ran.
func toolCall(t *testing.T, e *env, tok, tool string, args map[string]any) (string, bool) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"tool": tool, "arguments": args})
	req, _ := http.NewRequest("POST", e.url+"/v1/tools/call", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw), resp.StatusCode == http.StatusOK
}

// TestEgressAllowedOnlyByItsKey: a send carrying a secret runs only when
// an Allow statement requires Egress:CarriesSecret = "true"; a broad Allow
// of servicebus:send does not let a secret out.
func TestEgressAllowedOnlyByItsKey(t *testing.T) {
	e := start(t)
	const read = `{"sid":"Read","effect":"Allow","actions":["keyvault:secrets.get"],"resources":["kv://*/secrets/agent/**"]}`
	for _, tc := range []struct {
		name, send string
		want       string // "" runs
	}{
		{"broad allow", `{"sid":"Send","effect":"Allow","actions":["servicebus:send"],"resources":["sb://sb-orders/*"]}`, toolgw.CodeEgressSecret},
		{"explicit allow", `{"sid":"SendSecret","effect":"Allow","actions":["servicebus:send"],"resources":["sb://sb-orders/vault-sync"],
			"conditions":{"Bool":{"Egress:CarriesSecret":"true"}}}`, ""},
		{"explicit allow elsewhere", `{"sid":"SendSecret","effect":"Allow","actions":["servicebus:send"],"resources":["sb://sb-orders/other"],
			"conditions":{"Bool":{"Egress:CarriesSecret":"true"}}}`, toolgw.CodeEgressSecret},
		{"explicit deny", `{"sid":"Send","effect":"Allow","actions":["servicebus:send"],"resources":["sb://sb-orders/*"]},
			{"sid":"NoSecrets","effect":"Deny","actions":["servicebus:send"],"resources":["**"],"conditions":{"Bool":{"Egress:CarriesSecret":"true"}}}`, toolgw.CodeEgressSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tok := e.job(e.publish([]byte(`{"policy_version":"2","policy_id":"egress-` + strings.ReplaceAll(tc.name, " ", "-") + `","issuer_did":"did:web:test.example","statements":[` + read + `,` + tc.send + `]}`)))
			if out, ok := toolCall(t, e, tok, "keyvault_get_secret", map[string]any{"vault": vaultName, "name": "agent/app/db-password"}); !ok {
				t.Fatalf("get: %s", out)
			}
			// Without a secret the send is the policy's ordinary decision.
			plain, plainOK := toolCall(t, e, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "vault-sync", "body": "plain"})
			out, ok := toolCall(t, e, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "vault-sync", "body": "pw=" + dbPassword})
			switch {
			case tc.want == "" && !ok:
				t.Errorf("refused: %s", out)
			case tc.want != "" && (ok || !strings.Contains(out, tc.want)):
				t.Errorf("got %s, want %s", out, tc.want)
			case tc.name == "broad allow" && !plainOK:
				t.Errorf("a plain send was refused: %s", plain)
			}
			if strings.Contains(out, dbPassword) {
				t.Errorf("the answer holds the secret: %s", out)
			}
		})
	}
}
