// Package config reads clawea's configuration file: a JSON object whose
// sections configure the roles of clawea serve. Unknown keys are errors, so
// that a misspelt setting never silently falls back to a default.
//
//	{
//	  "model_gateway": {
//	    "providers": [
//	      {"name": "openai", "api_key": "env:OPENAI_API_KEY"},
//	      {"name": "azure-openai", "base_url": "https://res.openai.azure.com/openai/deployments/gpt4o", "api_key": "@kv:azure-openai-key"},
//	      {"name": "local", "base_url": "http://127.0.0.1:11434/v1"}
//	    ],
//	    "default_openai": "openai",
//	    "allow_byok": false,
//	    "max_request_bytes": 8388608
//	  },
//	  "registry_signers": ["did:key:z6Mk..."],
//	  "policy": {"require_approval": true, "operators": ["did:key:z6Mk..."]}
//	}
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/clawea/clawea/internal/mcpproxy"
	"github.com/clawea/clawea/internal/modelgw"
)

// File is the configuration file.
type File struct {
	ModelGateway    *ModelGateway `json:"model_gateway,omitempty"`
	ToolGateway     *ToolGateway  `json:"tool_gateway,omitempty"`
	RegistrySigners []string      `json:"registry_signers,omitempty"`
	// TrustGateways are gateway signers (did:key) of other processes whose
	// receipts finished bundles may carry.
	TrustGateways []string `json:"trust_gateways,omitempty"`
	// MCP configures the MCP servers the tool gateway fronts
	// (docs/mcp-proxy.md).
	MCP *MCP `json:"mcp,omitempty"`
	// Policy configures the policy lifecycle (docs/policy.md).
	Policy *Policy `json:"policy,omitempty"`
}

// Policy is the policy section: who may approve, retire and freeze policy
// hashes, and whether a job may start only on an approved hash (default
// true in clawea serve).
type Policy struct {
	RequireApproval *bool    `json:"require_approval,omitempty"`
	Operators       []string `json:"operators,omitempty"`
}

// MCP is the mcp section: the upstream MCP servers whose tools the tool
// gateway lists as <server>__<tool>.
type MCP struct {
	Upstreams []mcpproxy.Config `json:"upstreams,omitempty"`
}

// ToolGateway configures the tool gateway role.
type ToolGateway struct {
	Vaults      []Vault     `json:"vaults,omitempty"`
	ServiceBus  []Namespace `json:"servicebus,omitempty"`
	Approvers   []string    `json:"approvers,omitempty"`
	ApprovalTTL Duration    `json:"approval_ttl,omitempty"`
	CallTimeout Duration    `json:"call_timeout,omitempty"`

	// mcp is the file's mcp section, which the tool gateway serves (Parse
	// attaches it here so that ToolGateway.Apply builds the upstreams).
	mcp *MCP
}

// Vault is one Key Vault: a real one (url and credential) or a dev vault
// (the connection file clawea devvault writes).
type Vault struct {
	Name       string      `json:"name"`
	URL        string      `json:"url,omitempty"`
	Credential *Credential `json:"credential,omitempty"`
	DevVault   string      `json:"devvault,omitempty"`
}

// Credential selects the gateway's Azure identity: default (the
// DefaultAzureCredential chain), workload (workload identity), or
// client_secret (the secret read from the environment variable secret_env).
type Credential struct {
	Kind      string `json:"kind"`
	TenantID  string `json:"tenant_id,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenFile string `json:"token_file,omitempty"`
	SecretEnv string `json:"secret_env,omitempty"`
}

// Namespace is one Service Bus namespace: local (a queue in clawea's
// store), or a real one by connection string (read from the environment
// variable connection_string_env) or fully qualified name and credential.
type Namespace struct {
	Name                string      `json:"namespace"`
	Local               bool        `json:"local,omitempty"`
	ConnectionStringEnv string      `json:"connection_string_env,omitempty"`
	FullyQualified      string      `json:"fully_qualified_namespace,omitempty"`
	Credential          *Credential `json:"credential,omitempty"`
	// AllowNamespaceSAS accepts a connection string whose shared access
	// key or signature covers the whole namespace (no EntityPath); it is
	// refused otherwise, and flagged either way.
	AllowNamespaceSAS bool `json:"allow_namespace_sas,omitempty"`
}

// ModelGateway configures the model gateway role.
type ModelGateway struct {
	Providers         []modelgw.Provider `json:"providers"`
	DefaultOpenAI     string             `json:"default_openai,omitempty"`
	DefaultAnthropic  string             `json:"default_anthropic,omitempty"`
	AllowBYOK         bool               `json:"allow_byok,omitempty"`
	MaxRequestBytes   int64              `json:"max_request_bytes,omitempty"`
	MaxResponseBytes  int64              `json:"max_response_bytes,omitempty"`
	HeaderTimeout     Duration           `json:"header_timeout,omitempty"`
	UpstreamTimeout   Duration           `json:"upstream_timeout,omitempty"`
	StreamIdleTimeout Duration           `json:"stream_idle_timeout,omitempty"`
	MaxStreamDuration Duration           `json:"max_stream_duration,omitempty"`
	MaxStreamBytes    int64              `json:"max_stream_bytes,omitempty"`
}

// Duration is a time.Duration written as "90s" or "5m".
type Duration time.Duration

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"90s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// Load reads a configuration file.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}

// Parse reads a configuration document.
func Parse(raw []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("config: unexpected data after the JSON object")
	}
	if f.MCP != nil && len(f.MCP.Upstreams) > 0 {
		for i := range f.MCP.Upstreams {
			if err := f.MCP.Upstreams[i].Validate(); err != nil {
				return nil, fmt.Errorf("config: mcp.upstreams[%d]: %w", i, err)
			}
		}
		if f.ToolGateway == nil {
			f.ToolGateway = &ToolGateway{}
		}
		f.ToolGateway.mcp = f.MCP
	}
	return &f, nil
}

// Apply copies the model gateway section into gateway options.
func (m *ModelGateway) Apply(o *modelgw.Options) {
	if m == nil {
		return
	}
	o.Providers = append(o.Providers, m.Providers...)
	if m.DefaultOpenAI != "" {
		o.DefaultOpenAI = m.DefaultOpenAI
	}
	if m.DefaultAnthropic != "" {
		o.DefaultAnthropic = m.DefaultAnthropic
	}
	o.AllowBYOK = o.AllowBYOK || m.AllowBYOK
	if m.MaxRequestBytes > 0 {
		o.MaxRequestBytes = m.MaxRequestBytes
	}
	if m.MaxResponseBytes > 0 {
		o.MaxResponseBytes = m.MaxResponseBytes
	}
	if m.HeaderTimeout > 0 {
		o.HeaderTimeout = time.Duration(m.HeaderTimeout)
	}
	if m.UpstreamTimeout > 0 {
		o.UpstreamTimeout = time.Duration(m.UpstreamTimeout)
	}
	if m.StreamIdleTimeout > 0 {
		o.StreamIdleTimeout = time.Duration(m.StreamIdleTimeout)
	}
	if m.MaxStreamDuration > 0 {
		o.MaxStreamDuration = time.Duration(m.MaxStreamDuration)
	}
	if m.MaxStreamBytes > 0 {
		o.MaxStreamBytes = m.MaxStreamBytes
	}
}
