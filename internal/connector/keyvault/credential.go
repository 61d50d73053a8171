package keyvault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Credential kinds for CredentialConfig.Kind.
const (
	CredentialDefault      = "default"       // azidentity.DefaultAzureCredential (env, workload, managed identity, az CLI, ...)
	CredentialWorkload     = "workload"      // Kubernetes workload identity (federated token file)
	CredentialClientSecret = "client_secret" // service principal; the secret comes from an environment variable
	CredentialStatic       = "static"        // a fixed bearer token: the dev vault only
)

// CredentialConfig selects how the gateway authenticates to Key Vault.
// It holds no client secret itself: SecretEnv names the variable to read.
type CredentialConfig struct {
	// Kind is one of the Credential* constants; "" means CredentialDefault.
	Kind string
	// TenantID and ClientID: required for client_secret; for workload they
	// override AZURE_TENANT_ID / AZURE_CLIENT_ID when set; default uses
	// TenantID only (its client id comes from AZURE_CLIENT_ID).
	TenantID string
	ClientID string
	// TokenFile is the federated token file for workload (default:
	// AZURE_FEDERATED_TOKEN_FILE).
	TokenFile string
	// SecretEnv names the environment variable holding the client secret
	// for client_secret.
	SecretEnv string
	// Token is the bearer token for static (the dev vault's Token()); it is
	// a development credential, never a production one.
	Token string
}

// Credential builds the azcore.TokenCredential that cfg describes. Building
// does not contact Azure; the first GetToken does.
func Credential(cfg CredentialConfig) (azcore.TokenCredential, error) {
	switch cfg.Kind {
	case "", CredentialDefault:
		opts := &azidentity.DefaultAzureCredentialOptions{TenantID: cfg.TenantID}
		c, err := azidentity.NewDefaultAzureCredential(opts)
		if err != nil {
			return nil, fmt.Errorf("keyvault: default Azure credential: %w", err)
		}
		return c, nil
	case CredentialWorkload:
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFile,
		})
		if err != nil {
			return nil, fmt.Errorf("keyvault: workload identity credential: %w", err)
		}
		return c, nil
	case CredentialClientSecret:
		if cfg.TenantID == "" || cfg.ClientID == "" {
			return nil, errors.New("keyvault: client_secret credential needs a tenant id and a client id")
		}
		if cfg.SecretEnv == "" {
			return nil, errors.New("keyvault: client_secret credential needs SecretEnv, the name of the environment variable holding the secret")
		}
		secret := os.Getenv(cfg.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("keyvault: environment variable %s (client secret) is unset or empty", cfg.SecretEnv)
		}
		c, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, secret, nil)
		if err != nil {
			return nil, fmt.Errorf("keyvault: client secret credential: %w", err)
		}
		return c, nil
	case CredentialStatic:
		if cfg.Token == "" {
			return nil, errors.New("keyvault: static credential needs a token")
		}
		return staticCredential{token: cfg.Token}, nil
	default:
		return nil, fmt.Errorf("keyvault: unknown credential kind %q (want default, workload, client_secret or static)", clip(cfg.Kind))
	}
}

// staticCredential always returns the same token, valid for a day from
// each call.
type staticCredential struct{ token string }

func (c staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
}
