package keyvault

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/policy"
)

func kvTools(t testing.TB) map[string]*connector.Tool {
	k, err := NewTools([]Client{NewFake("kv-prod-finance-001")})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*connector.Tool{}
	for _, tl := range k.Tools() {
		out[tl.Name] = tl
	}
	return out
}

func prepare(tl *connector.Tool, raw string) (*connector.Call, *connector.Args, *connector.Error) {
	v, err := canon.Parse([]byte(raw))
	if err != nil || !v.IsObject() {
		return nil, nil, nil
	}
	a := connector.NewArgs(v)
	a.Closed(tl)
	if a.Err() != nil {
		return nil, a, a.Err()
	}
	c, e := tl.Prepare(a)
	return c, a, e
}

func TestNewToolsRefusesTwoSpellings(t *testing.T) {
	if _, err := NewTools([]Client{NewFake("kv-a-001"), NewFake("KV-A-001")}); err == nil || !strings.Contains(err.Error(), "configured twice") {
		t.Errorf("two spellings: %v", err)
	}
	if k, _ := NewTools(nil); len(k.Tools()) != 0 {
		t.Error("tools without a vault")
	}
}

// TestPrepareCanonical: names are canonicalised in the arguments, the
// resource and the context; a write's value is a secret parameter.
func TestPrepareCanonical(t *testing.T) {
	tools := kvTools(t)
	c, a, e := prepare(tools["keyvault_get_secret"], `{"vault":"KV-Prod-Finance-001","name":"Agent/App/DB-Password","version":"ABC1"}`)
	if e != nil {
		t.Fatal(e)
	}
	if c.Resource != "kv://kv-prod-finance-001/secrets/agent/app/db-password" || c.Label != "kv-prod-finance-001/agent/app/db-password" ||
		c.Context["KeyVault:SecretVersion"] != "abc1" || c.Reveal {
		t.Errorf("call: %+v", c)
	}
	if got := string(canon.AppendCompact(nil, &a.V)); got != `{"vault":"kv-prod-finance-001","name":"agent/app/db-password","version":"abc1"}` {
		t.Errorf("arguments: %s", got)
	}
	if _, _, e := prepare(tools["keyvault_get_secret"], `{"vault":"kv-other-001","name":"bad name"}`); e == nil || e.Code != connector.CodeInvalidArguments {
		t.Errorf("a bad name with an unknown vault: %v", e)
	}
	if _, _, e := prepare(tools["keyvault_list_secrets"], `{"vault":"kv-other-001"}`); e == nil || e.Code != CodeUnknownVault || !strings.Contains(e.Msg, "configured: kv-prod-finance-001") {
		t.Errorf("unknown vault: %v", e)
	}
	if !tools["keyvault_set_secret"].SecretParam("value") || tools["keyvault_set_secret"].SecretParam("name") {
		t.Error("secret parameters")
	}
}

// TestContextKeysKnownToPolicy: every context key a Key Vault call sets is
// one the policy language knows, so conditions on it compile.
func TestContextKeysKnownToPolicy(t *testing.T) {
	tools := kvTools(t)
	for name, raw := range map[string]string{
		"keyvault_get_secret":             `{"vault":"kv-prod-finance-001","name":"a/b","version":"1"}`,
		"keyvault_set_secret":             `{"vault":"kv-prod-finance-001","name":"a/b","value":"v","content_type":"t"}`,
		"keyvault_list_secrets":           `{"vault":"kv-prod-finance-001"}`,
		"keyvault_restore_secret_version": `{"vault":"kv-prod-finance-001","name":"a/b","version":"AB12"}`,
	} {
		c, _, e := prepare(tools[name], raw)
		if e != nil {
			t.Fatal(name, e)
		}
		for k := range c.Context {
			if ck, ok := policy.CanonicalKey(k); !ok || ck != k {
				t.Errorf("%s sets %s, which the policy language does not know", name, k)
			}
		}
	}
}

