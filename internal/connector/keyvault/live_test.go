package keyvault_test

// A test against a real Key Vault, run only when CLAWEA_TEST_KEYVAULT_URL
// names one (https://<name>.vault.azure.net/); the identity comes from the
// default Azure credential chain (environment, workload identity, managed
// identity, Azure CLI). It writes, reads, lists and soft-deletes one secret
// under clawea-live-test--<random>, and purges it when the vault allows. The
// same steps run against the dev vault in every test run.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
)

func TestLiveAzureKeyVault(t *testing.T) {
	vaultURL := os.Getenv("CLAWEA_TEST_KEYVAULT_URL")
	if vaultURL == "" {
		t.Skip("set CLAWEA_TEST_KEYVAULT_URL (and an Azure identity) to test against a real Key Vault")
	}
	cred, err := keyvault.Credential(keyvault.CredentialConfig{Kind: keyvault.CredentialDefault})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := keyvault.NewAzure("live", vaultURL, cred, keyvault.AzureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, kv)
}

func TestRoundTripOnDevVault(t *testing.T) {
	srv, err := devvault.New(devvault.Options{Vault: "kv-live"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	kv, err := srv.Conn().Client()
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, kv)
}

func roundTrip(t *testing.T, kv keyvault.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var b [6]byte
	rand.Read(b[:])
	path := "clawea-live-test/" + hex.EncodeToString(b[:])
	set, err := kv.Set(ctx, path, "live-value-"+hex.EncodeToString(b[:]), "text/plain")
	if err != nil {
		t.Fatalf("set: %v", err)
	}
	got, err := kv.Get(ctx, path, "")
	if err != nil || got.Value != set.Value || got.Version != set.Version {
		t.Fatalf("get: %+v %v", got, err)
	}
	names, err := kv.ListNames(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	found := false
	for _, n := range names {
		found = found || n.Path == path
	}
	if !found {
		t.Errorf("%s not listed", path)
	}
	if _, err := kv.Delete(ctx, path); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := kv.Get(ctx, path, ""); !errors.Is(err, keyvault.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	// Purging may be refused (purge protection) or race the deletion.
	for i := 0; i < 10; i++ {
		err = kv.Purge(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "being deleted") {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		t.Logf("purge (left for the vault's retention): %v", err)
	} else if _, err := kv.Recover(ctx, path); err == nil {
		t.Error("a purged secret was recovered")
	}
}
