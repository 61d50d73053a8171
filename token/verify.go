package token

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/policy"
)

// Verification error codes. The first group is the reference gateway's
// (PROTOCOL.md §3.6); the rest are clawea's checks.
const (
	CodeRequired            = "TOKEN_REQUIRED"
	CodeMalformed           = "TOKEN_MALFORMED"
	CodeUnsupportedAlg      = "TOKEN_UNSUPPORTED_ALG"
	CodeInvalidClaims       = "TOKEN_INVALID_CLAIMS"
	CodeBadAudience         = "TOKEN_BAD_AUDIENCE"
	CodeExpired             = "TOKEN_EXPIRED"
	CodeInsufficientScope   = "TOKEN_INSUFFICIENT_SCOPE"
	CodeKeyMissing          = "TOKEN_VERIFICATION_KEY_MISSING"
	CodeSignatureInvalid    = "TOKEN_SIGNATURE_INVALID"
	CodeSubMismatch         = "TOKEN_SUB_MISMATCH"
	CodeScopeHashRequired   = "TOKEN_SCOPE_HASH_REQUIRED"
	CodeDelegationInvalid   = "TOKEN_DELEGATION_BINDING_INVALID"
	CodeDelegationExpired   = "TOKEN_DELEGATION_EXPIRED"
	CodeScopeHashMismatch   = "TOKEN_SCOPE_HASH_MISMATCH"
	CodeUnknownKid          = "TOKEN_UNKNOWN_KID"
	CodeKidExpired          = "TOKEN_KID_EXPIRED"
	CodeRevoked             = "TOKEN_REVOKED"
	CodeJobClosed           = "TOKEN_JOB_CLOSED"
	CodeJobMismatch         = "TOKEN_JOB_MISMATCH"
	CodeStateUnavailable    = "TOKEN_STATE_UNAVAILABLE"
	RevokeReasonJobFinished = "job_finished"
)

// Policy lifecycle refusals (a PolicyGate's): the job's pinned policy was
// retired or superseded, the deployment is frozen to other hashes, the hash
// was never approved (job start, when approval is required), or the
// lifecycle state cannot be read.
const (
	CodePolicyRetired          = "POLICY_RETIRED"
	CodePolicyNotInFreeze      = "POLICY_NOT_IN_FREEZE"
	CodePolicyNotApproved      = "POLICY_NOT_APPROVED"
	CodePolicyStateUnavailable = "POLICY_STATE_UNAVAILABLE"
)

// Error is a verification failure with the HTTP status to answer.
type Error struct {
	Code   string
	Status int
	Msg    string
}

func (e *Error) Error() string { return "token: " + e.Code + ": " + e.Msg }

var statusOf = map[string]int{
	CodeRequired: 401, CodeMalformed: 401, CodeUnsupportedAlg: 401, CodeInvalidClaims: 401, CodeBadAudience: 403,
	CodeExpired: 401, CodeInsufficientScope: 403, CodeKeyMissing: 503, CodeSignatureInvalid: 401, CodeSubMismatch: 401,
	CodeScopeHashRequired: 401, CodeDelegationInvalid: 401, CodeDelegationExpired: 401, CodeScopeHashMismatch: 401,
	CodeUnknownKid: 401, CodeKidExpired: 401, CodeRevoked: 401, CodeJobClosed: 401, CodeJobMismatch: 403,
	CodeStateUnavailable: 503, CodePolicyRetired: 403, CodePolicyNotInFreeze: 403, CodePolicyNotApproved: 403,
	CodePolicyStateUnavailable: 503,
}

// Errorf returns a verification error with code's status.
func Errorf(code, format string, args ...any) *Error { return errf(code, format, args...) }

func errf(code, format string, args ...any) *Error {
	st := statusOf[code]
	if st == 0 {
		st = 401
	}
	return &Error{Code: code, Status: st, Msg: fmt.Sprintf(format, args...)}
}

// IssuerKey is a public key of the token issuer. A State should keep one
// Key per kid for as long as it lives and call its Precompute, so that
// every token verifies on the fast path.
type IssuerKey struct {
	Kid      string
	Key      *didkey.Key
	NotAfter time.Time // zero: no end (the active key)
}

// JobInfo is what the verifier needs to know about a job.
type JobInfo struct {
	ID        string
	ScopeHash string // the token scope hash recorded when the job opened
	Open      bool
	// Finishing: the job stopped taking events and is being finished
	// (Open is false). Only a request that says AllowFinishing (the job's
	// own finish and read routes) is admitted then.
	Finishing bool
	// PolicyHash is the policy the job is pinned to ("" when unknown).
	PolicyHash string
}

