package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/policy"
)

// Fetch error codes (PROTOCOL.md §2.4); verification codes come from
// policy.VerifyEnvelope.
const (
	CodeFetchFailed   = "WPC_REGISTRY_FETCH_FAILED"
	CodeRegistryError = "WPC_REGISTRY_ERROR"
	CodeBadJSON       = "WPC_REGISTRY_BAD_JSON"
	CodeBadResponse   = "WPC_REGISTRY_BAD_RESPONSE"
	CodeBaseURL       = "WPC_REGISTRY_URL_INVALID"
)

// Client fetches pinned policies from a registry and verifies them before
// use: shape, requested hash, JCS recompute, signer allowlist, signature.
// Verified policies are cached (bounded, with a TTL). It is safe for
// concurrent use.
type Client struct {
	base   *url.URL
	http   *http.Client
	verify policy.VerifyOptions
	ttl    time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	doc *policy.Document
	at  time.Time
}

// ClientOptions configure a Client.
type ClientOptions struct {
	// Signers is the registry signer allowlist (required unless
	// AllowAnySigner is set).
	Signers        []string
	AllowAnySigner bool
	// HTTPClient defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
	// CacheTTL defaults to 60 s; CacheSize to 512.
	CacheTTL  time.Duration
	CacheSize int
	Now       func() time.Time
}

// NewClient returns a client for the registry at baseURL, which must be
// https unless it names a loopback host.
func NewClient(baseURL string, opt ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Host == "" {
		return nil, &policy.VerifyError{Code: CodeBaseURL, Status: http.StatusInternalServerError, Msg: fmt.Sprintf("registry URL %q is not an absolute URL", baseURL)}
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, &policy.VerifyError{Code: CodeBaseURL, Status: http.StatusInternalServerError, Msg: "the registry URL must be https (http only for loopback)"}
	}
	c := &Client{base: u, http: opt.HTTPClient, verify: policy.VerifyOptions{Signers: opt.Signers, AllowAnySigner: opt.AllowAnySigner},
		ttl: opt.CacheTTL, max: opt.CacheSize, now: opt.Now, cache: map[string]cached{}}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Second}
	}
	if c.ttl == 0 {
		c.ttl = 60 * time.Second
	}
	if c.max == 0 {
		c.max = 512
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fetchErr is a fetch failure: a *policy.VerifyError with a public message.
// A Go error among args is not formatted into the message (it reads
// "internal error" there) but kept as a private cause beside it.
func fetchErr(code string, status int, format string, args ...any) error {
	e := httpapi.Errorf(status, code, format, args...)
	ve := &policy.VerifyError{Code: code, Status: status, Msg: e.Msg}
	if e.Cause() == nil {
		return ve
	}
	return &fetchFailure{ve: ve, cause: e.Cause()}
}

// fetchFail is a fetch failure with a fixed public message and a private
// cause.
func fetchFail(code string, status int, msg string, cause error) error {
	return &fetchFailure{ve: &policy.VerifyError{Code: code, Status: status, Msg: msg}, cause: cause}
}

// fetchFailure keeps a fetch failure's private cause beside its public
// *policy.VerifyError; errors.As finds either.
type fetchFailure struct {
	ve    *policy.VerifyError
	cause error
}

func (f *fetchFailure) Error() string   { return f.ve.Error() + ": " + f.cause.Error() }
func (f *fetchFailure) Unwrap() []error { return []error{f.ve, f.cause} }

// Fetch returns the verified policy with the given hash.
func (c *Client) Fetch(ctx context.Context, hash string) (*policy.Document, error) {
	if !policy.IsPolicyHash(hash) {
		return nil, fetchErr(policy.CodePolicyHashInvalid, http.StatusBadRequest, "policy hash must be 43 base64url characters")
	}
	c.mu.Lock()
	if e, ok := c.cache[hash]; ok && c.now().Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.doc, nil
	}
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v1/wpc/"+hash, nil)
	if err != nil {
		return nil, fetchFail(CodeFetchFailed, http.StatusServiceUnavailable, "the registry request failed", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fetchFail(CodeFetchFailed, http.StatusServiceUnavailable, "the registry is unreachable", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4*policy.MaxDocumentBytes))
	if err != nil {
		return nil, fetchFail(CodeFetchFailed, http.StatusServiceUnavailable, "the registry response could not be read", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fetchErr(CodeWPCNotFound, http.StatusNotFound, "policy %s is not in the registry", hash)
	case resp.StatusCode >= 500:
		return nil, fetchErr(CodeRegistryError, http.StatusServiceUnavailable, "registry answered %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fetchErr(CodeBadResponse, http.StatusBadGateway, "registry answered %d", resp.StatusCode)
	}
	v, err := canon.Parse(body)
	if err != nil {
		return nil, fetchErr(CodeBadJSON, http.StatusBadGateway, "registry response is not JSON")
	}
	env := v.Get("envelope")
	if env == nil {
		return nil, fetchErr(CodeBadResponse, http.StatusBadGateway, "registry response has no envelope")
	}
	doc, err := policy.VerifyEnvelope(env, hash, c.verify)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.cache) >= c.max {
		oldest, at := "", c.now()
		for k, e := range c.cache {
			if e.at.Before(at) {
				oldest, at = k, e.at
			}
		}
		delete(c.cache, oldest)
	}
	c.cache[hash] = cached{doc: doc, at: c.now()}
	c.mu.Unlock()
	return doc, nil
}

// PublishResult is the registry's answer to a publish.
type PublishResult struct {
	PolicyHash string          `json:"policy_hash_b64u"`
	Existed    bool            `json:"existed"`
	Envelope   json.RawMessage `json:"envelope"`
	// Lifecycle is the supersede change and the old hash's status, when
	// the publish declared one.
	Lifecycle json.RawMessage `json:"lifecycle,omitempty"`
	Status    int             `json:"-"`
}

// Publish sends a policy document (raw JSON) with an admin bearer token.
func (c *Client) Publish(ctx context.Context, doc []byte, token string) (*PublishResult, error) {
	return c.PublishSuperseding(ctx, doc, token, "")
}

// PublishSuperseding publishes doc declaring that it supersedes the
// published policy old ("" for none): the registry retires old, and every
// running job pinned to it is refused at its next call (POLICY_RETIRED).
func (c *Client) PublishSuperseding(ctx context.Context, doc []byte, token, old string) (*PublishResult, error) {
	body := append([]byte(`{"wpc":`), bytes.TrimSpace(doc)...)
	if old != "" {
		q, _ := json.Marshal(old)
		body = append(append(body, `,"supersedes":`...), q...)
	}
	body = append(body, '}')
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+"/v1/wpc", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("registry unreachable: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4*policy.MaxDocumentBytes))
	if err != nil {
		return nil, err
	}
	var out struct {
		PublishResult
		Error *APIError `json:"error"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("registry answered %d with a body that is not JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		if out.Error != nil {
			out.Error.Status = resp.StatusCode
			return nil, out.Error
		}
		return nil, fmt.Errorf("registry answered %d", resp.StatusCode)
	}
	out.PublishResult.Status = resp.StatusCode
	return &out.PublishResult, nil
}

// ErrCode returns the stable code of a registry or verification error.
func ErrCode(err error) string {
	var ve *policy.VerifyError
	if errors.As(err, &ve) {
		return ve.Code
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}
