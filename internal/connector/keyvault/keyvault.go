// Package keyvault is the tool gateway's Azure Key Vault connector: a
// narrow interface over secrets (get, set, soft delete, recover, purge,
// list names, list versions) and its implementation on the official
// azsecrets client, with azidentity credentials in production and the
// built-in dev vault (package devvault) for the demo and tests.
//
// Secret paths use '/' between segments (agent/app/db-password) so that
// policies can grant folders; Key Vault names allow only letters, digits
// and '-', so a path is stored as the name with "--" for each '/'
// (agent--app--db-password). See docs/policy.md.
package keyvault

import (
	"context"
	"errors"
	"time"

	"github.com/clawea/clawea/internal/connector"
)

// Secret is a secret version with its value.
type Secret struct {
	Vault       string
	Path        string // agent/app/db-password
	Version     string
	Value       string
	ContentType string
	Enabled     bool
	Created     time.Time
	Updated     time.Time
}

// Info describes a secret or a version without its value.
type Info struct {
	Path        string
	Version     string // empty when listing names
	ContentType string
	Enabled     bool
	Created     time.Time
	Updated     time.Time
}

// Deleted describes a soft-deleted secret.
type Deleted struct {
	Path               string
	DeletedAt          time.Time
	ScheduledPurgeDate time.Time
	RecoveryID         string
}

// Client is one vault.
type Client interface {
	// Vault is the vault's name (as in kv://<vault>/...).
	Vault() string
	Get(ctx context.Context, path, version string) (Secret, error)
	Set(ctx context.Context, path, value, contentType string) (Secret, error)
	Delete(ctx context.Context, path string) (Deleted, error)
	Recover(ctx context.Context, path string) (Info, error)
	Purge(ctx context.Context, path string) error
	ListNames(ctx context.Context) ([]Info, error)
	ListVersions(ctx context.Context, path string) ([]Info, error)
}

// Errors a Client returns (wrapped with detail). Every failure of the
// service or of the way to it wraps exactly one of them, except failures
// the service reports with a status outside these classes (HTTP 500, an
// unexpected 3xx) and errors of the client itself. Each is of the
// connector failure class that gives its code (connector.Err*).
var (
	ErrNotFound  = connector.Sentinel("keyvault: not found", connector.ErrNotFound)       // HTTP 404: SecretNotFound, DeletedSecretNotFound
	ErrConflict  = connector.Sentinel("keyvault: conflict", connector.ErrConflict)        // HTTP 409: e.g. a deleted secret of that name exists
	ErrForbidden = connector.Sentinel("keyvault: forbidden", connector.ErrForbidden)      // HTTP 401, 403: the gateway's identity lacks access
	ErrInvalid   = connector.Sentinel("keyvault: invalid argument", connector.ErrInvalid) // HTTP 400, 413, or refused before the call
	// ErrThrottled: HTTP 429, after the SDK's retries. The error may carry
	// the service's Retry-After (see RetryAfter).
	ErrThrottled = connector.Sentinel("keyvault: throttled", connector.ErrThrottled)
	// ErrUnreachable: the vault could not be reached or did not answer
	// itself: a transport failure (connection refused or reset, DNS, TLS)
	// or HTTP 502, 503 or 504 from the front end, after the SDK's retries.
	ErrUnreachable = connector.Sentinel("keyvault: vault unreachable", connector.ErrUnreachable)
	// ErrTimeout: a deadline passed inside the client (the call's context
	// or a transport timeout).
	ErrTimeout = connector.Sentinel("keyvault: timed out", connector.ErrTimeout)
)

// RetryAfter returns how long the service asked the caller to wait, when
// err carries a Retry-After it sent (with ErrThrottled or ErrUnreachable).
func RetryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter(), true
	}
	return 0, false
}

// ToName turns a secret path into a Key Vault secret name; FromName is its
// inverse. Empty segments, and characters other than letters, digits and
// '-' in a segment, are refused; so is a name over 127 characters.
func ToName(path string) (string, error) {
	if path == "" {
		return "", ErrInvalid
	}
	name := make([]byte, 0, len(path)+8)
	seg := 0
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '/':
			if seg == 0 {
				return "", ErrInvalid
			}
			name = append(name, '-', '-')
			seg = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			name = append(name, c)
			seg++
		case c == '-':
			// A '-' next to another '-' or a segment edge would be ambiguous
			// with the "--" separator.
			if seg == 0 || i+1 >= len(path) || path[i+1] == '-' || path[i+1] == '/' {
				return "", ErrInvalid
			}
			name = append(name, c)
			seg++
		default:
			return "", ErrInvalid
		}
	}
	if seg == 0 || len(name) > 127 {
		return "", ErrInvalid
	}
	return string(name), nil
}

// FromName turns a Key Vault secret name back into a path.
func FromName(name string) string {
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		if name[i] == '-' && i+1 < len(name) && name[i+1] == '-' {
			out = append(out, '/')
			i++
			continue
		}
		out = append(out, name[i])
	}
	return string(out)
}