// FuzzPrepare feeds untrusted arguments to every Key Vault tool: it never
// panics, refuses with INVALID_ARGUMENTS or UNKNOWN_VAULT, and otherwise
// decides on a canonical resource of the configured vault, spelled as the
// rewritten arguments say.
func FuzzPrepare(f *testing.F) {
	for _, s := range []string{`{"vault":"kv-prod-finance-001","name":"agent/app/x"}`, `{"vault":"KV-PROD-FINANCE-001","name":"A//b","version":"X"}`,
		`{"vault":"kv-prod-finance-001","name":"a","value":"v","content_type":1}`, `{"vault":"kv-prod-finance-001"}`, `{"vault":"K\u212a-x","name":"\u0000"}`, `{}`} {
		f.Add(s)
	}
	tools := kvTools(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, tl := range tools {
			c, a, e := prepare(tl, raw)
			if a == nil {
				return
			}
			if e != nil {
				if e.Code != connector.CodeInvalidArguments && e.Code != CodeUnknownVault {
					t.Fatalf("%s: code %s", tl.Name, e.Code)
				}
				continue
			}
			if c.Run == nil || c.Context["KeyVault:Vault"] != "kv-prod-finance-001" {
				t.Fatalf("%s: %+v", tl.Name, c)
			}
			if a.V.Get("vault").Str != "kv-prod-finance-001" {
				t.Fatalf("%s: vault not rewritten: %s", tl.Name, canon.AppendCompact(nil, &a.V))
			}
			if n := a.V.Get("name"); n != nil {
				p, err := CanonicalSecretPath(n.Str)
				if err != nil || p != n.Str || c.Resource != "kv://kv-prod-finance-001/secrets/"+p || c.Context["KeyVault:SecretName"] != p {
					t.Fatalf("%s: name %q resource %s", tl.Name, n.Str, c.Resource)
				}
			}
		}
	})
}

// TestRestoreRun: the restore writes the prior version's value and content
// type as a new version, answers with both version ids and no value, and
// hands the value to the gateway for redaction only.
func TestRestoreRun(t *testing.T) {
	f := NewFake("kv-prod-finance-001")
	k, err := NewTools([]Client{f})
	if err != nil {
		t.Fatal(err)
	}
	var restore *connector.Tool
	for _, tl := range k.Tools() {
		if tl.Name == "keyvault_restore_secret_version" {
			restore = tl
		}
	}
	if restore == nil || !restore.Mutating || restore.Action != ActionRestore {
		t.Fatalf("tool: %+v", restore)
	}
	ctx := context.Background()
	v1, _ := f.Set(ctx, "a/b", "old-value", "text/plain")
	f.Set(ctx, "a/b", "new-value", "")
	c, _, e := prepare(restore, `{"vault":"kv-prod-finance-001","name":"a/b","version":"`+strings.ToUpper(v1.Version)+`"}`)
	if e != nil {
		t.Fatal(e)
	}
	if c.Context["KeyVault:SecretVersion"] != v1.Version || c.Label != "kv-prod-finance-001/a/b" {
		t.Fatalf("call: %+v", c)
	}
	out, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	cur, _ := f.Get(ctx, "a/b", "")
	if m["restored_from_version"] != v1.Version || m["version"] != cur.Version || cur.Value != "old-value" || cur.ContentType != "text/plain" {
		t.Fatalf("answer %v, current %+v", m, cur)
	}
	if _, has := m["value"]; has || c.SecretOut != "old-value" || !slices.Equal(c.Disclose, []string{"version", "restored_from_version"}) {
		t.Fatalf("answer %v, secret out %q, disclose %v", m, c.SecretOut, c.Disclose)
	}
	if _, _, e := prepare(restore, `{"vault":"kv-prod-finance-001","name":"a/b"}`); e == nil || e.Code != connector.CodeInvalidArguments {
		t.Fatalf("no version: %v", e)
	}
	c, _, _ = prepare(restore, `{"vault":"kv-prod-finance-001","name":"a/b","version":"ffff"}`)
	if _, err := c.Run(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
}
