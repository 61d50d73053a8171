package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	ocplugin "github.com/clawea/clawea/integrations/openclaw"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/modelgw"
)

func newOpenClawCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "openclaw",
		Short: "Connect an OpenClaw agent to clawea",
	}
	cmd.AddCommand(newOpenClawConfigCmd(e), newOpenClawPluginCmd(e))
	return cmd
}

// defaultPluginDir is where this binary's OpenClaw plugin is installed
// when no directory is named: $XDG_DATA_HOME (default ~/.local/share)
// /clawea/openclaw-plugin/<first 16 hex of the plugin's digest>, so that
// each version has its own directory and an installed one is never
// rewritten under a running OpenClaw.
func defaultPluginDir() (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".local", "share")
	}
	if !filepath.IsAbs(base) {
		return "", fmt.Errorf("XDG_DATA_HOME %q is not absolute", base)
	}
	return filepath.Join(base, "clawea", "openclaw-plugin", ocplugin.Digest()[:16]), nil
}

// pluginDirFor resolves the plugin directory for --plugin: dir (absolute,
// holding a plugin manifest with id clawea) or, when empty, this binary's
// plugin in defaultPluginDir, installed there if missing.
func pluginDirFor(e *env, dir string) (string, error) {
	if dir != "" {
		if !filepath.IsAbs(dir) {
			return "", withCode(ExitUsage, fmt.Errorf("--plugin-dir %q must be an absolute path (OpenClaw resolves plugins.load.paths from its own directory)", dir))
		}
		raw, err := os.ReadFile(filepath.Join(dir, "openclaw.plugin.json"))
		var m struct {
			ID string `json:"id"`
		}
		if err == nil {
			err = json.Unmarshal(raw, &m)
		}
		if err != nil || m.ID != ocplugin.PluginID {
			return "", withCode(ExitFail, fmt.Errorf("--plugin-dir %s does not hold the clawea OpenClaw plugin (clawea openclaw plugin install %s writes it)", dir, dir))
		}
		return dir, nil
	}
	d, err := defaultPluginDir()
	if err != nil {
		return "", withCode(ExitFail, fmt.Errorf("no directory for the OpenClaw plugin (pass --plugin-dir): %v", err))
	}
	if !ocplugin.Installed(d) {
		if err := ocplugin.Install(d); err != nil {
			return "", withCode(ExitFail, fmt.Errorf("installing the OpenClaw plugin in %s: %v", d, err))
		}
		fmt.Fprintf(e.err, "installed the clawea OpenClaw plugin in %s\n", d)
	}
	return d, nil
}

func newOpenClawPluginCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "The clawea OpenClaw plugin (a trusted tool policy deciding every tool call)",
	}
	install := &cobra.Command{
		Use:   "install [DIR]",
		Short: "Write this binary's OpenClaw plugin into DIR and print DIR",
		Long: `Write the clawea OpenClaw plugin carried by this binary (TypeScript that
OpenClaw loads itself; see integrations/openclaw/README.md) into DIR, by
default $XDG_DATA_HOME/clawea/openclaw-plugin/<version> (~/.local/share when
XDG_DATA_HOME is unset), and print the directory. Files of the plugin already
there are replaced; other files are left alone. Point plugins.load.paths at
it, or let clawea openclaw config --plugin do it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var dir string
			if len(args) == 1 {
				abs, err := filepath.Abs(args[0])
				if err != nil {
					return withCode(ExitUsage, err)
				}
				dir = abs
			} else {
				d, err := defaultPluginDir()
				if err != nil {
					return withCode(ExitFail, err)
				}
				dir = d
			}
			if err := ocplugin.Install(dir); err != nil {
				return withCode(ExitFail, fmt.Errorf("installing the OpenClaw plugin in %s: %v", dir, err))
			}
			fmt.Fprintln(e.out, dir)
			return nil
		},
	}
	cmd.AddCommand(install)
	return cmd
}

// secretRefProvider is the alias of the exec SecretRef provider in the
// OpenClaw configuration clawea prints.
const secretRefProvider = "clawea"

// openClawConfig builds the OpenClaw configuration fragment for a job:
// the exec SecretRef provider (clawea secretref), one model provider per
// clawea provider with models the job's policy allows (the first, or the
// one named by primary, is "clawea"; others are "clawea-<provider>"), the
// MCP server (clawea mcp over stdio), tool search off so the model sees
// the MCP tools, and the default model. The job's token appears nowhere:
// the model providers' apiKey is a SecretRef the exec provider resolves at
// activation, and clawea mcp gets CLAWEA_TOKEN through its env entry
// "${CLAWEA_TOKEN}", which OpenClaw substitutes from its own environment. With pluginDir, also the clawea
// OpenClaw plugin: plugins.load.paths and plugins.entries.clawea (enabled
// explicitly, which OpenClaw requires of a plugin registering a trusted
// tool policy).
func openClawConfig(server, job, bin string, models []modelgw.Model, primaryProvider, pluginDir string) (map[string]any, error) {
	server = strings.TrimRight(server, "/")
	ref := map[string]any{"source": "exec", "provider": secretRefProvider, "id": "job/" + job + "/token"}
	// Providers in the order of the list (sorted by provider), the chosen
	// one first.
	var provs []string
	byProv := map[string][]modelgw.Model{}
	for _, m := range models {
		if _, ok := byProv[m.OwnedBy]; !ok {
			provs = append(provs, m.OwnedBy)
		}
		byProv[m.OwnedBy] = append(byProv[m.OwnedBy], m)
	}
	if len(provs) == 0 {
		return nil, errors.New("the job's policy allows no model this gateway lists (see docs/model-gateway.md, GET /v1/models)")
	}
	if primaryProvider != "" {
		i := slices.Index(provs, primaryProvider)
		if i < 0 {
			return nil, fmt.Errorf("--provider %s: no model of that provider is allowed for the job (allowed: %s)", primaryProvider, strings.Join(provs, ", "))
		}
		provs = append([]string{primaryProvider}, slices.Delete(provs, i, i+1)...)
	}
	providers := map[string]any{}
	primary := ""
	for i, p := range provs {
		id := "clawea"
		if i > 0 {
			id = "clawea-" + p
		}
		// OpenAI clients append /chat/completions and /models to the base
		// URL, Anthropic clients /v1/messages and /v1/models: both land on
		// the gateway's per-provider routes.
		api, base := "openai-completions", server+"/v1/proxy/"+url.PathEscape(p)+"/v1"
		if byProv[p][0].Wire == "anthropic" {
			api, base = "anthropic-messages", server+"/v1/proxy/"+url.PathEscape(p)
		}
		var ms []any
		for _, m := range byProv[p] {
			ms = append(ms, map[string]any{"id": m.ID, "name": m.ID + " (" + p + " via clawea)"})
		}
		providers[id] = map[string]any{
			"baseUrl": base,
			"api":     api,
			"apiKey":  ref,
			"models":  ms,
		}
		if i == 0 {
			primary = id + "/" + byProv[p][0].ID
		}
	}
	cfg := map[string]any{
		"secrets": map[string]any{"providers": map[string]any{secretRefProvider: map[string]any{
			"source":    "exec",
			"command":   bin,
			"args":      []string{"secretref", "--server", server},
			"passEnv":   []string{"CLAWEA_TOKEN", "CLAWEA_TOKEN_FILE"},
			"jsonOnly":  true,
			"timeoutMs": 10000,
		}}},
		"models": map[string]any{"providers": providers},
		// OpenClaw starts stdio MCP servers with a minimal environment
		// (HOME, PATH, ...) plus the server's env: CLAWEA_TOKEN is passed
		// by reference, substituted by OpenClaw in memory when it loads
		// the config (mcp.servers.*.env is not SecretRef-capable).
		"mcp": map[string]any{"servers": map[string]any{"clawea": map[string]any{
			"command": bin,
			"args":    []string{"mcp", "--server", server},
			"env":     map[string]any{"CLAWEA_TOKEN": "${CLAWEA_TOKEN}"},
		}}},
		// OpenClaw hides MCP tools behind its tool search by default.
		// Native file tools stay in the workspace: OpenClaw's own
		// environment (the job token in it) is readable at
		// /proc/self/environ by a read the policy allows. Code Mode's
		// executor and session elevation would run commands the plugin
		// sees under another shape: both off.
		"tools": map[string]any{
			"toolSearch": false,
			"fs":         map[string]any{"workspaceOnly": true},
			"codeMode":   map[string]any{"enabled": false},
			"elevated":   map[string]any{"enabled": false},
		},
		"agents": map[string]any{"defaults": map[string]any{"model": map[string]any{"primary": primary}}},
	}
	if pluginDir != "" {
		cfg["plugins"] = map[string]any{
			"load": map[string]any{"paths": []string{pluginDir}},
			"entries": map[string]any{ocplugin.PluginID: map[string]any{
				"enabled": true,
				"config":  map[string]any{"server": server, "jobId": job},
			}},
		}
	}
	return cfg, nil
}

// claweaBinary is the absolute, symlink-free path of this executable
// (OpenClaw refuses a symlinked exec provider command).
func claweaBinary() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

func newOpenClawConfigCmd(e *env) *cobra.Command {
	var f serverFlags
	var job, bin, provider, pluginDir string
	var plugin bool
	cmd := &cobra.Command{
		Use:   "config --job JOB [--server URL] [--json]",
		Short: "Print the OpenClaw configuration fragment for a job (no token in it)",
		Long: `Print what an operator merges into OpenClaw's configuration to run an agent
through clawea for one job: an exec SecretRef provider ("clawea", running
clawea secretref), models.providers.clawea (the model gateway, with the models
the job's policy allows, as GET /v1/models lists them), mcp.servers.clawea
(clawea mcp over stdio), tools.toolSearch false (else OpenClaw hides MCP tools
behind its tool search), tools.fs.workspaceOnly true (a native read outside the
workspace could read OpenClaw's environment, the token in it), tools.codeMode
and tools.elevated off, and agents.defaults.model.primary. With --plugin, also
the clawea OpenClaw plugin, a trusted tool policy that asks clawea before every
other tool call (integrations/openclaw/README.md): plugins.load.paths (--plugin-dir,
or this binary's copy of the plugin, installed on first use under
$XDG_DATA_HOME/clawea/openclaw-plugin/<version>) and plugins.entries.clawea
(enabled, with server and jobId). The plugin reads the token from CLAWEA_TOKEN.

The job's token is not in the output. Start OpenClaw with CLAWEA_TOKEN set to
it (or CLAWEA_TOKEN_FILE naming a 0600 file holding it): the exec provider
resolves job/<JOB>/token from there at activation, and clawea mcp gets it
through mcp.servers.clawea.env ("${CLAWEA_TOKEN}", substituted by OpenClaw in
memory: OpenClaw starts stdio MCP servers with a minimal environment).
Reads the job with the admin token. Without --json the output is JSON5 with a
comment header.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if job == "" {
				return withCode(ExitUsage, errors.New("--job is required"))
			}
			if !jobTokenIDRe.MatchString("job/" + job + "/token") {
				return withCode(ExitUsage, fmt.Errorf("--job %q is not a job id", job))
			}
			var v jobs.View
			if _, _, err := f.adminCall(cmd.Context(), "GET", "/v1/jobs/"+url.PathEscape(job), nil, &v); err != nil {
				return failCode(err)
			}
			if v.Status != "open" {
				return withCode(ExitFail, fmt.Errorf("job %s is %s: only an open job can run an agent", job, v.Status))
			}
			var list modelgw.ModelList
			if _, _, err := f.adminCall(cmd.Context(), "GET", "/v1/models?job_id="+url.QueryEscape(job), nil, &list); err != nil {
				return failCode(err)
			}
			if bin == "" {
				var err error
				if bin, err = claweaBinary(); err != nil {
					return withCode(ExitUsage, fmt.Errorf("cannot find the clawea binary (pass --clawea PATH): %v", err))
				}
			}
			if !filepath.IsAbs(bin) {
				return withCode(ExitUsage, fmt.Errorf("--clawea %q must be an absolute path (OpenClaw runs exec providers without a shell)", bin))
			}
			dir := ""
			if plugin {
				d, err := pluginDirFor(e, pluginDir)
				if err != nil {
					return err
				}
				dir = d
			} else if pluginDir != "" {
				return withCode(ExitUsage, errors.New("--plugin-dir needs --plugin"))
			}
			cfg, err := openClawConfig(f.server, job, bin, list.Data, provider, dir)
			if err != nil {
				return withCode(ExitFail, err)
			}
			if !f.json {
				fmt.Fprintf(e.out, "// OpenClaw configuration for clawea job %s (policy %s), expires %s.\n", job, v.PolicyHash, v.ExpiresAt)
				fmt.Fprintln(e.out, "// Merge into OpenClaw's config; start OpenClaw with CLAWEA_TOKEN=<the job's token> in its environment.")
				fmt.Fprintln(e.out, "// The token is resolved by `clawea secretref` at activation and is never written to this file.")
				if dir != "" {
					fmt.Fprintln(e.out, "// Check that the clawea plugin loads: openclaw plugins inspect clawea --runtime (a plugin that fails to load decides nothing).")
				}
			}
			return printJSON(e.out, cfg)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&job, "job", "", "the job (clawea job start)")
	cmd.Flags().StringVar(&bin, "clawea", "", "absolute path of the clawea binary OpenClaw runs (default: this one)")
	cmd.Flags().StringVar(&provider, "provider", "", "the clawea provider behind models.providers.clawea (default: the first with allowed models)")
	cmd.Flags().BoolVar(&plugin, "plugin", false, "add the clawea OpenClaw plugin (plugins.load.paths, plugins.entries.clawea)")
	cmd.Flags().StringVar(&pluginDir, "plugin-dir", "", "absolute path of the plugin for --plugin (default: this binary's copy, installed if missing)")
	return cmd
}
