package keyvault

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

func TestCredential(t *testing.T) {
	c, err := Credential(CredentialConfig{Kind: CredentialStatic, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := c.GetToken(context.Background(), policy.TokenRequestOptions{})
	if err != nil || tk.Token != "tok" {
		t.Fatalf("static token %q %v", tk.Token, err)
	}

	t.Setenv("CLAWEA_TEST_KV_SECRET", "sp-secret-value")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := []CredentialConfig{
		{Kind: CredentialClientSecret, TenantID: "tenant", ClientID: "client", SecretEnv: "CLAWEA_TEST_KV_SECRET"},
		{Kind: CredentialWorkload, TenantID: "tenant", ClientID: "client", TokenFile: tokenFile},
		{Kind: CredentialDefault},
		{},
	}
	for _, cfg := range good {
		if c, err := Credential(cfg); err != nil || c == nil {
			t.Errorf("Credential(%+v): %v", cfg, err)
		}
	}

	t.Setenv("CLAWEA_TEST_KV_EMPTY", "")
	bad := []CredentialConfig{
		{Kind: CredentialStatic},
		{Kind: CredentialClientSecret, ClientID: "client", SecretEnv: "CLAWEA_TEST_KV_SECRET"},
		{Kind: CredentialClientSecret, TenantID: "tenant", SecretEnv: "CLAWEA_TEST_KV_SECRET"},
		{Kind: CredentialClientSecret, TenantID: "tenant", ClientID: "client"},
		{Kind: CredentialClientSecret, TenantID: "tenant", ClientID: "client", SecretEnv: "CLAWEA_TEST_KV_EMPTY"},
		{Kind: CredentialClientSecret, TenantID: "tenant", ClientID: "client", SecretEnv: "CLAWEA_TEST_KV_UNSET_XYZ"},
		{Kind: "kerberos"},
	}
	for _, cfg := range bad {
		_, err := Credential(cfg)
		if err == nil {
			t.Errorf("Credential(%+v) succeeded", cfg)
			continue
		}
		if strings.Contains(err.Error(), "sp-secret-value") {
			t.Errorf("error carries the client secret: %v", err)
		}
	}
}
