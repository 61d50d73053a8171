package keyvault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// MaxValueBytes is the largest secret value Key Vault stores (25 KiB);
// Set refuses larger values with ErrInvalid before calling the service.
const MaxValueBytes = 25 * 1024

// DefaultMaxListEntries caps ListNames and ListVersions.
const DefaultMaxListEntries = 10000

// AzureOptions tune NewAzure. The zero value suits production.
type AzureOptions struct {
	// Transport sends the HTTP requests; nil uses the SDK's default. An
	// *http.Client works, e.g. devvault's Server.Client().
	Transport policy.Transporter
	// DisableChallengeResourceVerification skips the check that the auth
	// challenge's resource is a parent domain of the vault host. Needed for
	// the dev vault (127.0.0.1); keep it false in production.
	DisableChallengeResourceVerification bool
	// Retry is passed to the SDK (zero: 3 retries with exponential
	// back-off; MaxRetries -1: no retries).
	Retry policy.RetryOptions
	// MaxListEntries caps ListNames and ListVersions (default
	// DefaultMaxListEntries); beyond it they fail instead of paging on.
	MaxListEntries int
}

// Azure is a Client on the azsecrets SDK.
type Azure struct {
	vault   string
	client  *azsecrets.Client
	maxList int
}

var _ Client = (*Azure)(nil)

// NewAzure returns a Client for the vault at vaultURL (https://<name>.vault.azure.net,
// or the dev vault's URL), known in kv:// URIs as vaultName.
func NewAzure(vaultName, vaultURL string, cred azcore.TokenCredential, opt AzureOptions) (*Azure, error) {
	vaultName, err := CanonicalVault(vaultName)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(vaultURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("%w: vault URL %q must be https://host[:port]", ErrInvalid, vaultURL)
	}
	if cred == nil {
		return nil, fmt.Errorf("%w: nil credential", ErrInvalid)
	}
	if opt.MaxListEntries < 0 {
		return nil, fmt.Errorf("%w: negative MaxListEntries", ErrInvalid)
	}
	maxList := opt.MaxListEntries
	if maxList == 0 {
		maxList = DefaultMaxListEntries
	}
	c, err := azsecrets.NewClient("https://"+u.Host, cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: opt.Transport,
			Retry:     opt.Retry,
		},
		DisableChallengeResourceVerification: opt.DisableChallengeResourceVerification,
	})
	if err != nil {
		return nil, fmt.Errorf("keyvault: creating client for %s: %w", vaultName, err)
	}
	return &Azure{vault: vaultName, client: c, maxList: maxList}, nil
}

// Vault is the vault's name.
func (a *Azure) Vault() string { return a.vault }

// Get returns a version of a secret; version "" is the latest.
func (a *Azure) Get(ctx context.Context, path, version string) (s Secret, err error) {
	defer guard("get", path, &err)
	path, name, err := a.name("get", path)
	if err != nil {
		return Secret{}, err
	}
	if !validVersion(version) {
		return Secret{}, fmt.Errorf("%w: get %s: malformed version %q", ErrInvalid, path, clip(version))
	}
	resp, err := a.client.GetSecret(ctx, name, version, nil)
	if err != nil {
		return Secret{}, mapError("get", path, err, "")
	}
	return a.secret(path, resp.Secret), nil
}

// Set stores value as a new version of the secret.
func (a *Azure) Set(ctx context.Context, path, value, contentType string) (s Secret, err error) {
	defer guard("set", path, &err)
	path, name, err := a.name("set", path)
	if err != nil {
		return Secret{}, err
	}
	if len(value) > MaxValueBytes {
		return Secret{}, fmt.Errorf("%w: set %s: value is %d bytes, over the %d-byte limit", ErrInvalid, path, len(value), MaxValueBytes)
	}
	p := azsecrets.SetSecretParameters{Value: &value}
	if contentType != "" {
		p.ContentType = &contentType
	}
	resp, err := a.client.SetSecret(ctx, name, p, nil)
	if err != nil {
		return Secret{}, mapError("set", path, err, value)
	}
	out := a.secret(path, resp.Secret)
	if resp.Value == nil { // the service echoes the value; be safe if not
		out.Value = value
	}
	return out, nil
}

// Delete soft-deletes every version of the secret. On the real service the
// deletion completes asynchronously: a Purge right after may get ErrConflict
// for a few seconds.
func (a *Azure) Delete(ctx context.Context, path string) (d Deleted, err error) {
	defer guard("delete", path, &err)
	path, name, err := a.name("delete", path)
	if err != nil {
		return Deleted{}, err
	}
	resp, err := a.client.DeleteSecret(ctx, name, nil)
	if err != nil {
		return Deleted{}, mapError("delete", path, err, "")
	}
	d = Deleted{Path: path, DeletedAt: deref(resp.DeletedDate), ScheduledPurgeDate: deref(resp.ScheduledPurgeDate)}
	if resp.RecoveryID != nil {
		d.RecoveryID = *resp.RecoveryID
	}
	return d, nil
}

