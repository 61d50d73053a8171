// Package tokenstate keeps a node's view of the state token verification
// depends on (issuer keys, revocations, jobs) current from the shared
// store, so that a revocation, a finished job or a retired or revoked
// issuer key takes effect at every instance sharing the store within one
// poll interval (250 ms by default), while the verification hot path never
// waits on the store. A key id the mirror does not know yet is looked up
// at once (rationed), so a new issuer key is accepted on first sight.
package tokenstate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/token"
)

// Store is what the mirror reads.
type Store interface {
	ListIssuerKeys(ctx context.Context) ([]store.IssuerKey, error)
	RevocationsSince(ctx context.Context, after int64, limit int) ([]store.Revocation, error)
	GetJob(ctx context.Context, id string) (store.Job, error)
	JobsChangedSince(ctx context.Context, after int64, limit int) ([]store.Job, error)
	PolicyChangesSince(ctx context.Context, after int64, limit int) ([]store.PolicyChange, error)
}

// Mirror implements token.State over a store.
type Mirror struct {
	st       Store
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu      sync.RWMutex
	keys    map[string]token.IssuerKey
	keyList []token.IssuerKey
	revoked map[string]string // token hash -> reason
	revSeq  int64
	jobs    map[string]token.JobInfo
	jobSeq  int64
	synced  time.Time

	// The policy lifecycle, folded from the store's log; polSynced is
	// when it last caught up. polMu makes one catch-up at a time.
	polMu     sync.Mutex
	book      *store.PolicyBook
	polSynced time.Time
	polFailed time.Time // the last failed on-demand read (under polMu)

	refreshMu sync.Mutex // one on-demand key read at a time, and:
	budget    float64    // on-demand reads allowed now
	budgetAt  time.Time  // when budget was last topped up
}

// On-demand key reads are rationed: tokens with made-up key ids cost at
// most refreshRate store queries a second (in bursts of refreshBurst);
// past that an unknown kid waits for the next poll.
const (
	refreshRate  = 10
	refreshBurst = 5
)

var (
	_ token.State      = (*Mirror)(nil)
	_ token.PolicyGate = (*Mirror)(nil)
)

// Options configure a Mirror.
type Options struct {
	Interval time.Duration // poll interval; default 250 ms
	Log      *slog.Logger
	Now      func() time.Time
}

// New loads the current state and returns a mirror; call Run to keep it
// current.
func New(ctx context.Context, st Store, opt Options) (*Mirror, error) {
	m := &Mirror{st: st, interval: opt.Interval, log: opt.Log, now: opt.Now,
		keys: map[string]token.IssuerKey{}, revoked: map[string]string{}, jobs: map[string]token.JobInfo{},
		book: store.NewPolicyBook()}
	if m.interval == 0 {
		m.interval = 250 * time.Millisecond
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if err := m.Sync(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Run polls the store until ctx ends.
func (m *Mirror) Run(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.syncRevocationsAndJobs(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "token state poll failed", slog.String("error", err.Error()))
		}
		// Keys every poll too: a revoked key, or a retirement that ends
		// sooner than planned, must reach every instance as fast as a
		// revoked token does.
		if err := m.syncKeys(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "issuer key refresh failed", slog.String("error", err.Error()))
		}
		if err := m.SyncPolicies(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "policy lifecycle poll failed", slog.String("error", err.Error()))
		}
	}
}

// errRationed: an on-demand key read was refused to protect the store.
var errRationed = errors.New("tokenstate: on-demand key reads are rationed; the next poll reads the keys")

// RefreshKeys reads the issuer keys now, within the ration
// (token.KeyRefresher).
func (m *Mirror) RefreshKeys(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	now := time.Now()
	if m.budgetAt.IsZero() {
		m.budget = refreshBurst
	} else {
		m.budget = min(refreshBurst, m.budget+now.Sub(m.budgetAt).Seconds()*refreshRate)
	}
	m.budgetAt = now
	if m.budget < 1 {
		return errRationed
	}
	m.budget--
	return m.syncKeys(ctx)
}

// Sync refreshes everything once.
func (m *Mirror) Sync(ctx context.Context) error {
	if err := m.syncKeys(ctx); err != nil {
		return err
	}
	if err := m.SyncPolicies(ctx); err != nil {
		return err
	}
	return m.syncRevocationsAndJobs(ctx)
}

