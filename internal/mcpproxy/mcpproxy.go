// Package mcpproxy manages the MCP servers clawea fronts (config
// mcp.upstreams): it starts a stdio server as a child process with an
// explicit environment (never clawea's own) or connects to a streamable
// HTTP server, lists its tools and calls them. It decides nothing: the
// tool gateway checks every call before it reaches Call (docs/mcp-proxy.md).
package mcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Separator joins a server's name and a tool's name in the name clawea
// lists (<server>__<tool>).
const Separator = "__"

// Config is one upstream MCP server: Command for stdio, URL for
// streamable HTTP (exactly one).
type Config struct {
	// Name is the server's name in tool names and mcp:// resources:
	// 1-32 characters of [a-z0-9_-], no "__".
	Name string `json:"name"`
	// Command and Args start a stdio server; Dir is its working directory.
	Command string   `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	Dir     string   `json:"dir,omitempty"`
	// Env is the child's whole environment; EnvFrom adds variables copied
	// from clawea's environment by name (child name -> clawea name), for
	// credentials that must not sit in the config file. Nothing else of
	// clawea's environment reaches the child.
	Env     map[string]string `json:"env,omitempty"`
	EnvFrom map[string]string `json:"env_from,omitempty"`
	// URL is a streamable HTTP endpoint (http or https); Headers are sent
	// with every request (e.g. its credentials).
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// ErrBadName refuses a server name outside the grammar.
var ErrBadName = errors.New("mcpproxy: a server name is 1-32 characters of [a-z0-9_-] without \"__\"")

// CanonicalServer returns a server's name in ASCII lower case, or
// ErrBadName. Only ASCII letters fold (U+212A KELVIN SIGN is not k).
func CanonicalServer(name string) (string, error) {
	if name == "" || len(name) > 32 || strings.Contains(name, Separator) {
		return "", ErrBadName
	}
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return "", ErrBadName
		}
	}
	return string(b), nil
}

// CanonicalTool returns a tool's name as clawea shows it (ASCII lower
// case), or false when the name holds anything outside MCP's tool-name
// characters [A-Za-z0-9_.-] or is longer than 128 bytes.
func CanonicalTool(name string) (string, bool) {
	if name == "" || len(name) > 128 {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "", false
		}
	}
	return strings.ToLower(name), true // ASCII only, checked above
}

// Validate checks a configuration.
func (c *Config) Validate() error {
	if _, err := CanonicalServer(c.Name); err != nil {
		return fmt.Errorf("mcp upstream %q: %w", c.Name, err)
	}
	if (c.Command == "") == (c.URL == "") {
		return fmt.Errorf("mcp upstream %s: give exactly one of command (stdio) and url (streamable HTTP)", c.Name)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("mcp upstream %s: url must be an absolute http(s) URL", c.Name)
		}
		if len(c.Env)+len(c.EnvFrom)+len(c.Args) > 0 || c.Dir != "" {
			return fmt.Errorf("mcp upstream %s: env, env_from, args and dir are for stdio servers", c.Name)
		}
	}
	if c.Command != "" && len(c.Headers) > 0 {
		return fmt.Errorf("mcp upstream %s: headers are for streamable HTTP servers", c.Name)
	}
	for k := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("mcp upstream %s: bad environment variable name %q", c.Name, k)
		}
	}
	for k, from := range c.EnvFrom {
		if k == "" || strings.ContainsAny(k, "=\x00") || from == "" {
			return fmt.Errorf("mcp upstream %s: bad env_from entry %q", c.Name, k)
		}
		if _, dup := c.Env[k]; dup {
			return fmt.Errorf("mcp upstream %s: %s is in both env and env_from", c.Name, k)
		}
	}
	return nil
}

// Environ is the stdio child's environment: Env and EnvFrom, sorted,
// never nil (a nil exec.Cmd.Env would hand the child clawea's own). A
// variable EnvFrom names that clawea lacks is an error (fail closed).
func (c *Config) Environ() ([]string, error) {
	out := []string{}
	for k, v := range c.Env {
		out = append(out, k+"="+v)
	}
	for k, from := range c.EnvFrom {
		v, ok := os.LookupEnv(from)
		if !ok {
			return nil, fmt.Errorf("mcp upstream %s: environment variable %s (for %s) is not set", c.Name, from, k)
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

// Upstream is one configured MCP server, connected on first use and again
// after its connection is lost.
type Upstream struct {
	cfg  Config
	name string

	mu   sync.Mutex
	sess *mcp.ClientSession
}

// New checks cfg and returns its upstream (not yet connected).
func New(cfg Config) (*Upstream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	name, _ := CanonicalServer(cfg.Name)
	return &Upstream{cfg: cfg, name: name}, nil
}

// Name is the server's canonical name.
func (u *Upstream) Name() string { return u.name }

// Stdio reports whether the server runs as a child process.
func (u *Upstream) Stdio() bool { return u.cfg.Command != "" }

func (u *Upstream) transport() (mcp.Transport, error) {
	if u.cfg.URL != "" {
		hc := &http.Client{Transport: headers{h: u.cfg.Headers, next: http.DefaultTransport}}
		return &mcp.StreamableClientTransport{Endpoint: u.cfg.URL, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil
	}
	env, err := u.cfg.Environ()
	if err != nil {
		return nil, err
	}
	path, err := exec.LookPath(u.cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("mcp upstream %s: %w", u.name, err)
	}
	cmd := exec.Command(path, u.cfg.Args...)
	cmd.Env, cmd.Dir = env, u.cfg.Dir
	return &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, nil
}

type headers struct {
	h    map[string]string
	next http.RoundTripper
}

func (t headers) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(t.h) > 0 {
		r = r.Clone(r.Context())
		for k, v := range t.h {
			r.Header.Set(k, v)
		}
	}
	return t.next.RoundTrip(r)
}

// session returns the live session, connecting when there is none.
func (u *Upstream) session(ctx context.Context) (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sess != nil {
		return u.sess, nil
	}
	tr, err := u.transport()
	if err != nil {
		return nil, err
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "clawea-mcp-proxy", Version: "1"}, nil)
	s, err := c.Connect(ctx, tr, nil)
	if err != nil {
		return nil, fmt.Errorf("mcp upstream %s: connect: %w", u.name, err)
	}
	u.sess = s
	go func() {
		s.Wait()
		u.mu.Lock()
		if u.sess == s {
			u.sess = nil
		}
		u.mu.Unlock()
	}()
	return s, nil
}

// drop forgets a session whose connection is lost, so the next use
// connects again (a stdio server is started again). A failed call is never
// retried (it may have run); a call that timed out leaves the session be.
func (u *Upstream) drop(s *mcp.ClientSession, err error) {
	if !errors.Is(err, mcp.ErrConnectionClosed) {
		return
	}
	u.mu.Lock()
	if u.sess == s {
		u.sess = nil
	}
	u.mu.Unlock()
	s.Close()
}

// Tools lists every tool of the server (all pages).
func (u *Upstream) Tools(ctx context.Context) ([]*mcp.Tool, error) {
	s, err := u.session(ctx)
	if err != nil {
		return nil, err
	}
	var out []*mcp.Tool
	for t, err := range s.Tools(ctx, nil) {
		if err != nil {
			u.drop(s, err)
			return nil, fmt.Errorf("mcp upstream %s: tools/list: %w", u.name, err)
		}
		out = append(out, t)
		if len(out) > 10000 {
			return nil, fmt.Errorf("mcp upstream %s: more than 10000 tools", u.name)
		}
	}
	return out, nil
}

// Call calls a tool by its upstream name with arguments (a JSON object).
// A tool-level failure is a result with IsError set, not an error.
func (u *Upstream) Call(ctx context.Context, tool string, args json.RawMessage) (*mcp.CallToolResult, error) {
	s, err := u.session(ctx)
	if err != nil {
		return nil, err
	}
	var a any = map[string]any{}
	if len(args) > 0 {
		a = args
	}
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: a})
	if err != nil {
		u.drop(s, err)
		return nil, err
	}
	return res, nil
}

// Close ends the session (a stdio child is stopped).
func (u *Upstream) Close() error {
	u.mu.Lock()
	s := u.sess
	u.sess = nil
	u.mu.Unlock()
	if s != nil {
		return s.Close()
	}
	return nil
}
