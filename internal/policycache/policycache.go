// Package policycache gives the gateways compiled policies: fetched and
// verified by hash through a source (the registry's store or a remote
// registry), compiled once, kept by hash (a hash names one document
// forever). Fetch and compile failures carry the policy error codes.
package policycache

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/clawea/clawea/internal/httpapi"
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

// Error is a fetch or compile failure: httpapi's one error type (the
// underlying failure is its private cause).
type Error = httpapi.Error

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
			return nil, httpapi.New(ve.Status, ve.Code, ve.Msg).Wrap(err)
		}
		return nil, httpapi.New(http.StatusServiceUnavailable, "WPC_REGISTRY_FETCH_FAILED", "the policy could not be fetched").Wrap(err)
	}
	var resolve policy.Resolver
	if parents, ok := c.src.(ParentSource); ok {
		resolve = func(id string) (*policy.Document, error) { return parents.FetchByID(ctx, id) }
	}
	pol, err := policy.Compile(doc, resolve)
	if err != nil {
		return nil, compileError(hash, "cannot be compiled", err)
	}
	e = &Entry{Doc: doc, Policy: pol}
	if c.Prepare != nil {
		if err := c.Prepare(e); err != nil {
			return nil, compileError(hash, "is not usable here", err)
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

// compileError refuses a policy that verified but cannot be used. A
// policy's own diagnostics (policy.Error, policy.VerifyError: public
// messages about the document) are shown; any other failure stays private.
func compileError(hash, what string, err error) *Error {
	var pe *policy.Error
	var ve *policy.VerifyError
	switch {
	case errors.As(err, &pe):
		return httpapi.Errorf(http.StatusInternalServerError, CodeInvalid, "policy %s %s: %s", hash, what, pe.Msg).Wrap(err)
	case errors.As(err, &ve):
		return httpapi.Errorf(http.StatusInternalServerError, CodeInvalid, "policy %s %s: %s", hash, what, ve.Msg).Wrap(err)
	}
	return httpapi.Errorf(http.StatusInternalServerError, CodeInvalid, "policy %s %s", hash, what).Wrap(err)
}
