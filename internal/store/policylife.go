package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// Policy lifecycle actions (the log's Action values).
const (
	PolicyApprove   = "approve"
	PolicyRetire    = "retire"
	PolicySupersede = "supersede" // a publish that declared it supersedes PolicyHash
	PolicyFreeze    = "freeze"
	PolicyUnfreeze  = "unfreeze"
)

// Policy lifecycle states of one hash.
const (
	PolicyPublished = "published"
	PolicyApproved  = "approved"
	PolicyRetired   = "retired"
)

// PolicyChange is one entry of the policy lifecycle log: who changed what,
// with the operator's signed statement when the change was signed.
type PolicyChange struct {
	Seq        int64
	Action     string
	PolicyHash string   // approve, retire, supersede (the superseded hash)
	Hashes     []string // freeze: the hashes allowed; supersede: the new hash
	Actor      string   // the operator's did:key, or "admin-token"
	Reason     string
	Statement  []byte // the signed statement (JCS JSON); empty when unsigned
	Signature  string // base64url Ed25519 signature over Statement by Actor
	At         time.Time
}

// PolicyLifecycle is the append-only policy lifecycle log, shared by every
// instance on the store. Its state is the fold of the log (Fold).
type PolicyLifecycle interface {
	// AddPolicyChange appends c and returns it with its Seq. ErrConflict
	// when a change with the same non-empty Statement is logged already
	// (a replayed signed statement).
	AddPolicyChange(ctx context.Context, c PolicyChange) (PolicyChange, error)
	// PolicyChangesSince lists changes with Seq > after, in Seq order.
	PolicyChangesSince(ctx context.Context, after int64, limit int) ([]PolicyChange, error)
}

// PolicyStatus is the lifecycle state of one policy hash.
type PolicyStatus struct {
	Hash         string
	Status       string // published (no change logged), approved or retired
	Approval     *PolicyChange
	Retirement   *PolicyChange
	SupersededBy string
	Changes      []PolicyChange // every change that names the hash
}

// Freeze is the deployment freeze: when On, only Hashes may run.
type Freeze struct {
	On     bool
	Hashes []string
	Change *PolicyChange // the change that set it (nil: never frozen)
}

// Allows reports whether the freeze lets hash run.
func (f Freeze) Allows(hash string) bool { return !f.On || slices.Contains(f.Hashes, hash) }

// PolicyBook is the folded lifecycle log.
type PolicyBook struct {
	Seq      int64 // the last change folded
	Policies map[string]*PolicyStatus
	Freeze   Freeze
}

// NewPolicyBook returns an empty book.
func NewPolicyBook() *PolicyBook { return &PolicyBook{Policies: map[string]*PolicyStatus{}} }

func (b *PolicyBook) entry(hash string) *PolicyStatus {
	p := b.Policies[hash]
	if p == nil {
		p = &PolicyStatus{Hash: hash, Status: PolicyPublished}
		b.Policies[hash] = p
	}
	return p
}

// Apply folds one change in. Retirement is final: an approval logged after
// it changes nothing. The last freeze or unfreeze wins.
func (b *PolicyBook) Apply(c PolicyChange) {
	if c.Seq > b.Seq {
		b.Seq = c.Seq
	}
	cc := c
	switch c.Action {
	case PolicyApprove:
		p := b.entry(c.PolicyHash)
		p.Changes = append(p.Changes, cc)
		if p.Status != PolicyRetired {
			p.Status, p.Approval = PolicyApproved, &cc
		}
	case PolicyRetire, PolicySupersede:
		p := b.entry(c.PolicyHash)
		p.Changes = append(p.Changes, cc)
		if p.Status != PolicyRetired {
			p.Status, p.Retirement = PolicyRetired, &cc
			if c.Action == PolicySupersede && len(c.Hashes) > 0 {
				p.SupersededBy = c.Hashes[0]
			}
		}
		for _, h := range c.Hashes {
			n := b.entry(h)
			n.Changes = append(n.Changes, cc)
		}
	case PolicyFreeze:
		b.Freeze = Freeze{On: true, Hashes: slices.Clone(c.Hashes), Change: &cc}
		for _, h := range c.Hashes {
			p := b.entry(h)
			p.Changes = append(p.Changes, cc)
		}
	case PolicyUnfreeze:
		b.Freeze = Freeze{Change: &cc}
	}
}

// Status returns the state of hash (published when nothing names it).
func (b *PolicyBook) Status(hash string) PolicyStatus {
	if p := b.Policies[hash]; p != nil {
		return *p
	}
	return PolicyStatus{Hash: hash, Status: PolicyPublished}
}

// ReadPolicyBook folds the whole log.
func ReadPolicyBook(ctx context.Context, l PolicyLifecycle) (*PolicyBook, error) {
	b := NewPolicyBook()
	return b, b.CatchUp(ctx, l)
}

// CatchUp folds the changes logged since b.Seq.
func (b *PolicyBook) CatchUp(ctx context.Context, l PolicyLifecycle) error {
	for {
		page, err := l.PolicyChangesSince(ctx, b.Seq, 1000)
		if err != nil {
			return err
		}
		for _, c := range page {
			b.Apply(c)
		}
		if len(page) < 1000 {
			return nil
		}
	}
}

// StatementHash names a signed statement for the log's replay check ("" for
// none).
func StatementHash(stmt []byte) string {
	if len(stmt) == 0 {
		return ""
	}
	sum := sha256.Sum256(stmt)
	return hex.EncodeToString(sum[:])
}