func (m *Mirror) syncKeys(ctx context.Context) error {
	keys, err := m.st.ListIssuerKeys(ctx)
	if err != nil {
		return err
	}
	m.mu.RLock()
	prev := m.keys
	m.mu.RUnlock()
	byKid := make(map[string]token.IssuerKey, len(keys))
	list := make([]token.IssuerKey, 0, len(keys))
	for _, k := range keys {
		// A known key keeps its prepared form (and precomputed table).
		var key *didkey.Key
		if p, ok := prev[k.Kid]; ok && bytes.Equal(p.Key.Bytes(), k.PublicKey) {
			key = p.Key
		} else {
			key = didkey.NewKey(k.PublicKey)
			key.Precompute()
		}
		ik := token.IssuerKey{Kid: k.Kid, Key: key, NotAfter: k.NotAfter}
		byKid[k.Kid] = ik
		list = append(list, ik)
	}
	m.mu.Lock()
	m.keys, m.keyList = byKid, list
	m.mu.Unlock()
	return nil
}

func (m *Mirror) syncRevocationsAndJobs(ctx context.Context) error {
	m.mu.RLock()
	revSeq, jobSeq := m.revSeq, m.jobSeq
	m.mu.RUnlock()
	for {
		revs, err := m.st.RevocationsSince(ctx, revSeq, 1000)
		if err != nil {
			return err
		}
		if len(revs) == 0 {
			break
		}
		m.mu.Lock()
		for _, r := range revs {
			m.revoked[r.TokenHash] = r.Reason
			revSeq = r.Seq
		}
		m.revSeq = revSeq
		m.mu.Unlock()
		if len(revs) < 1000 {
			break
		}
	}
	for {
		jobs, err := m.st.JobsChangedSince(ctx, jobSeq, 1000)
		if err != nil {
			return err
		}
		if len(jobs) == 0 {
			break
		}
		m.mu.Lock()
		for _, j := range jobs {
			m.jobs[j.ID] = info(j)
			jobSeq = j.Seq
		}
		m.jobSeq = jobSeq
		m.mu.Unlock()
		if len(jobs) < 1000 {
			break
		}
	}
	m.mu.Lock()
	m.synced = m.now()
	m.mu.Unlock()
	return nil
}

func info(j store.Job) token.JobInfo {
	return token.JobInfo{ID: j.ID, ScopeHash: j.ScopeHash, Open: j.Status == store.JobOpen, Finishing: j.Status == store.JobFinishing, PolicyHash: j.PolicyHash}
}

// IssuerKey returns an issuer key by kid.
func (m *Mirror) IssuerKey(kid string) (token.IssuerKey, bool) {
	m.mu.RLock()
	k, ok := m.keys[kid]
	m.mu.RUnlock()
	return k, ok
}

// IssuerKeys lists the issuer keys.
func (m *Mirror) IssuerKeys() []token.IssuerKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.keyList
}

// Revoked reports a token's revocation.
func (m *Mirror) Revoked(tokenHash string) (string, bool) {
	m.mu.RLock()
	r, ok := m.revoked[tokenHash]
	m.mu.RUnlock()
	return r, ok
}

// Job returns a job, reading the store when the mirror has not seen it
// yet (a job created on another instance a moment ago).
func (m *Mirror) Job(ctx context.Context, id string) (token.JobInfo, bool, error) {
	m.mu.RLock()
	j, ok := m.jobs[id]
	m.mu.RUnlock()
	if ok {
		return j, true, nil
	}
	sj, err := m.st.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return token.JobInfo{}, false, nil
	}
	if err != nil {
		return token.JobInfo{}, false, err
	}
	ji := info(sj)
	m.mu.Lock()
	if _, seen := m.jobs[id]; !seen {
		m.jobs[id] = ji
	}
	m.mu.Unlock()
	return ji, true, nil
}

// NoteRevoked records a revocation made by this node at once, ahead of the
// next poll.
func (m *Mirror) NoteRevoked(tokenHash, reason string) {
	m.mu.Lock()
	if _, ok := m.revoked[tokenHash]; !ok {
		m.revoked[tokenHash] = reason
	}
	m.mu.Unlock()
}

// NoteJob records a job state change made by this node at once.
func (m *Mirror) NoteJob(j store.Job) {
	m.mu.Lock()
	m.jobs[j.ID] = info(j)
	m.mu.Unlock()
}

// LastSync returns when the mirror last caught up with the store.
func (m *Mirror) LastSync() time.Time {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.synced
}

