package devvault_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/clawea/clawea/internal/devvault"
)

func TestPersistenceRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vault.json")

	srv, err := devvault.New(devvault.Options{PersistPath: path, Vault: "kv-demo"})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	c := sdk(t, srv, url, srv.Credential())
	v1, err := srv.Put("db-password", "one", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	set2, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: to.Ptr("two"),
		Tags: map[string]*string{"k": to.Ptr("v")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Put("gone", "x", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecret(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", fi.Mode().Perm())
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".devvault-*")); len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}

	srv2, url2 := start(t, devvault.Options{PersistPath: path})
	c2 := sdk(t, srv2, url2, srv2.Credential())
	got, err := c2.GetSecret(ctx, "db-password", "", nil)
	if err != nil || *got.Value != "two" || got.ID.Version() != set2.ID.Version() || *got.Tags["k"] != "v" {
		t.Fatalf("latest after reload: %+v %v", got, err)
	}
	got, err = c2.GetSecret(ctx, "db-password", v1, nil)
	if err != nil || *got.Value != "one" || *got.ContentType != "text/plain" {
		t.Fatalf("v1 after reload: %v", err)
	}
	if !got.Attributes.Created.Equal(*set2.Attributes.Created) && got.Attributes.Created.After(*set2.Attributes.Created) {
		t.Fatalf("created times not kept")
	}
	_, err = c2.GetSecret(ctx, "gone", "", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	if _, err := c2.GetDeletedSecret(ctx, "gone", nil); err != nil {
		t.Fatalf("deleted secret after reload: %v", err)
	}
	if _, err := c2.PurgeDeletedSecret(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(`"gone"`)) {
		t.Fatal("purged secret still in the file")
	}
}

func TestPersistenceRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":      "not json",
		"format":       `{"format":"other","secrets":[]}`,
		"bad name":     `{"format":"clawea-devvault/1","secrets":[{"name":"a_b","versions":[{"id":"0123456789abcdef0123456789abcdef","value":"v"}]}]}`,
		"no versions":  `{"format":"clawea-devvault/1","secrets":[{"name":"ab","versions":[]}]}`,
		"bad version":  `{"format":"clawea-devvault/1","secrets":[{"name":"ab","versions":[{"id":"xyz","value":"v"}]}]}`,
		"null entry":   `{"format":"clawea-devvault/1","secrets":[null]}`,
		"duplicate":    `{"format":"clawea-devvault/1","secrets":[{"name":"ab","versions":[{"id":"0123456789abcdef0123456789abcdef","value":"v"}]},{"name":"AB","versions":[{"id":"0123456789abcdef0123456789abcdef","value":"v"}]}]}`,
		"repeated ver": `{"format":"clawea-devvault/1","secrets":[{"name":"ab","versions":[{"id":"0123456789abcdef0123456789abcdef","value":"v"},{"id":"0123456789ABCDEF0123456789ABCDEF","value":"v"}]}]}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := devvault.New(devvault.Options{PersistPath: p}); err == nil {
			t.Errorf("%s: New accepted the file", name)
		}
	}
	// A missing file is an empty vault, and a missing directory is
	// created on the first write (a fresh data directory).
	fresh := filepath.Join(dir, "nope", "deeper", "v.json")
	srv, err := devvault.New(devvault.Options{PersistPath: fresh})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Put("a", "b", ""); err != nil {
		t.Fatalf("Put into a fresh directory: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal(err)
	}
	// A directory that cannot be made (a file took its name) fails on write.
	srv, err = devvault.New(devvault.Options{PersistPath: filepath.Join(dir, "late", "v.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "late"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Put("a", "b", ""); err == nil || !strings.Contains(err.Error(), "persist") {
		t.Fatalf("Put with an unwritable file: %v", err)
	}
}

func TestOptionsAndLifecycle(t *testing.T) {
	for _, o := range []devvault.Options{
		{Vault: "bad/name"}, {Vault: "kv"}, {Vault: "kv--x"}, {Vault: "kv-x-"}, {Vault: "\uff4bv-x"}, {Vault: "kv-x\x00"}, {Tenant: "a b"}, {Token: "has space"}, {Port: -1}, {Port: 70000},
		{PageSize: 26}, {PageSize: -1}, {MaxSecrets: -1},
	} {
		if _, err := devvault.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}

	if srv, err := devvault.New(devvault.Options{Vault: "KV-Demo"}); err != nil || srv.Vault() != "kv-demo" {
		t.Errorf("New(KV-Demo): vault %v", err)
	}
	srv, err := devvault.New(devvault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Vault() != "kv-dev" || len(srv.Token()) < 32 || srv.URL() != "" {
		t.Fatalf("defaults: %q %q %q", srv.Vault(), srv.Token(), srv.URL())
	}
	tok, err := srv.Credential().GetToken(context.Background(), policy.TokenRequestOptions{})
	if err != nil || tok.Token != srv.Token() || time.Until(tok.ExpiresOn) < time.Hour {
		t.Fatalf("credential: %+v %v", tok, err)
	}
	block, _ := pem.Decode(srv.CertPEM())
	if block == nil {
		t.Fatal("CertPEM is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.PublicKeyAlgorithm != x509.ECDSA || cert.VerifyHostname("127.0.0.1") != nil || cert.VerifyHostname("localhost") != nil {
		t.Fatalf("certificate: %v %v", cert.PublicKeyAlgorithm, cert.DNSNames)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: srv.CertPool(), DNSName: "localhost"}); err != nil {
		t.Fatalf("verify against CertPool: %v", err)
	}

	url, err := srv.Start()
	if err != nil || !strings.HasPrefix(url, "https://127.0.0.1:") || srv.URL() != url {
		t.Fatalf("Start: %q %v", url, err)
	}
	if _, err := srv.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	// An untrusting client fails the handshake.
	if _, err := http.Get(url + "/secrets?api-version=1"); err == nil {
		t.Fatal("default client trusted the self-signed certificate")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := srv.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	if _, err := srv.Client().Get(url); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func TestPutAndLimits(t *testing.T) {
	srv, err := devvault.New(devvault.Options{MaxSecrets: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Put("bad_name", "v", ""); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := srv.Put("big", strings.Repeat("x", devvault.MaxValueBytes+1), ""); err == nil {
		t.Fatal("big value accepted")
	}
	for i := 0; i < 3; i++ {
		if _, err := srv.Put("s", "v", ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Put("t", "v", ""); err == nil {
		t.Fatal("vault over MaxSecrets accepted a version")
	}

	// Handler works mounted in another TLS server too.
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{srv.TLSCertificate()}}
	ts.StartTLS()
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/secrets/s?api-version=2026-04-01", nil)
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("delete via handler: %d %v", resp.StatusCode, err)
	}
	if _, err := srv.Put("s", "v", ""); err == nil {
		t.Fatal("Put on a deleted name succeeded")
	}
}

func TestRetentionExpiry(t *testing.T) {
	var now atomic.Int64
	now.Store(1_700_000_000)
	srv, url := start(t, devvault.Options{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	c := sdk(t, srv, url, srv.Credential())
	ctx := context.Background()
	if _, err := srv.Put("old", "v", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecret(ctx, "old", nil); err != nil {
		t.Fatal(err)
	}
	now.Add(91 * 24 * 3600)
	_, err := c.GetDeletedSecret(ctx, "old", nil)
	respErr(t, err, http.StatusNotFound, "SecretNotFound")
	if _, err := srv.Put("old", "new", ""); err != nil {
		t.Fatalf("name not freed after retention: %v", err)
	}
}
