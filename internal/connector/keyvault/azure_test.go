package keyvault

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// stub is a policy.Transporter that answers the Key Vault auth challenge
// and then a canned response, counting the calls.
type stub struct {
	mu        sync.Mutex
	challenge string // the authorization URL in WWW-Authenticate
	status    int
	body      string
	calls     int
}

func (s *stub) Do(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	resp := &http.Response{Request: req, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if req.Header.Get("Authorization") == "" {
		resp.StatusCode = http.StatusUnauthorized
		resp.Header.Set("WWW-Authenticate", `Bearer authorization="`+s.challenge+`", resource="https://vault.local"`)
		resp.Body = io.NopCloser(strings.NewReader(""))
		return resp, nil
	}
	resp.StatusCode = s.status
	resp.Header.Set("Content-Type", "application/json")
	resp.Body = io.NopCloser(strings.NewReader(s.body))
	return resp, nil
}

type testCred struct{}

func (testCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func newStubbed(t *testing.T, s *stub) *Azure {
	t.Helper()
	if s.challenge == "" {
		s.challenge = "https://login.local/tenant"
	}
	a, err := NewAzure("kv-test", "https://kv-test.vault.azure.net/", testCred{}, AzureOptions{
		Transport:                            s,
		DisableChallengeResourceVerification: true,
		Retry:                                policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewAzureValidates(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		cred      azcore.TokenCredential
		opt       AzureOptions
	}{
		{"", "https://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"a/b", "https://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"kv", "https://x.vault.azure.net", testCred{}, AzureOptions{}}, // 2 characters
		{"kv-", "https://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"1kv", "https://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"kv--a", "https://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"kv" + "\u212a" + "x", "https://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"kv-x", "http://x.vault.azure.net", testCred{}, AzureOptions{}},
		{"kv-x", "https://", testCred{}, AzureOptions{}},
		{"kv-x", "https://x.vault.azure.net/secrets", testCred{}, AzureOptions{}},
		{"kv-x", "https://x.vault.azure.net?a=b", testCred{}, AzureOptions{}},
		{"kv-x", "https://u:p@x.vault.azure.net", testCred{}, AzureOptions{}},
		{"kv-x", "::", testCred{}, AzureOptions{}},
		{"kv-x", "https://x.vault.azure.net", nil, AzureOptions{}},
		{"kv-x", "https://x.vault.azure.net", testCred{}, AzureOptions{MaxListEntries: -1}},
	} {
		if _, err := NewAzure(tc.name, tc.url, tc.cred, tc.opt); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewAzure(%q, %q): %v", tc.name, tc.url, err)
		}
	}
	a, err := NewAzure("KV-Finance", "https://x.vault.azure.net/", testCred{}, AzureOptions{})
	if err != nil || a.Vault() != "kv-finance" {
		t.Fatalf("NewAzure: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	const value = "the-secret-value-123"
	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusBadRequest, ErrInvalid},
		{http.StatusUnauthorized, ErrForbidden},
		{http.StatusForbidden, ErrForbidden},
		{http.StatusNotFound, ErrNotFound},
		{http.StatusConflict, ErrConflict},
		{http.StatusRequestEntityTooLarge, ErrInvalid},
		{http.StatusTooManyRequests, nil},
		{http.StatusInternalServerError, nil},
	} {
		s := &stub{status: tc.status,
			body: `{"error":{"code":"SomeCode","message":"echoing ` + value + ` back","innererror":{"code":"Inner"}}}`}
		a := newStubbed(t, s)
		_, err := a.Set(context.Background(), "app/key", value, "")
		if err == nil {
			t.Fatalf("%d: no error", tc.status)
		}
		for _, sentinel := range []error{ErrInvalid, ErrForbidden, ErrNotFound, ErrConflict} {
			if errors.Is(err, sentinel) != (sentinel == tc.want) {
				t.Errorf("%d: %v; errors.Is(%v) wrong", tc.status, err, sentinel)
			}
		}
		msg := err.Error()
		if strings.Contains(msg, value) {
			t.Errorf("%d: error carries the value: %s", tc.status, msg)
		}
		for _, part := range []string{"set app/key", "HTTP", "SomeCode", "[redacted]"} {
			if !strings.Contains(msg, part) {
				t.Errorf("%d: error %q lacks %q", tc.status, msg, part)
			}
		}
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			t.Errorf("%d: the raw ResponseError (with its body) is exposed", tc.status)
		}
	}
}

func TestBadInputSendsNothing(t *testing.T) {
	s := &stub{status: http.StatusOK, body: `{}`}
	a := newStubbed(t, s)
	ctx := context.Background()
	checks := []error{}
	_, err := a.Get(ctx, "a//b", "")
	checks = append(checks, err)
	_, err = a.Get(ctx, "a/b", "..")
	checks = append(checks, err)
	_, err = a.Get(ctx, "a/b", "abc/def")
	checks = append(checks, err)
	_, err = a.Get(ctx, "a/b", strings.Repeat("a", 65))
	checks = append(checks, err)
	_, err = a.Set(ctx, "a/b", strings.Repeat("x", MaxValueBytes+1), "")
	checks = append(checks, err)
	_, err = a.Set(ctx, "a_b", "v", "")
	checks = append(checks, err)
	_, err = a.Delete(ctx, "")
	checks = append(checks, err)
	_, err = a.Recover(ctx, "-")
	checks = append(checks, err)
	checks = append(checks, a.Purge(ctx, "a/"))
	_, err = a.ListVersions(ctx, "/a")
	checks = append(checks, err)
	for i, err := range checks {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("check %d: %v", i, err)
		}
	}
	if s.calls != 0 {
		t.Fatalf("%d requests sent for invalid input", s.calls)
	}
}

// The SDK (keyvault/internal v1.2.0) indexes out of range on a challenge
// whose authorization URL has no path; the wrapper must turn that into an
// error.
func TestSDKPanicBecomesError(t *testing.T) {
	s := &stub{challenge: "https://login.local", status: http.StatusOK, body: `{}`}
	a := newStubbed(t, s)
	_, err := a.Get(context.Background(), "a/b", "")
	if err == nil || !strings.Contains(err.Error(), "SDK failed") {
		t.Fatalf("want a recovered panic, got %v", err)
	}
	if _, err := a.ListNames(context.Background()); err == nil {
		t.Fatal("ListNames: no error")
	}
}

func TestListSkipsOddIDs(t *testing.T) {
	s := &stub{status: http.StatusOK, body: `{"value":[
		{"id":"https://h/secrets"},
		{"id":"https://h/secrets/b--a","attributes":{"enabled":false,"created":1700000000}},
		{"id":"https://h/secrets/a"},
		{"id":"https://h/secrets/x---y"},
		{"id":"%zz"},
		null,
		{}
	],"nextLink":null}`}
	a := newStubbed(t, s)
	got, err := a.ListNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != "a" || got[1].Path != "b/a" || got[1].Enabled || got[1].Created.Unix() != 1700000000 || !got[0].Enabled {
		t.Fatalf("ListNames %+v", got)
	}

	s.body = `{"value":[],"nextLink":null}`
	if _, err := a.ListVersions(context.Background(), "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty versions: %v", err)
	}
}

func TestGetDecodes(t *testing.T) {
	s := &stub{status: http.StatusOK, body: `{"value":"v","id":"https://h/secrets/app--key/0123456789abcdef0123456789abcdef",
		"contentType":"text/plain","attributes":{"enabled":true,"created":1700000000,"updated":1700000100}}`}
	a := newStubbed(t, s)
	got, err := a.Get(context.Background(), "app/key", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Secret{Vault: "kv-test", Path: "app/key", Version: "0123456789abcdef0123456789abcdef", Value: "v",
		ContentType: "text/plain", Enabled: true, Created: time.Unix(1700000000, 0), Updated: time.Unix(1700000100, 0)}
	if got.Vault != want.Vault || got.Path != want.Path || got.Version != want.Version || got.Value != want.Value ||
		got.ContentType != want.ContentType || got.Enabled != want.Enabled || !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