// PolicyStale is how old the mirrored policy lifecycle may be before a
// check reads the store itself: a retirement takes effect at every
// instance within one second even when polls fall behind, and a check
// that cannot read the state then refuses (fail closed).
const PolicyStale = 750 * time.Millisecond

// SyncPolicies folds the lifecycle changes logged since the last catch-up.
func (m *Mirror) SyncPolicies(ctx context.Context) error {
	m.polMu.Lock()
	defer m.polMu.Unlock()
	return m.syncPoliciesLocked(ctx)
}

func (m *Mirror) syncPoliciesLocked(ctx context.Context) error {
	m.mu.RLock()
	after := m.book.Seq
	m.mu.RUnlock()
	for {
		page, err := m.st.PolicyChangesSince(ctx, after, 1000)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			m.mu.Lock()
			for _, c := range page {
				m.book.Apply(c)
			}
			after = m.book.Seq
			m.mu.Unlock()
		}
		if len(page) < 1000 {
			break
		}
	}
	m.mu.Lock()
	m.polSynced = m.now()
	m.mu.Unlock()
	return nil
}

// fresh makes sure the mirrored lifecycle is at most maxAge old, reading
// the store when it is older.
func (m *Mirror) fresh(ctx context.Context, maxAge time.Duration) error {
	m.mu.RLock()
	synced := m.polSynced
	m.mu.RUnlock()
	if maxAge > 0 && m.now().Sub(synced) <= maxAge {
		return nil
	}
	m.polMu.Lock()
	defer m.polMu.Unlock()
	m.mu.RLock()
	synced = m.polSynced
	m.mu.RUnlock()
	if maxAge > 0 && m.now().Sub(synced) <= maxAge {
		return nil // another check caught up meanwhile
	}
	// While the store fails, checks refuse without each reading it again
	// (at most one read per policyRetry).
	if maxAge > 0 && !m.polFailed.IsZero() && m.now().Sub(m.polFailed) < policyRetry {
		return errPolicyUnreadable
	}
	if err := m.syncPoliciesLocked(ctx); err != nil {
		m.polFailed = m.now()
		return err
	}
	m.polFailed = time.Time{}
	return nil
}

// policyRetry spaces on-demand lifecycle reads while the store fails.
const policyRetry = 100 * time.Millisecond

var errPolicyUnreadable = errors.New("tokenstate: the policy lifecycle could not be read a moment ago")

// AdmitPolicy implements token.PolicyGate: a job pinned to hash may act
// unless the hash is retired (or superseded) or a freeze leaves it out.
func (m *Mirror) AdmitPolicy(ctx context.Context, hash string) error {
	if err := m.fresh(ctx, PolicyStale); err != nil {
		return token.Errorf(token.CodePolicyStateUnavailable, "the policy lifecycle state cannot be read")
	}
	return m.admit(hash, false)
}

// AdmitStart checks, on state read from the store now, that a new job may
// be pinned to hash: not retired, inside any freeze, and approved when
// approval is required.
func (m *Mirror) AdmitStart(ctx context.Context, hash string, requireApproval bool) error {
	if err := m.fresh(ctx, 0); err != nil {
		return token.Errorf(token.CodePolicyStateUnavailable, "the policy lifecycle state cannot be read")
	}
	return m.admit(hash, requireApproval)
}

func (m *Mirror) admit(hash string, requireApproval bool) error {
	m.mu.RLock()
	st := m.book.Status(hash)
	fr := m.book.Freeze
	m.mu.RUnlock()
	if st.Status == store.PolicyRetired {
		if st.SupersededBy != "" {
			return token.Errorf(token.CodePolicyRetired, "policy %s was superseded by %s", hash, st.SupersededBy)
		}
		return token.Errorf(token.CodePolicyRetired, "policy %s was retired", hash)
	}
	if !fr.Allows(hash) {
		return token.Errorf(token.CodePolicyNotInFreeze, "the deployment is frozen and policy %s is not among the allowed hashes", hash)
	}
	if requireApproval && st.Status != store.PolicyApproved {
		return token.Errorf(token.CodePolicyNotApproved, "policy %s is not approved (this deployment requires approval: clawea policy approve)", hash)
	}
	return nil
}

// PolicyStatus returns the mirrored lifecycle's view of hash and the
// freeze.
func (m *Mirror) PolicyStatus(hash string) (store.PolicyStatus, store.Freeze) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.book.Status(hash), m.book.Freeze
}