// PolicyGate is a State that also knows the policy lifecycle. When the
// State is one, every verification of a job token, cached or not, asks it
// whether the job's pinned policy may still act (retired, superseded or
// outside a freeze: refused), so that no route admitting a job token can
// skip the check. AdmitPolicy returns nil or an *Error; it must fail
// closed when the lifecycle state cannot be read.
type PolicyGate interface {
	AdmitPolicy(ctx context.Context, policyHash string) error
}

// JobTokens is a State that also knows the tokens issued for a job
// besides the one it opened with (its write tokens, jobs.IssueWrite):
// JobToken returns the scope hash recorded for the token with tokenHash
// when it was issued for job jobID.
type JobTokens interface {
	JobToken(ctx context.Context, jobID, tokenHash string) (scopeHash string, ok bool, err error)
}

// State is the verifier's view of shared state. Implementations keep it
// current (revocations within a second) and must be safe for concurrent
// use; Revoked and IssuerKey are on the hot path and must not block.
type State interface {
	// IssuerKey returns the key with kid, current or rotated.
	IssuerKey(kid string) (IssuerKey, bool)
	// IssuerKeys lists every key, for tokens without a kid.
	IssuerKeys() []IssuerKey
	// Revoked reports whether the token with this hash is revoked and why.
	Revoked(tokenHash string) (reason string, revoked bool)
	// Job returns a job by id; ok is false when there is none.
	Job(ctx context.Context, id string) (info JobInfo, ok bool, err error)
}

// Verified is a token that passed every check.
type Verified struct {
	Claims    Claims
	TokenHash string
	ScopeHash string
	Kid       string
	JobID     string
}

