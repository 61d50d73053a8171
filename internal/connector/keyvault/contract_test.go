package keyvault_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
)

// The same scenario runs against the Fake and against the Azure client on
// the dev vault, so the Fake stays faithful to what the SDK path does.
func TestContract(t *testing.T) {
	t.Run("fake", func(t *testing.T) { contract(t, keyvault.NewFake("kv-dev")) })
	t.Run("azure+devvault", func(t *testing.T) {
		srv, err := devvault.New(devvault.Options{PageSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		url, err := srv.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		a, err := keyvault.NewAzure(srv.Vault(), url, srv.Credential(), keyvault.AzureOptions{
			Transport:                            srv.Client(),
			DisableChallengeResourceVerification: true,
			Retry:                                policy.RetryOptions{MaxRetries: -1},
		})
		if err != nil {
			t.Fatal(err)
		}
		contract(t, a)
	})
}

var version32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func is(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func contract(t *testing.T, c keyvault.Client) {
	ctx := context.Background()
	if c.Vault() != "kv-dev" {
		t.Fatalf("Vault %q", c.Vault())
	}
	names, err := c.ListNames(ctx)
	if err != nil || len(names) != 0 {
		t.Fatalf("empty ListNames %v %v", names, err)
	}
	_, err = c.Get(ctx, "agent/db", "")
	is(t, "get missing", err, keyvault.ErrNotFound)

	s1, err := c.Set(ctx, "agent/db", "v1", "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	if !version32.MatchString(s1.Version) || s1.Value != "v1" || s1.Path != "agent/db" || s1.Vault != "kv-dev" ||
		s1.ContentType != "text/plain" || !s1.Enabled || s1.Created.IsZero() {
		t.Fatalf("Set %+v", s1)
	}
	s2, err := c.Set(ctx, "agent/db", "v2", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "agent/db", ""); err != nil || got.Value != "v2" || got.Version != s2.Version {
		t.Fatalf("latest %+v %v", got, err)
	}
	if got, err := c.Get(ctx, "agent/db", s1.Version); err != nil || got.Value != "v1" || got.ContentType != "text/plain" {
		t.Fatalf("by version %+v %v", got, err)
	}
	if got, err := c.Get(ctx, "AGENT/DB", ""); err != nil || got.Value != "v2" {
		t.Fatalf("case-insensitive %+v %v", got, err)
	}
	_, err = c.Get(ctx, "agent/db", strings.Repeat("0", 32))
	is(t, "unknown version", err, keyvault.ErrNotFound)
	_, err = c.Get(ctx, "agent/db", "../x")
	is(t, "bad version", err, keyvault.ErrInvalid)
	_, err = c.Set(ctx, "agent//db", "v", "")
	is(t, "bad path", err, keyvault.ErrInvalid)
	_, err = c.Set(ctx, "agent/big", strings.Repeat("x", keyvault.MaxValueBytes+1), "")
	is(t, "big value", err, keyvault.ErrInvalid)
	if _, err := c.Set(ctx, "agent/max", strings.Repeat("x", keyvault.MaxValueBytes), ""); err != nil {
		t.Fatalf("value at the limit: %v", err)
	}

	for _, p := range []string{"b/one", "b/two", "c"} {
		if _, err := c.Set(ctx, p, "x", ""); err != nil {
			t.Fatal(err)
		}
	}
	names, err = c.ListNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, n := range names {
		if n.Version != "" || !n.Enabled {
			t.Fatalf("name info %+v", n)
		}
		paths = append(paths, n.Path)
	}
	if strings.Join(paths, ",") != "agent/db,agent/max,b/one,b/two,c" {
		t.Fatalf("ListNames %v", paths)
	}
	vs, err := c.ListVersions(ctx, "agent/db")
	if err != nil || len(vs) != 2 || vs[0].Version != s1.Version || vs[1].Version != s2.Version || vs[0].Path != "agent/db" {
		t.Fatalf("ListVersions %+v %v", vs, err)
	}
	_, err = c.ListVersions(ctx, "nothing")
	is(t, "versions of nothing", err, keyvault.ErrNotFound)

	d, err := c.Delete(ctx, "agent/db")
	if err != nil || d.Path != "agent/db" || d.RecoveryID == "" || !d.ScheduledPurgeDate.After(d.DeletedAt) {
		t.Fatalf("Delete %+v %v", d, err)
	}
	_, err = c.Get(ctx, "agent/db", "")
	is(t, "get deleted", err, keyvault.ErrNotFound)
	_, err = c.Get(ctx, "agent/db", s1.Version)
	is(t, "get deleted version", err, keyvault.ErrNotFound)
	_, err = c.Set(ctx, "agent/db", "v3", "")
	is(t, "set deleted", err, keyvault.ErrConflict)
	_, err = c.Delete(ctx, "agent/db")
	is(t, "delete twice", err, keyvault.ErrNotFound)
	_, err = c.ListVersions(ctx, "agent/db")
	is(t, "versions of deleted", err, keyvault.ErrNotFound)
	if names, _ := c.ListNames(ctx); len(names) != 4 {
		t.Fatalf("ListNames after delete: %+v", names)
	}
	is(t, "purge live", c.Purge(ctx, "c"), keyvault.ErrNotFound)
	_, err = c.Recover(ctx, "c")
	is(t, "recover live", err, keyvault.ErrNotFound)

	info, err := c.Recover(ctx, "agent/db")
	if err != nil || info.Version != s2.Version || info.Path != "agent/db" {
		t.Fatalf("Recover %+v %v", info, err)
	}
	if got, err := c.Get(ctx, "agent/db", s1.Version); err != nil || got.Value != "v1" {
		t.Fatalf("after recover %+v %v", got, err)
	}

	if _, err := c.Delete(ctx, "agent/db"); err != nil {
		t.Fatal(err)
	}
	if err := c.Purge(ctx, "agent/db"); err != nil {
		t.Fatalf("Purge %v", err)
	}
	is(t, "purge twice", c.Purge(ctx, "agent/db"), keyvault.ErrNotFound)
	_, err = c.Recover(ctx, "agent/db")
	is(t, "recover purged", err, keyvault.ErrNotFound)
	s4, err := c.Set(ctx, "agent/db", "v4", "")
	if err != nil {
		t.Fatalf("set after purge %v", err)
	}
	if vs, err := c.ListVersions(ctx, "agent/db"); err != nil || len(vs) != 1 || vs[0].Version != s4.Version {
		t.Fatalf("history after purge %+v %v", vs, err)
	}

	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Set(ctx, "conc", "x", ""); err != nil {
				t.Error(err)
			}
			if _, err := c.Get(ctx, "conc", ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if vs, err := c.ListVersions(ctx, "conc"); err != nil || len(vs) != 8 {
		t.Fatalf("concurrent versions %d %v", len(vs), err)
	}
}

func TestFakeFailHook(t *testing.T) {
	f := keyvault.NewFake("kv")
	boom := errors.New("boom")
	var seen []string
	f.Fail = func(op, path string) error {
		seen = append(seen, op+":"+path)
		if op == "get" {
			return boom
		}
		return nil
	}
	ctx := context.Background()
	if _, err := f.Set(ctx, "a", "v", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, "a", ""); !errors.Is(err, boom) {
		t.Fatalf("Get: %v", err)
	}
	if _, err := f.ListNames(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, " ") != "set:a get:a list:" {
		t.Fatalf("hook saw %v", seen)
	}
}
