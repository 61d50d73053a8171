package devvault

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/clawea/clawea/internal/connector/keyvault"
)

// Conn is what a client in another process needs to reach a dev vault:
// clawea devvault writes it to a file (mode 0600) and clawea serve reads it
// (the config file's tool_gateway.vaults[].devvault).
type Conn struct {
	Vault   string `json:"vault"`
	URL     string `json:"url"`
	Token   string `json:"token"`
	CertPEM string `json:"cert_pem"`
}

// Conn describes a started server.
func (s *Server) Conn() Conn {
	return Conn{Vault: s.Vault(), URL: s.URL(), Token: s.Token(), CertPEM: string(s.CertPEM())}
}

// WriteConn writes c to path, readable only by its owner.
func WriteConn(path string, c Conn) error {
	raw, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadConn reads a connection file.
func ReadConn(path string) (Conn, error) {
	var c Conn
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("devvault: %s: %w", path, err)
	}
	if c.Vault == "" || c.URL == "" || c.Token == "" || c.CertPEM == "" {
		return c, fmt.Errorf("devvault: %s lacks vault, url, token or cert_pem", path)
	}
	return c, nil
}

// Client returns a Key Vault client for the dev vault c describes, over the
// real azsecrets client.
func (c Conn) Client() (*keyvault.Azure, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(c.CertPEM)) {
		return nil, errors.New("devvault: the connection's certificate is not PEM")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cred, err := keyvault.Credential(keyvault.CredentialConfig{Kind: keyvault.CredentialStatic, Token: c.Token})
	if err != nil {
		return nil, err
	}
	return keyvault.NewAzure(c.Vault, c.URL, cred, keyvault.AzureOptions{Transport: &http.Client{Transport: tr}, DisableChallengeResourceVerification: true})
}
