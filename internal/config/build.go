package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/devvault"
	"github.com/clawea/clawea/internal/mcpproxy"
	"github.com/clawea/clawea/internal/toolgw"
)

func (c *Credential) build() (azcore.TokenCredential, error) {
	cfg := keyvault.CredentialConfig{Kind: keyvault.CredentialDefault}
	if c != nil {
		if c.Kind == keyvault.CredentialStatic {
			return nil, errors.New("credential kind static is for the dev vault only")
		}
		cfg = keyvault.CredentialConfig{Kind: c.Kind, TenantID: c.TenantID, ClientID: c.ClientID, TokenFile: c.TokenFile, SecretEnv: c.SecretEnv}
	}
	return keyvault.Credential(cfg)
}

// Apply fills tool gateway options from the section: Key Vault clients,
// Service Bus namespaces (local ones are returned by name for the server
// to build over its store), approvers and timeouts.
func (t *ToolGateway) Apply(o *toolgw.Options) (local []string, err error) {
	if t == nil {
		return nil, nil
	}
	for i, v := range t.Vaults {
		switch {
		case v.DevVault != "":
			conn, err := devvault.ReadConn(v.DevVault)
			if err != nil {
				return nil, fmt.Errorf("tool_gateway.vaults[%d]: %w", i, err)
			}
			c, err := conn.Client()
			if err != nil {
				return nil, fmt.Errorf("tool_gateway.vaults[%d]: %w", i, err)
			}
			if v.Name != "" && v.Name != conn.Vault {
				return nil, fmt.Errorf("tool_gateway.vaults[%d]: name %q, but the dev vault is %q", i, v.Name, conn.Vault)
			}
			o.Vaults = append(o.Vaults, c)
		case v.URL != "" && v.Name != "":
			cred, err := v.Credential.build()
			if err != nil {
				return nil, fmt.Errorf("tool_gateway.vaults[%d]: %w", i, err)
			}
			c, err := keyvault.NewAzure(v.Name, v.URL, cred, keyvault.AzureOptions{})
			if err != nil {
				return nil, fmt.Errorf("tool_gateway.vaults[%d]: %w", i, err)
			}
			o.Vaults = append(o.Vaults, c)
		default:
			return nil, fmt.Errorf("tool_gateway.vaults[%d]: give name and url, or devvault", i)
		}
	}
	for i, ns := range t.ServiceBus {
		if ns.Name == "" {
			return nil, fmt.Errorf("tool_gateway.servicebus[%d]: namespace is required", i)
		}
		if _, err := servicebus.CanonicalNamespace(ns.Name); err != nil {
			return nil, fmt.Errorf("tool_gateway.servicebus[%d]: %w", i, err)
		}
		if ns.Local {
			local = append(local, ns.Name)
			continue
		}
		b, err := buildBus(ns)
		if err != nil {
			return nil, fmt.Errorf("tool_gateway.servicebus[%d]: %w", i, err)
		}
		o.Buses = append(o.Buses, b)
	}
	if t.mcp != nil {
		for i, uc := range t.mcp.Upstreams {
			up, err := mcpproxy.New(uc)
			if err != nil {
				return nil, fmt.Errorf("mcp.upstreams[%d]: %w", i, err)
			}
			o.Upstreams = append(o.Upstreams, up)
		}
	}
	o.Approvers = append(o.Approvers, t.Approvers...)
	if t.ApprovalTTL > 0 {
		o.ApprovalTTL = time.Duration(t.ApprovalTTL)
	}
	if t.CallTimeout > 0 {
		o.CallTimeout = time.Duration(t.CallTimeout)
	}
	return local, nil
}
