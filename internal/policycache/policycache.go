// Package policycache gives the gateways compiled policies: fetched and
// verified by hash through a source (the registry's store or a remote
// registry), compiled once, kept by hash (a hash names one document
// forever). Fetch and compile failures carry the policy error codes.
package policycache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/clawea/clawea/policy"
)

// Source fetches a verified policy by hash.
type Source interface {
	Fetch(ctx context.Context, hash string) (*policy.Document, error)
}

// ParentSource also resolves inherits parents by policy id.
type ParentSource interface {
	FetchByID(ctx context.Context, id string) (*policy.Document, error)
}

// CodeInvalid is the code of a policy that verified but cannot be compiled
// (an unresolvable parent, say).
const CodeInvalid = "POLICY_INVALID"

// Error is a fetch or compile failure.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// Entry is a compiled policy.
type Entry struct {
	Doc    *policy.Document
	Policy *policy.Policy
	// Extra lets a gateway keep what it derives from the policy once.
	Extra any
}

// Cache keeps compiled policies (at most 512; then it starts over).
type Cache struct {
	src Source
	// Prepare, when set, fills Entry.Extra when a policy is compiled; an
	// error refuses the policy.
	Prepare func(*Entry) error

	mu sync.Mutex
	m  map[string]*Entry
}

// New returns a cache over src.
func New(src Source) *Cache { return &Cache{src: src, m: map[string]*Entry{}} }

// Get returns the compiled policy with the given hash.
func (c *Cache) Get(ctx context.Context, hash string) (*Entry, *Error) {
	c.mu.Lock()
	e := c.m[hash]
	c.mu.Unlock()
	if e != nil {
		return e, nil
	}
	doc, err := c.src.Fetch(ctx, hash)
	if err != nil {
		var ve *policy.VerifyError
		if errors.As(err, &ve) {
			return nil, &Error{Status: ve.Status, Code: ve.Code, Msg: ve.Msg}
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "WPC_REGISTRY_FETCH_FAILED", Msg: err.Error()}
	}
	var resolve policy.Resolver
	if parents, ok := c.src.(ParentSource); ok {
		resolve = func(id string) (*policy.Document, error) { return parents.FetchByID(ctx, id) }
	}
	pol, err := policy.Compile(doc, resolve)
	if err != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Code: CodeInvalid, Msg: fmt.Sprintf("policy %s cannot be compiled: %v", hash, err)}
	}
	e = &Entry{Doc: doc, Policy: pol}
	if c.Prepare != nil {
		if err := c.Prepare(e); err != nil {
			return nil, &Error{Status: http.StatusInternalServerError, Code: CodeInvalid, Msg: fmt.Sprintf("policy %s: %v", hash, err)}
		}
	}
	c.mu.Lock()
	if len(c.m) >= 512 {
		clear(c.m)
	}
	c.m[hash] = e
	c.mu.Unlock()
	return e, nil
}