// Recover undeletes a soft-deleted secret (all versions) and describes its
// latest version. On the real service recovery completes asynchronously.
func (a *Azure) Recover(ctx context.Context, path string) (i Info, err error) {
	defer guard("recover", path, &err)
	path, name, err := a.name("recover", path)
	if err != nil {
		return Info{}, err
	}
	resp, err := a.client.RecoverDeletedSecret(ctx, name, nil)
	if err != nil {
		return Info{}, mapError("recover", path, err, "")
	}
	_, ver := parseID(resp.ID)
	return info(path, ver, resp.ContentType, resp.Attributes), nil
}

// Purge permanently removes a soft-deleted secret.
func (a *Azure) Purge(ctx context.Context, path string) (err error) {
	defer guard("purge", path, &err)
	path, name, err := a.name("purge", path)
	if err != nil {
		return err
	}
	if _, err := a.client.PurgeDeletedSecret(ctx, name, nil); err != nil {
		return mapError("purge", path, err, "")
	}
	return nil
}

// ListNames lists the vault's live secrets, sorted by path. Names that are
// not of the form ToName produces (e.g. "a---b") are left out: no path
// reaches them.
func (a *Azure) ListNames(ctx context.Context) (out []Info, err error) {
	defer guard("list", "", &err)
	pager := a.client.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, mapError("list", "", err, "")
		}
		for _, p := range page.Value {
			if p == nil {
				continue
			}
			name, _ := parseID(p.ID)
			path, ok := pathOf(name)
			if !ok {
				continue
			}
			if len(out) >= a.maxList {
				return nil, fmt.Errorf("keyvault: list %s: more than %d secrets; refusing to page further", a.vault, a.maxList)
			}
			out = append(out, info(path, "", p.ContentType, p.Attributes))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// ListVersions lists the versions of a live secret, oldest first. A secret
// without versions does not exist: ErrNotFound.
func (a *Azure) ListVersions(ctx context.Context, path string) (out []Info, err error) {
	defer guard("versions", path, &err)
	path, name, err := a.name("versions", path)
	if err != nil {
		return nil, err
	}
	pager := a.client.NewListSecretPropertiesVersionsPager(name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, mapError("versions", path, err, "")
		}
		for _, p := range page.Value {
			if p == nil {
				continue
			}
			if len(out) >= a.maxList {
				return nil, fmt.Errorf("keyvault: versions %s: more than %d versions; refusing to page further", path, a.maxList)
			}
			_, ver := parseID(p.ID)
			out = append(out, info(path, ver, p.ContentType, p.Attributes))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: versions %s: no such secret", ErrNotFound, path)
	}
	// Oldest first; versions created in the same second keep the
	// service's order.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// name returns a path's canonical form (CanonicalSecretPath) and its Key
// Vault name, wrapping ErrInvalid with the operation.
func (a *Azure) name(op, path string) (string, string, error) {
	canonical, err := CanonicalSecretPath(path)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s: malformed secret path %q", ErrInvalid, op, clip(path))
	}
	name, _ := ToName(canonical)
	return canonical, name, nil
}

func (a *Azure) secret(path string, s azsecrets.Secret) Secret {
	_, ver := parseID(s.ID)
	i := info(path, ver, s.ContentType, s.Attributes)
	out := Secret{Vault: a.vault, Path: path, Version: ver, ContentType: i.ContentType,
		Enabled: i.Enabled, Created: i.Created, Updated: i.Updated}
	if s.Value != nil {
		out.Value = *s.Value
	}
	return out
}

func info(path, ver string, contentType *string, attr *azsecrets.SecretAttributes) Info {
	i := Info{Path: path, Version: ver, Enabled: true}
	if contentType != nil {
		i.ContentType = *contentType
	}
	if attr != nil {
		if attr.Enabled != nil {
			i.Enabled = *attr.Enabled
		}
		i.Created, i.Updated = deref(attr.Created), deref(attr.Updated)
	}
	return i
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// parseID splits https://<host>/secrets/<name>[/<version>] without the
// SDK's ID.Name, which dereferences nil on odd ids.
func parseID(id *azsecrets.ID) (name, version string) {
	if id == nil {
		return "", ""
	}
	u, err := url.Parse(string(*id))
	if err != nil {
		return "", ""
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) >= 2 {
		name = segs[1]
	}
	if len(segs) >= 3 {
		version = segs[2]
	}
	return name, version
}

// pathOf maps a listed name back to its canonical path, refusing names
// that do not round-trip (compared without regard to case, as Key Vault
// compares names).
func pathOf(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	path, err := CanonicalSecretPath(FromName(name))
	if err != nil {
		return "", false
	}
	if back, err := ToName(path); err != nil || back != lowerASCII(name) {
		return "", false
	}
	return path, true
}

// validVersion accepts "" (latest) or up to 64 letters and digits; anything
// else could be cleaned into another URL path by the SDK ("..").
func validVersion(v string) bool {
	if len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}

// mapError turns an SDK error into one wrapping the sentinel of its class
// (see the Err* variables): by HTTP status for an answer of the service
// (404 ErrNotFound, 409 ErrConflict, 401/403 ErrForbidden, 400/413
// ErrInvalid, 429 ErrThrottled, 502/503/504 ErrUnreachable, 408
// ErrTimeout), by the Go error otherwise (a deadline ErrTimeout, a
// transport failure ErrUnreachable, a refused credential ErrForbidden). A
// caller's cancellation keeps context.Canceled and gets no class. The
// message carries the operation, path, status, service error code and
// (shortened) service message, never the response body as a whole or the
// request's secret value.
func mapError(op, path string, err error, value string) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		kind := transportClass(err)
		if value != "" && strings.Contains(err.Error(), value) {
			// The chain is dropped with the value; the class is kept.
			msg := redact(err.Error(), value)
			switch {
			case kind != nil:
				return fmt.Errorf("%w: %s %s: %s", kind, op, path, msg)
			case errors.Is(err, context.Canceled):
				return fmt.Errorf("keyvault: %s %s: %s: %w", op, path, msg, context.Canceled)
			}
			return fmt.Errorf("keyvault: %s %s: %s", op, path, msg)
		}
		if kind != nil {
			return fmt.Errorf("%w: %s %s: %w", kind, op, path, err)
		}
		return fmt.Errorf("keyvault: %s %s: %w", op, path, err)
	}
	var kind error
	switch re.StatusCode {
	case http.StatusNotFound:
		kind = ErrNotFound
	case http.StatusConflict:
		kind = ErrConflict
	case http.StatusUnauthorized, http.StatusForbidden:
		kind = ErrForbidden
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		kind = ErrInvalid
	case http.StatusTooManyRequests:
		kind = ErrThrottled
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		kind = ErrUnreachable
	case http.StatusRequestTimeout:
		kind = ErrTimeout
	}
	detail := fmt.Sprintf("%s %s: HTTP %d", op, path, re.StatusCode)
	if re.ErrorCode != "" {
		detail += " " + clip(re.ErrorCode)
	}
	if msg := serviceMessage(re.RawResponse); msg != "" {
		detail += ": " + clip(redact(msg, value))
	}
	if kind == nil {
		return errors.New("keyvault: " + detail)
	}
	out := fmt.Errorf("%w: %s", kind, detail)
	if kind == ErrThrottled || kind == ErrUnreachable {
		if re.RawResponse != nil {
			if d := parseRetryAfter(re.RawResponse.Header, time.Now()); d > 0 {
				return &retryAfterError{err: out, after: d}
			}
		}
	}
	return out
}

