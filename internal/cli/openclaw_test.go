package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	ocplugin "github.com/clawea/clawea/integrations/openclaw"
)

func TestOpenClawConfig(t *testing.T) {
	url, _, job, tok := ocNode(t)
	t.Setenv("CLAWEA_TOKEN", tok) // present in the environment, never printed
	dataHome := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dataHome)
	bin := filepath.Join(t.TempDir(), "clawea")

	code, out, errs := run(t, "", "openclaw", "config", "--job", job, "--json", "--clawea", bin)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, tok) || strings.Contains(errs, tok) {
		t.Fatal("the job's token is in the output")
	}
	var cfg struct {
		Secrets struct {
			Providers map[string]struct {
				Source  string   `json:"source"`
				Command string   `json:"command"`
				Args    []string `json:"args"`
				PassEnv []string `json:"passEnv"`
			} `json:"providers"`
		} `json:"secrets"`
		Models struct {
			Providers map[string]struct {
				BaseURL string `json:"baseUrl"`
				API     string `json:"api"`
				APIKey  struct {
					Source, Provider, ID string
				} `json:"apiKey"`
				Models []struct{ ID, Name string } `json:"models"`
			} `json:"providers"`
		} `json:"models"`
		MCP struct {
			Servers map[string]struct {
				Command string            `json:"command"`
				Args    []string          `json:"args"`
				Env     map[string]string `json:"env"`
			} `json:"servers"`
		} `json:"mcp"`
		Tools struct {
			ToolSearch *bool `json:"toolSearch"`
			FS         struct {
				WorkspaceOnly *bool `json:"workspaceOnly"`
			} `json:"fs"`
			CodeMode struct {
				Enabled *bool `json:"enabled"`
			} `json:"codeMode"`
			Elevated struct {
				Enabled *bool `json:"enabled"`
			} `json:"elevated"`
		} `json:"tools"`
		Agents struct {
			Defaults struct {
				Model struct{ Primary string } `json:"model"`
			} `json:"defaults"`
		} `json:"agents"`
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sp := cfg.Secrets.Providers["clawea"]
	if sp.Source != "exec" || sp.Command != bin || strings.Join(sp.Args, " ") != "secretref --server "+url || !strings.Contains(strings.Join(sp.PassEnv, ","), "CLAWEA_TOKEN") {
		t.Fatalf("secret provider: %+v", sp)
	}
	// Sorted providers with allowed models: anthropic first, so it is
	// "clawea"; gpt-4o is not allowed and not listed.
	want := map[string]string{"clawea": "anthropic-messages /v1/proxy/anthropic claude-sonnet-4-5",
		"clawea-local":  "openai-completions /v1/proxy/local/v1 clawea-local-test-model",
		"clawea-openai": "openai-completions /v1/proxy/openai/v1 gpt-4o-mini"}
	if len(cfg.Models.Providers) != len(want) {
		t.Fatalf("providers: %+v", cfg.Models.Providers)
	}
	for id, w := range want {
		p := cfg.Models.Providers[id]
		var ms []string
		for _, m := range p.Models {
			ms = append(ms, m.ID)
		}
		got := p.API + " " + strings.TrimPrefix(p.BaseURL, url) + " " + strings.Join(ms, ",")
		if got != w {
			t.Errorf("%s: %q, want %q", id, got, w)
		}
		if p.APIKey.Source != "exec" || p.APIKey.Provider != "clawea" || p.APIKey.ID != "job/"+job+"/token" {
			t.Errorf("%s: apiKey %+v", id, p.APIKey)
		}
	}
	// The official clients, given a fragment's base URL and the token,
	// discover exactly the fragment's models there; a chat call through
	// clawea-local reaches the model.
	ctx := context.Background()
	for id, p := range cfg.Models.Providers {
		var got []string
		if p.API == "anthropic-messages" {
			c := anthropic.NewClient(aoption.WithBaseURL(p.BaseURL), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0))
			page, err := c.Models.List(ctx, anthropic.ModelListParams{})
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			for _, m := range page.Data {
				got = append(got, m.ID)
			}
		} else {
			c := openai.NewClient(ooption.WithBaseURL(p.BaseURL), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
			page, err := c.Models.List(ctx)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			for _, m := range page.Data {
				got = append(got, m.ID)
			}
		}
		if len(got) != len(p.Models) || got[0] != p.Models[0].ID {
			t.Errorf("%s: the gateway lists %v at %s", id, got, p.BaseURL)
		}
	}
	lc := openai.NewClient(ooption.WithBaseURL(cfg.Models.Providers["clawea-local"].BaseURL), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	if _, err := lc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "clawea-local-test-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}); err != nil {
		t.Fatalf("chat through clawea-local: %v", err)
	}

	if s := cfg.MCP.Servers["clawea"]; s.Command != bin || strings.Join(s.Args, " ") != "mcp --server "+url || len(s.Env) != 1 || s.Env["CLAWEA_TOKEN"] != "${CLAWEA_TOKEN}" {
		t.Errorf("mcp: %+v", s)
	}
	if cfg.Tools.ToolSearch == nil || *cfg.Tools.ToolSearch {
		t.Error("tools.toolSearch must be false")
	}
	// A native read outside the workspace could read OpenClaw's own
	// environment (/proc/self/environ), the job token in it (red team).
	if w := cfg.Tools.FS.WorkspaceOnly; w == nil || !*w {
		t.Error("tools.fs.workspaceOnly must be true")
	}
	if c, el := cfg.Tools.CodeMode.Enabled, cfg.Tools.Elevated.Enabled; c == nil || *c || el == nil || *el {
		t.Error("tools.codeMode and tools.elevated must be off")
	}
	if cfg.Agents.Defaults.Model.Primary != "clawea/claude-sonnet-4-5" || cfg.Plugins != nil {
		t.Errorf("primary %q, plugins %s", cfg.Agents.Defaults.Model.Primary, cfg.Plugins)
	}

	// The SecretRef in the fragment resolves through clawea secretref to
	// the job's token.
	ref := cfg.Models.Providers["clawea"].APIKey
	_, r, _ := secretref(t, `{"protocolVersion":1,"provider":"`+ref.Provider+`","ids":["`+ref.ID+`"]}`, sp.Args[1:]...)
	if r.Values[ref.ID] != tok {
		t.Fatalf("the fragment's SecretRef does not resolve: %+v", r)
	}

	// --provider picks models.providers.clawea; JSON5 output has a header;
	// --plugin adds the entry.
	code, out, errs = run(t, "", "openclaw", "config", "--job", job, "--clawea", bin, "--provider", "openai", "--plugin")
	if code != 0 || !strings.HasPrefix(out, "// OpenClaw configuration for clawea job "+job) || strings.Contains(out, tok) {
		t.Fatalf("JSON5: %d %s %s", code, out, errs)
	}
	body := out[strings.Index(out, "\n{")+1:]
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Agents.Defaults.Model.Primary != "clawea/gpt-4o-mini" {
		t.Errorf("primary %q", cfg.Agents.Defaults.Model.Primary)
	}
	// The plugin: this binary's copy, installed under XDG_DATA_HOME on
	// first use, loaded by path and explicitly enabled.
	var plugins struct {
		Load struct {
			Paths []string `json:"paths"`
		} `json:"load"`
		Entries map[string]struct {
			Enabled bool              `json:"enabled"`
			Config  map[string]string `json:"config"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(cfg.Plugins, &plugins); err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(dataHome, "clawea", "openclaw-plugin", ocplugin.Digest()[:16])
	pe := plugins.Entries["clawea"]
	if len(plugins.Load.Paths) != 1 || plugins.Load.Paths[0] != wantDir || !pe.Enabled || pe.Config["server"] != url || pe.Config["jobId"] != job || len(pe.Config) != 2 {
		t.Fatalf("plugins: %s", cfg.Plugins)
	}
	if !ocplugin.Installed(wantDir) || !strings.Contains(errs, "installed the clawea OpenClaw plugin in "+wantDir) {
		t.Fatalf("plugin not installed in %s (%s)", wantDir, errs)
	}
	// Installed once: the second run does not write it again.
	if code, _, errs = run(t, "", "openclaw", "config", "--job", job, "--clawea", bin, "--plugin", "--json"); code != 0 || strings.Contains(errs, "installed") {
		t.Fatalf("second --plugin: %d %s", code, errs)
	}
	// clawea openclaw plugin install DIR, then --plugin-dir DIR.
	own := filepath.Join(t.TempDir(), "plugin")
	if code, out, errs = run(t, "", "openclaw", "plugin", "install", own); code != 0 || strings.TrimSpace(out) != own || !ocplugin.Installed(own) {
		t.Fatalf("plugin install: %d %q %s", code, out, errs)
	}
	code, out, errs = run(t, "", "openclaw", "config", "--job", job, "--clawea", bin, "--plugin", "--plugin-dir", own, "--json")
	if code != 0 || json.Unmarshal([]byte(out), &cfg) != nil || json.Unmarshal(cfg.Plugins, &plugins) != nil || plugins.Load.Paths[0] != own {
		t.Fatalf("--plugin-dir: %d %s %s", code, out, errs)
	}

	// Refusals: no job, an unknown job, a relative binary, an unknown
	// provider, a wrong admin token.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{}, 2, "--job is required"},
		{[]string{"--job", "job_nope", "--clawea", bin}, 1, "JOB_NOT_FOUND"},
		{[]string{"--job", job, "--clawea", "clawea"}, 2, "absolute path"},
		{[]string{"--job", job, "--clawea", bin, "--provider", "nope"}, 1, "no model of that provider"},
		{[]string{"--job", job, "--clawea", bin, "--token", "wrong"}, 1, "HTTP 401"},
		{[]string{"--job", job, "--clawea", bin, "--plugin-dir", own}, 2, "--plugin-dir needs --plugin"},
		{[]string{"--job", job, "--clawea", bin, "--plugin", "--plugin-dir", "rel/dir"}, 2, "must be an absolute path"},
		{[]string{"--job", job, "--clawea", bin, "--plugin", "--plugin-dir", t.TempDir()}, 1, "does not hold the clawea OpenClaw plugin"},
	} {
		code, out, errs := run(t, "", append([]string{"openclaw", "config"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.msg) || strings.Contains(out+errs, tok) {
			t.Errorf("%v: exit %d %s", c.args, code, errs)
		}
	}
}
