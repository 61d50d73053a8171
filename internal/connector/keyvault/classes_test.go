package keyvault_test

// Error classes through the real azsecrets client against the dev vault's
// fault injection: each Azure-shaped failure must come out of the
// connector as exactly its class's sentinel.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/devvault"
)

var allClasses = []error{keyvault.ErrNotFound, keyvault.ErrConflict, keyvault.ErrForbidden, keyvault.ErrInvalid,
	keyvault.ErrThrottled, keyvault.ErrUnreachable, keyvault.ErrTimeout}

func onlyClass(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, want)
		return
	}
	for _, c := range allClasses {
		if got := errors.Is(err, c); got != (c == want) {
			t.Errorf("%s: errors.Is(err, %v) = %v (want class %v); err: %v", what, c, got, want, err)
		}
	}
}

// faultVault starts a dev vault with a secret and returns it with an
// azsecrets-backed client (retries as given).
func faultVault(t *testing.T, retry policy.RetryOptions) (*devvault.Server, *keyvault.Azure) {
	t.Helper()
	srv, err := devvault.New(devvault.Options{Vault: "kv-faults"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	kv, err := keyvault.NewAzure(srv.Vault(), srv.URL(), srv.Credential(), keyvault.AzureOptions{
		Transport: srv.Client(), DisableChallengeResourceVerification: true, Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Set(context.Background(), "app/x", "v1", ""); err != nil {
		t.Fatal(err)
	}
	return srv, kv
}

// ops runs every connector operation on path.
func ops(kv keyvault.Client) map[string]func(ctx context.Context, path string) error {
	return map[string]func(context.Context, string) error{
		"get":      func(ctx context.Context, p string) error { _, err := kv.Get(ctx, p, ""); return err },
		"set":      func(ctx context.Context, p string) error { _, err := kv.Set(ctx, p, "v2", ""); return err },
		"delete":   func(ctx context.Context, p string) error { _, err := kv.Delete(ctx, p); return err },
		"recover":  func(ctx context.Context, p string) error { _, err := kv.Recover(ctx, p); return err },
		"purge":    func(ctx context.Context, p string) error { return kv.Purge(ctx, p) },
		"versions": func(ctx context.Context, p string) error { _, err := kv.ListVersions(ctx, p); return err },
	}
}

func TestAzureErrorClassesFromDevVaultFaults(t *testing.T) {
	srv, kv := faultVault(t, policy.RetryOptions{MaxRetries: -1})
	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusForbidden, keyvault.ErrForbidden},
		{http.StatusNotFound, keyvault.ErrNotFound},
		{http.StatusConflict, keyvault.ErrConflict},
		{http.StatusBadRequest, keyvault.ErrInvalid},
		{http.StatusTooManyRequests, keyvault.ErrThrottled},
		{http.StatusServiceUnavailable, keyvault.ErrUnreachable},
		{http.StatusBadGateway, keyvault.ErrUnreachable},
		{http.StatusGatewayTimeout, keyvault.ErrUnreachable},
		{http.StatusRequestTimeout, keyvault.ErrTimeout},
		{http.StatusInternalServerError, nil},
	} {
		if err := srv.SetFault("app--x", devvault.Fault{Status: tc.status, RetryAfter: 7 * time.Second}); err != nil {
			t.Fatal(err)
		}
		for name, op := range ops(kv) {
			err := op(context.Background(), "app/x")
			onlyClass(t, name+" "+http.StatusText(tc.status), err, tc.want)
			d, ok := keyvault.RetryAfter(err)
			if wantRA := tc.want == keyvault.ErrThrottled || tc.want == keyvault.ErrUnreachable; ok != wantRA || ok && d != 7*time.Second {
				t.Errorf("%s %d: RetryAfter = %v, %v", name, tc.status, d, ok)
			}
		}
	}
	// Listing names: a fault on every request.
	srv.ClearFaults()
	srv.SetFault(devvault.FaultAll, devvault.Fault{Status: http.StatusForbidden})
	_, err := kv.ListNames(context.Background())
	onlyClass(t, "list names", err, keyvault.ErrForbidden)
	// Faults cleared: the secret is there.
	srv.ClearFaults()
	if s, err := kv.Get(context.Background(), "app/x", ""); err != nil || s.Value != "v1" {
		t.Fatalf("after the faults: %+v %v", s, err)
	}
}

func TestAzureThrottledAfterRetries(t *testing.T) {
	srv, kv := faultVault(t, policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Second})
	srv.SetFault("app--x", devvault.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second})
	_, err := kv.Get(context.Background(), "app/x", "")
	onlyClass(t, "get throttled after retries", err, keyvault.ErrThrottled)
	if n := srv.FaultHits("app--x"); n != 3 {
		t.Errorf("the SDK sent %d requests, want 3 (1 + 2 retries honouring Retry-After)", n)
	}
	if d, ok := keyvault.RetryAfter(err); !ok || d != time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
}

func TestAzureTimeoutCancelUnreachable(t *testing.T) {
	srv, kv := faultVault(t, policy.RetryOptions{MaxRetries: -1})
	srv.SetFault("app--x", devvault.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := kv.Get(ctx, "app/x", "")
	onlyClass(t, "get with a deadline on a hung vault", err, keyvault.ErrTimeout)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err = kv.Get(ctx, "app/x", "")
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled get: %v, want context.Canceled", err)
	} else {
		onlyClass(t, "cancelled get", err, nil)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	closed, err := keyvault.NewAzure("kv-closed", "https://"+addr, srv.Credential(), keyvault.AzureOptions{
		Transport: srv.Client(), DisableChallengeResourceVerification: true, Retry: policy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = closed.Get(context.Background(), "app/x", "")
	onlyClass(t, "get on a closed port", err, keyvault.ErrUnreachable)
	_, err = closed.ListNames(context.Background())
	onlyClass(t, "list on a closed port", err, keyvault.ErrUnreachable)
}
