package modelgw

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Provider kinds: the wire format an upstream speaks.
const (
	KindOpenAI    = "openai"       // OpenAI and every OpenAI-compatible API
	KindAzure     = "azure-openai" // OpenAI wire format, api-key header, api-version query
	KindAnthropic = "anthropic"
)

// Provider is one upstream the gateway may call.
type Provider struct {
	// Name is what policies and receipts call it (openai, anthropic,
	// azure-openai, openrouter, or any name for an OpenAI-compatible base
	// URL, such as local).
	Name string `json:"name"`
	// Kind is the wire format; by default anthropic for the name
	// anthropic, azure-openai for azure-openai, else openai.
	Kind string `json:"kind,omitempty"`
	// BaseURL is the API base, version path included, such as
	// https://api.openai.com/v1 or, for Azure,
	// https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT.
	BaseURL string `json:"base_url,omitempty"`
	// APIKey is the upstream credential: "env:NAME" (an environment
	// variable), "file:PATH", "@kv:NAME" (a Key Vault secret, resolved
	// through the configured resolver), or empty for none. A literal key is
	// accepted but discouraged.
	APIKey string `json:"api_key,omitempty"`
	// APIVersion is Azure's api-version query parameter.
	APIVersion string `json:"api_version,omitempty"`
	// Headers are sent upstream with every request.
	Headers map[string]string `json:"headers,omitempty"`
	// StreamUsage asks OpenAI-style upstreams for usage in streams
	// (stream_options.include_usage) so receipts carry real token counts;
	// default true. Turn it off for compatible servers that refuse it.
	StreamUsage *bool `json:"stream_usage,omitempty"`
	// Models are the model names this provider offers, listed by
	// GET /v1/models when the job's policy allows them (a policy that
	// allows a glob only lists the names given here).
	Models []string `json:"models,omitempty"`

	base *url.URL
}

// DefaultBaseURLs are used when a known provider has no base URL.
var DefaultBaseURLs = map[string]string{
	"openai":     "https://api.openai.com/v1",
	"anthropic":  "https://api.anthropic.com/v1",
	"openrouter": "https://openrouter.ai/api/v1",
}

// DefaultKeyEnv names the environment variable a known provider's key is
// read from when the configuration names none.
var DefaultKeyEnv = map[string]string{
	"openai":       "OPENAI_API_KEY",
	"anthropic":    "ANTHROPIC_API_KEY",
	"openrouter":   "OPENROUTER_API_KEY",
	"azure-openai": "AZURE_OPENAI_API_KEY",
}

// ParseProviderFlag reads NAME=BASEURL (the --provider flag).
func ParseProviderFlag(s string) (Provider, error) {
	name, base, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(base) == "" {
		return Provider{}, fmt.Errorf("--provider %q: want NAME=BASEURL", s)
	}
	p := Provider{Name: strings.TrimSpace(name), BaseURL: strings.TrimSpace(base)}
	if env := "CLAWEA_PROVIDER_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(p.Name)) + "_API_KEY"; os.Getenv(env) != "" {
		p.APIKey = "env:" + env
	}
	return p, nil
}

func (p *Provider) normalize() error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || strings.ContainsAny(p.Name, "/ ") {
		return fmt.Errorf("provider name %q: must be non-empty without '/' or spaces", p.Name)
	}
	if p.Kind == "" {
		switch p.Name {
		case "anthropic":
			p.Kind = KindAnthropic
		case "azure-openai":
			p.Kind = KindAzure
		default:
			p.Kind = KindOpenAI
		}
	}
	switch p.Kind {
	case KindOpenAI, KindAzure, KindAnthropic:
	default:
		return fmt.Errorf("provider %s: unknown kind %q (openai, azure-openai or anthropic)", p.Name, p.Kind)
	}
	if p.BaseURL == "" {
		p.BaseURL = DefaultBaseURLs[p.Name]
	}
	if p.BaseURL == "" {
		return fmt.Errorf("provider %s: base_url is required", p.Name)
	}
	u, err := url.Parse(strings.TrimRight(p.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("provider %s: base_url %q must be an http(s) URL", p.Name, p.BaseURL)
	}
	if u.User != nil {
		return fmt.Errorf("provider %s: base_url must not carry credentials", p.Name)
	}
	p.base = u
	models := p.Models[:0:0]
	for _, m := range p.Models {
		m = strings.TrimSpace(m)
		if m == "" || len(m) > 256 || strings.ContainsFunc(m, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("provider %s: model name %q must be 1-256 characters without control characters", p.Name, m)
		}
		if !slices.Contains(models, m) {
			models = append(models, m)
		}
	}
	p.Models = models
	if p.APIKey == "" {
		if env := DefaultKeyEnv[p.Name]; env != "" && os.Getenv(env) != "" {
			p.APIKey = "env:" + env
		}
	}
	if p.Kind == KindAzure && p.APIVersion == "" {
		p.APIVersion = "2024-10-21"
	}
	return nil
}

func (p *Provider) streamUsage() bool {
	return p.Kind != KindAnthropic && (p.StreamUsage == nil || *p.StreamUsage)
}

// Host is the upstream host (for the egress allowlist).
func (p *Provider) Host() string { return p.base.Hostname() }

// endpoint returns the upstream URL for an API.
func (p *Provider) endpoint(a api) string {
	u := *p.base
	switch a {
	case apiChat:
		u.Path += "/chat/completions"
	case apiResponses:
		u.Path += "/responses"
	case apiMessages:
		u.Path += "/messages"
	}
	if p.Kind == KindAzure {
		q := u.Query()
		q.Set("api-version", p.APIVersion)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// KeyResolver resolves "@kv:NAME" references (Key Vault).
type KeyResolver func(ctx context.Context, ref string) (string, error)

// keys resolves and caches upstream credentials.
type keys struct {
	resolve KeyResolver
	ttl     time.Duration
	mu      sync.Mutex
	cache   map[string]cachedKey
}

type cachedKey struct {
	value string
	at    time.Time
}

var errNoResolver = errors.New("no Key Vault resolver is configured for @kv: references")

func (k *keys) get(ctx context.Context, ref string) (string, error) {
	switch {
	case ref == "":
		return "", nil
	case strings.HasPrefix(ref, "env:"):
		v := os.Getenv(strings.TrimPrefix(ref, "env:"))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", strings.TrimPrefix(ref, "env:"))
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		raw, err := os.ReadFile(strings.TrimPrefix(ref, "file:"))
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(raw)), nil
	case strings.HasPrefix(ref, "@kv:"):
		k.mu.Lock()
		c, ok := k.cache[ref]
		k.mu.Unlock()
		if ok && time.Since(c.at) < k.ttl {
			return c.value, nil
		}
		if k.resolve == nil {
			return "", errNoResolver
		}
		v, err := k.resolve(ctx, strings.TrimPrefix(ref, "@kv:"))
		if err != nil {
			return "", err
		}
		if v == "" {
			return "", fmt.Errorf("%s resolved to an empty value", ref)
		}
		k.mu.Lock()
		k.cache[ref] = cachedKey{value: v, at: time.Now()}
		k.mu.Unlock()
		return v, nil
	}
	return ref, nil
}