// transportClass classes an error that is not an answer of the service:
// ErrTimeout for a deadline, ErrForbidden for a credential the identity
// provider refused, ErrUnreachable for a failure to reach the vault; nil
// for anything else (a cancellation included).
func transportClass(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) {
		return ErrForbidden
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ErrTimeout
	}
	var (
		urlErr    *url.Error
		opErr     *net.OpError
		dnsErr    *net.DNSError
		certErr   *tls.CertificateVerificationError
		recErr    tls.RecordHeaderError
		alertErr  tls.AlertError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &urlErr), errors.As(err, &opErr), errors.As(err, &dnsErr),
		errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alertErr),
		errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &invalid),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ErrUnreachable
	}
	return nil
}

// MaxRetryAfter caps the wait a Retry-After can ask for.
const MaxRetryAfter = time.Hour

// parseRetryAfter reads how long the service asks a client to wait:
// retry-after-ms or x-ms-retry-after-ms (milliseconds), or Retry-After
// (whole seconds or an HTTP date). It returns 0 when none is usable, and
// at most MaxRetryAfter.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				return min(time.Duration(min(n, int64(MaxRetryAfter/time.Millisecond)))*time.Millisecond, MaxRetryAfter)
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// retryAfterError is a classed error with the wait the service asked for.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

// serviceMessage extracts error.message from a Key Vault error body.
func serviceMessage(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	body, err := runtime.Payload(resp)
	if err != nil || len(body) == 0 {
		return ""
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return strings.ToValidUTF8(e.Error.Message, "?")
}

func redact(msg, value string) string {
	if value != "" && strings.Contains(msg, value) {
		return strings.ReplaceAll(msg, value, "[redacted]")
	}
	return msg
}

// guard turns a panic inside the SDK (keyvault/internal v1.2.0 panics on
// an auth challenge whose authorization URL has no path) into an error.
func guard(op, path string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("keyvault: %s %s: the Azure SDK failed on the server's response: %v", op, path, r)
	}
}