// Options configure a Verifier.
type Options struct {
	// Audiences the verifier accepts (the token's aud must name one).
	Audiences []string
	// ScopeOK reports whether the token's scopes allow this use; nil
	// accepts any.
	ScopeOK func(scopes []string) bool
	// RequireJob makes job binding mandatory (mission_id must name an open
	// job with the same scope hash). Gateways set it.
	RequireJob bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the verified-token cache (default 10,000; negative
	// disables it).
	CacheSize int
}

// Request carries per-request expectations.
type Request struct {
	// JobID, when set, is the job the request claims to belong to (the run
	// id header); the token must be for that job.
	JobID string
	// ClientDID, when set, must equal the token's sub.
	ClientDID string
	// AllowFinishing admits the token of a job that is finishing (its
	// finish and read routes); every other request is refused once the
	// job stops being open.
	AllowFinishing bool
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	state State
	opt   Options

	mu    sync.Mutex
	cache map[string]*Verified
}

// NewVerifier returns a verifier over state.
func NewVerifier(state State, opt Options) *Verifier {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.CacheSize == 0 {
		opt.CacheSize = 10000
	}
	return &Verifier{state: state, opt: opt, cache: map[string]*Verified{}}
}

// Verify checks tok for req. Checks, in order: structure and alg, claims
// shape, audience, expiry, scope, key id (current or rotated keys) and
// signature, client DID, scope hash present, delegation consistency, scope
// hash recompute (the reference gateway's order), then job binding and
// revocation. A cached verification repeats every check that can change:
// expiry, job state, revocation and the request's job.
func (v *Verifier) Verify(ctx context.Context, tok string, req Request) (*Verified, error) {
	if tok == "" {
		return nil, errf(CodeRequired, "a scoped token is required")
	}
	now := v.opt.Now()
	if v.opt.CacheSize > 0 {
		v.mu.Lock()
		hit := v.cache[tok]
		v.mu.Unlock()
		if hit != nil {
			if err := v.checkKey(hit.Kid, now); err != nil {
				// The key was retired or revoked since: the cached
				// verification ends with it.
				v.mu.Lock()
				delete(v.cache, tok)
				v.mu.Unlock()
				return nil, err
			}
			if now.Unix() >= hit.Claims.Exp {
				v.mu.Lock()
				delete(v.cache, tok)
				v.mu.Unlock()
				return nil, errf(CodeExpired, "token expired at %s", time.Unix(hit.Claims.Exp, 0).UTC().Format(time.RFC3339))
			}
			if req.ClientDID != "" && req.ClientDID != hit.Claims.Sub {
				return nil, errf(CodeSubMismatch, "X-Client-DID differs from the token's sub")
			}
			if err := v.checkBinding(ctx, hit, req); err != nil {
				return nil, err
			}
			return hit, nil
		}
	}
	p, err := Parse(tok)
	if err != nil {
		return nil, err
	}
	c := &p.Claims
	if len(v.opt.Audiences) > 0 {
		ok := false
		for _, a := range normalizeList(c.Aud.Values) {
			if slices.Contains(v.opt.Audiences, a) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, errf(CodeBadAudience, "token audience %v is not accepted here (%s)", c.Aud.Values, strings.Join(v.opt.Audiences, ", "))
		}
	}
	if now.Unix() >= c.Exp {
		return nil, errf(CodeExpired, "token expired at %s", time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	if v.opt.ScopeOK != nil && !v.opt.ScopeOK(c.Scope) {
		return nil, errf(CodeInsufficientScope, "token scope %v does not allow this", c.Scope)
	}
	kid, err := v.checkSignature(ctx, p, now)
	if err != nil {
		return nil, err
	}
	if req.ClientDID != "" && req.ClientDID != c.Sub {
		return nil, errf(CodeSubMismatch, "X-Client-DID differs from the token's sub")
	}
	if c.TokenScopeHash == "" {
		return nil, errf(CodeScopeHashRequired, "token has no token_scope_hash_b64u")
	}
	if c.DelegationID != "" || c.DelegatorDID != "" || c.DelegateDID != "" {
		if c.DelegationID == "" || c.DelegatorDID == "" || c.DelegateDID == "" || c.DelegateDID != c.Sub ||
			(c.OwnerDID != "" && c.DelegatorDID != c.OwnerDID) ||
			(c.DelegationPolicyHash != "" && c.PolicyHash != "" && c.DelegationPolicyHash != c.PolicyHash) {
			return nil, errf(CodeDelegationInvalid, "delegation claims are inconsistent")
		}
		if c.DelegationExpiresAt != nil && *c.DelegationExpiresAt <= now.Unix() {
			return nil, errf(CodeDelegationExpired, "delegation expired")
		}
	}
	scopeHash := c.ScopeHash()
	if scopeHash != c.TokenScopeHash {
		return nil, errf(CodeScopeHashMismatch, "token_scope_hash_b64u does not match the claims")
	}
	ver := &Verified{Claims: *c, TokenHash: Hash(tok), ScopeHash: scopeHash, Kid: kid, JobID: c.MissionID}
	if err := v.checkBinding(ctx, ver, req); err != nil {
		return nil, err
	}
	if v.opt.CacheSize > 0 {
		v.mu.Lock()
		if len(v.cache) >= v.opt.CacheSize {
			for k, e := range v.cache { // drop expired entries, else one
				if now.Unix() >= e.Claims.Exp {
					delete(v.cache, k)
				}
			}
			if len(v.cache) >= v.opt.CacheSize {
				for k := range v.cache {
					delete(v.cache, k)
					break
				}
			}
		}
		v.cache[tok] = ver
		v.mu.Unlock()
	}
	return ver, nil
}

// KeyRefresher is a State that can read the issuer keys again at once,
// so that a key the issuer just started to sign with is accepted on first
// sight instead of at the next poll. Implementations bound how often they
// read (a token with a made-up kid must not cost a store query each).
type KeyRefresher interface {
	RefreshKeys(ctx context.Context) error
}

// checkKey checks that the key a cached verification used still verifies
// at now: it is known, and not retired or revoked.
func (v *Verifier) checkKey(kid string, now time.Time) error {
	k, ok := v.state.IssuerKey(kid)
	if !ok {
		return errf(CodeUnknownKid, "key %q is no longer known", kid)
	}
	if !k.NotAfter.IsZero() && now.After(k.NotAfter) {
		return errf(CodeKidExpired, "key %s was retired at %s", k.Kid, k.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func (v *Verifier) checkSignature(ctx context.Context, p *Parsed, now time.Time) (string, error) {
	if p.Header.Kid != "" {
		k, ok := v.state.IssuerKey(p.Header.Kid)
		if r, can := v.state.(KeyRefresher); !ok && can && r.RefreshKeys(ctx) == nil {
			k, ok = v.state.IssuerKey(p.Header.Kid)
		}
		if !ok {
			if len(v.state.IssuerKeys()) == 0 {
				return "", errf(CodeKeyMissing, "no token issuer key is configured")
			}
			return "", errf(CodeUnknownKid, "unknown key id %q", p.Header.Kid)
		}
		if !k.NotAfter.IsZero() && now.After(k.NotAfter) {
			return "", errf(CodeKidExpired, "key %s was retired at %s", k.Kid, k.NotAfter.UTC().Format(time.RFC3339))
		}
		if !k.Key.Verify([]byte(p.SigningInput), p.Signature) {
			return "", errf(CodeSignatureInvalid, "token signature does not verify")
		}
		return k.Kid, nil
	}
	keys := v.state.IssuerKeys()
	if len(keys) == 0 {
		return "", errf(CodeKeyMissing, "no token issuer key is configured")
	}
	for _, k := range keys {
		if (k.NotAfter.IsZero() || !now.After(k.NotAfter)) && k.Key.Verify([]byte(p.SigningInput), p.Signature) {
			return k.Kid, nil
		}
	}
	return "", errf(CodeSignatureInvalid, "token signature does not verify with any current key")
}

// checkBinding runs the checks that can change after a token was issued:
// its job (open, same scope hash, the request's job) and revocation.
func (v *Verifier) checkBinding(ctx context.Context, ver *Verified, req Request) error {
	if reason, revoked := v.state.Revoked(ver.TokenHash); revoked {
		if reason == RevokeReasonJobFinished {
			return errf(CodeJobClosed, "the token's job %s has finished", ver.JobID)
		}
		return errf(CodeRevoked, "token was revoked")
	}
	if ver.JobID == "" {
		if v.opt.RequireJob {
			return errf(CodeJobMismatch, "token is not bound to a job (no mission_id)")
		}
		if req.JobID != "" {
			return errf(CodeJobMismatch, "request names job %s but the token is not bound to a job", req.JobID)
		}
		return nil
	}
	if req.JobID != "" && req.JobID != ver.JobID {
		return errf(CodeJobMismatch, "token is for job %s, not %s", ver.JobID, req.JobID)
	}
	job, ok, err := v.state.Job(ctx, ver.JobID)
	if err != nil {
		return errf(CodeStateUnavailable, "cannot look up job %s: %v", ver.JobID, err)
	}
	if !ok {
		return errf(CodeJobMismatch, "token names job %s, which does not exist", ver.JobID)
	}
	if job.ScopeHash != ver.ScopeHash {
		// A job's write token (ScopeWrite) has its own scope hash: the
		// issuer recorded it for the job when it minted the token.
		jt, ok := v.state.(JobTokens)
		if !ok || !ver.Claims.CanWrite() {
			return errf(CodeJobMismatch, "token was not issued for job %s (scope hash differs)", ver.JobID)
		}
		sh, found, err := jt.JobToken(ctx, ver.JobID, ver.TokenHash)
		if err != nil {
			return errf(CodeStateUnavailable, "cannot look up the tokens of job %s: %v", ver.JobID, err)
		}
		if !found || sh != ver.ScopeHash {
			return errf(CodeJobMismatch, "token was not issued for job %s (scope hash differs)", ver.JobID)
		}
	}
	if !job.Open && !(job.Finishing && req.AllowFinishing) {
		if job.Finishing {
			return errf(CodeJobClosed, "job %s is finishing: it takes no more calls", ver.JobID)
		}
		return errf(CodeJobClosed, "job %s has finished", ver.JobID)
	}
	if g, ok := v.state.(PolicyGate); ok {
		if job.PolicyHash != "" && ver.Claims.PolicyHash != "" && job.PolicyHash != ver.Claims.PolicyHash {
			return errf(CodeJobMismatch, "token is pinned to another policy than job %s", ver.JobID)
		}
		pinned := job.PolicyHash
		if pinned == "" {
			pinned = ver.Claims.PolicyHash
		}
		if pinned == "" {
			return errf(CodePolicyStateUnavailable, "job %s names no policy to check", ver.JobID)
		}
		if err := g.AdmitPolicy(ctx, pinned); err != nil {
			return err
		}
	}
	return nil
}

// Forget drops a token from the cache (after a revocation seen locally).
func (v *Verifier) Forget(tok string) {
	v.mu.Lock()
	delete(v.cache, tok)
	v.mu.Unlock()
}

// Labels returns the job labels the token carries (its label:<name>=<value>
// scope entries, policy.LabelScopes); nil when it carries none. The issuer
// writes only valid labels; a token with a malformed entry gives none.
func (v *Verified) Labels() map[string]string {
	if v == nil {
		return nil
	}
	l, err := policy.LabelsFromScopes(v.Claims.Scope)
	if err != nil {
		return nil
	}
	return l
}
