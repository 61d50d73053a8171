package registry

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
)

// Local is a policy source for a gateway that shares the registry's store:
// it reads the stored envelope and verifies it exactly as a remote Client
// verifies a fetched one (hash, signer allowlist, signature), so a row
// changed in the database is refused. Verified documents are immutable by
// hash and kept (up to 512).
type Local struct {
	st     Store
	verify policy.VerifyOptions

	mu    sync.Mutex
	cache map[string]*policy.Document
}

// NewLocal returns a Local source; opt is the registry signer allowlist.
func NewLocal(st Store, opt policy.VerifyOptions) *Local {
	return &Local{st: st, verify: opt, cache: map[string]*policy.Document{}}
}

// Fetch returns the verified policy with the given hash.
func (l *Local) Fetch(ctx context.Context, hash string) (*policy.Document, error) {
	if !policy.IsPolicyHash(hash) {
		return nil, fetchErr(policy.CodePolicyHashInvalid, http.StatusBadRequest, "policy hash must be 43 base64url characters")
	}
	l.mu.Lock()
	doc := l.cache[hash]
	l.mu.Unlock()
	if doc != nil {
		return doc, nil
	}
	rec, err := l.st.GetWPC(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fetchErr(CodeWPCNotFound, http.StatusNotFound, "policy %s is not in the registry", hash)
	}
	if err != nil {
		return nil, fetchFail(CodeFetchFailed, http.StatusServiceUnavailable, "the policy store is unavailable", err)
	}
	env, e := checkStored(rec)
	if e != nil {
		return nil, fetchErr(e.Code, e.Status, "%s", e.Msg)
	}
	doc, err = policy.VerifyEnvelope(&env, hash, l.verify)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if len(l.cache) >= 512 {
		clear(l.cache)
	}
	l.cache[hash] = doc
	l.mu.Unlock()
	return doc, nil
}

// FetchByID returns the one published policy with policy_id id, for
// resolving inherits. Several versions under one id are ambiguous and
// refused: a parent must be unique to mean one thing.
func (l *Local) FetchByID(ctx context.Context, id string) (*policy.Document, error) {
	var found []string
	after := ""
	for {
		page, err := l.st.ListWPCs(ctx, after, 500)
		if err != nil {
			return nil, fetchFail(CodeFetchFailed, http.StatusServiceUnavailable, "the policy store is unavailable", err)
		}
		for _, w := range page {
			if w.PolicyID == id {
				found = append(found, w.Hash)
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Hash
	}
	switch len(found) {
	case 0:
		return nil, fetchErr(CodeWPCNotFound, http.StatusNotFound, "no published policy has policy_id %q", id)
	case 1:
		return l.Fetch(ctx, found[0])
	}
	return nil, fetchErr("WPC_PARENT_AMBIGUOUS", http.StatusConflict, "%d published policies have policy_id %q; a parent must be unique", len(found), id)
}
