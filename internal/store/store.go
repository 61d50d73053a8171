// Package store defines clawea's durable state, one small interface per
// consumer, and opens a back end by DSN. Back ends register themselves:
// embedded SQLite (the default, a file under the data directory) and
// PostgreSQL (postgres:// DSNs, for several instances sharing state). Both
// pass the conformance suite in storetest. Nothing here falls back to an
// in-memory map that would let a revocation or replay check pass silently.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a write contradicts an existing record.
var ErrConflict = errors.New("store: conflict")

// WPC is a published work policy contract.
type WPC struct {
	Hash          string // policy_hash_b64u, the address
	PolicyID      string
	PolicyVersion string
	IssuerDID     string
	Payload       []byte // the policy as published (compact JSON)
	Envelope      []byte // the registry-signed envelope (compact JSON)
	CreatedAt     time.Time
}

// WPCs stores policies by hash.
type WPCs interface {
	// PutWPC stores w unless a policy with its hash exists; it returns the
	// stored record and whether it existed already (idempotent publish).
	PutWPC(ctx context.Context, w WPC) (stored WPC, existed bool, err error)
	// GetWPC returns the policy with hash, or ErrNotFound.
	GetWPC(ctx context.Context, hash string) (WPC, error)
	// ListWPCs returns up to limit policies ordered by hash, after the
	// given hash (exclusive; "" starts at the beginning).
	ListWPCs(ctx context.Context, after string, limit int) ([]WPC, error)
}

// Store is everything a back end provides.
type Store interface {
	WPCs
	// Backend names the back end ("sqlite" or "postgres").
	Backend() string
	// Close releases the back end.
	Close() error
}

// Opener opens a back end for a DSN.
type Opener func(ctx context.Context, dsn string) (Store, error)

var (
	mu      sync.Mutex
	openers = map[string]Opener{}
)

// Register makes a back end available for DSNs starting with prefix (such
// as "postgres://" or "sqlite:"). It panics on a duplicate prefix.
func Register(prefix string, open Opener) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := openers[prefix]; dup {
		panic("store: duplicate back end " + prefix)
	}
	openers[prefix] = open
}

// Open opens the back end named by dsn: "postgres://…" or
// "postgresql://…" for PostgreSQL, "sqlite:PATH" or a plain file path for
// SQLite.
func Open(ctx context.Context, dsn string) (Store, error) {
	mu.Lock()
	prefixes := make([]string, 0, len(openers))
	for p := range openers {
		prefixes = append(prefixes, p)
	}
	mu.Unlock()
	sort.Slice(prefixes, func(i, j int) bool { return len(prefixes[i]) > len(prefixes[j]) })
	for _, p := range prefixes {
		if strings.HasPrefix(dsn, p) {
			mu.Lock()
			open := openers[p]
			mu.Unlock()
			return open(ctx, dsn)
		}
	}
	if strings.Contains(dsn, "://") {
		return nil, fmt.Errorf("store: unsupported DSN scheme in %q (built without that back end?)", redact(dsn))
	}
	mu.Lock()
	open := openers["sqlite:"]
	mu.Unlock()
	if open == nil {
		return nil, errors.New("store: built without the SQLite back end")
	}
	return open(ctx, "sqlite:"+dsn)
}

// redact hides a password in a DSN for messages.
func redact(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	creds := dsn[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return dsn[:scheme+3] + creds[:i] + ":***" + dsn[at:]
	}
	return dsn
}

// Redact hides the password of a DSN, for logs and errors.
func Redact(dsn string) string { return redact(dsn) }
