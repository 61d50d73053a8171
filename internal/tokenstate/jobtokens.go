package tokenstate

import (
	"context"
	"errors"
	"sync"

	"github.com/clawea/clawea/internal/store"
)

// issuedTokens is the store's record of minted tokens.
type issuedTokens interface {
	GetIssuedToken(ctx context.Context, tokenHash string) (store.IssuedToken, error)
}

// jobTokens remembers the scope hash of tokens issued for a job besides
// its own (its write tokens); a record never changes once written.
var jobTokens struct {
	sync.Mutex
	m map[string]store.IssuedToken
}

// JobToken implements token.JobTokens: the scope hash the issuer recorded
// for the token with this hash when it was minted for job jobID. A store
// that keeps no such records answers no.
func (m *Mirror) JobToken(ctx context.Context, jobID, tokenHash string) (string, bool, error) {
	its, ok := m.st.(issuedTokens)
	if !ok {
		return "", false, nil
	}
	jobTokens.Lock()
	rec, seen := jobTokens.m[tokenHash]
	jobTokens.Unlock()
	if !seen {
		var err error
		rec, err = its.GetIssuedToken(ctx, tokenHash)
		if errors.Is(err, store.ErrNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		jobTokens.Lock()
		if jobTokens.m == nil || len(jobTokens.m) >= 4096 {
			jobTokens.m = map[string]store.IssuedToken{}
		}
		jobTokens.m[tokenHash] = rec
		jobTokens.Unlock()
	}
	if rec.JobID != jobID {
		return "", false, nil
	}
	return rec.ScopeHash, true, nil
}
