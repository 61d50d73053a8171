package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
	cst "github.com/clawea/clawea/token"
)

// StatementType is the type of a signed policy lifecycle statement.
const StatementType = "clawea.policy_lifecycle.v1"

// Lifecycle error codes (the refusals jobs meet are token.CodePolicy*).
const (
	CodeStatementInvalid  = "LIFECYCLE_STATEMENT_INVALID"
	CodeStatementExpired  = "LIFECYCLE_STATEMENT_EXPIRED"
	CodeSignatureInvalid  = "LIFECYCLE_SIGNATURE_INVALID"
	CodeOperatorNotAllow  = "OPERATOR_NOT_ALLOWED"
	CodeOperatorsNotConf  = "OPERATORS_NOT_CONFIGURED"
	CodeStatementReplayed = "LIFECYCLE_STATEMENT_REPLAYED"
	CodePolicyRetired     = cst.CodePolicyRetired
)

// StatementSkew is how far a statement's issued_at may be from the
// registry's clock.
const StatementSkew = 5 * time.Minute

// MaxFreezeHashes bounds the hashes one freeze allows.
const MaxFreezeHashes = 256

// Statement is what an operator signs to change a policy's lifecycle. The
// signature is Ed25519 by operator_did's key over the statement's RFC 8785
// form.
type Statement struct {
	Type         string   `json:"type"`
	Action       string   `json:"action"` // approve, retire, freeze, unfreeze
	PolicyHash   string   `json:"policy_hash_b64u,omitempty"`
	SupersededBy string   `json:"superseded_by_b64u,omitempty"` // retire: the policy replacing it
	Hashes       []string `json:"hashes,omitempty"`             // freeze: the hashes that may run
	OperatorDID  string   `json:"operator_did"`
	Reason       string   `json:"reason,omitempty"`
	IssuedAt     string   `json:"issued_at"`
	Nonce        string   `json:"nonce"`
}

// SignedStatement is the body of POST /v1/policy-lifecycle.
type SignedStatement struct {
	Statement json.RawMessage `json:"statement"`
	Signature string          `json:"signature_b64u"`
}

// SignStatement fills st's type, operator, time and nonce and signs it
// with k.
func SignStatement(k signer.Signer, st Statement, now time.Time) (SignedStatement, error) {
	st.Type, st.OperatorDID = StatementType, k.DID()
	st.IssuedAt = now.UTC().Format(time.RFC3339)
	if st.Nonce == "" {
		var b [16]byte
		rand.Read(b[:])
		st.Nonce = hex.EncodeToString(b[:])
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return SignedStatement{}, err
	}
	jcs, err := canon.JCS(raw)
	if err != nil {
		return SignedStatement{}, err
	}
	sig, err := k.Sign(jcs)
	if err != nil {
		return SignedStatement{}, err
	}
	return SignedStatement{Statement: jcs, Signature: b64u.Encode(sig)}, nil
}

// ParseSignedStatement checks a signed statement's form and signature
// (not the operator allowlist, the clock or the store) and returns it with
// the signed bytes.
func ParseSignedStatement(body []byte) (Statement, []byte, string, *APIError) {
	var st Statement
	var ss SignedStatement
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ss); err != nil || dec.More() {
		return st, nil, "", apiErr(http.StatusBadRequest, CodeInvalidJSON, `body must be {"statement": {...}, "signature_b64u": "..."}`)
	}
	if len(ss.Statement) == 0 || ss.Signature == "" {
		return st, nil, "", apiErr(http.StatusBadRequest, CodeStatementInvalid, "statement and signature_b64u are required")
	}
	jcs, err := canon.JCS(ss.Statement)
	if err != nil {
		return st, nil, "", apiErr(http.StatusBadRequest, CodeStatementInvalid, "the statement is not valid JSON")
	}
	sd := json.NewDecoder(bytes.NewReader(jcs))
	sd.DisallowUnknownFields()
	if err := sd.Decode(&st); err != nil {
		return st, nil, "", apiErr(http.StatusBadRequest, CodeStatementInvalid, "the statement has an unknown field or a wrong type")
	}
	if e := st.check(); e != nil {
		return st, nil, "", e
	}
	pub, err := didkey.PublicKey(st.OperatorDID)
	if err != nil {
		return st, nil, "", apiErr(http.StatusBadRequest, CodeStatementInvalid, "operator_did must be an Ed25519 did:key")
	}
	sig, err := b64u.Decode(ss.Signature)
	if err != nil || len(sig) != 64 || !didkey.NewKey(pub).Verify(jcs, sig) {
		return st, nil, "", apiErr(http.StatusUnauthorized, CodeSignatureInvalid, "the signature does not verify with operator_did's key")
	}
	return st, jcs, ss.Signature, nil
}

func (st *Statement) check() *APIError {
	bad := func(format string, args ...any) *APIError {
		return apiErr(http.StatusBadRequest, CodeStatementInvalid, format, args...)
	}
	if st.Type != StatementType {
		return bad("type must be %s", StatementType)
	}
	if len(st.Nonce) < 16 || len(st.Nonce) > 128 {
		return bad("nonce must be 16 to 128 characters")
	}
	if len(st.Reason) > 1024 {
		return bad("reason exceeds 1024 bytes")
	}
	if _, err := time.Parse(time.RFC3339, st.IssuedAt); err != nil {
		return bad("issued_at must be an RFC 3339 time")
	}
	switch st.Action {
	case store.PolicyApprove, store.PolicyRetire:
		if !policy.IsPolicyHash(st.PolicyHash) {
			return bad("policy_hash_b64u must be 43 base64url characters")
		}
		if len(st.Hashes) > 0 {
			return bad("hashes belong to freeze only")
		}
		if st.SupersededBy != "" && (st.Action != store.PolicyRetire || !policy.IsPolicyHash(st.SupersededBy) || st.SupersededBy == st.PolicyHash) {
			return bad("superseded_by_b64u must name another policy, on retire only")
		}
	case store.PolicyFreeze:
		if st.PolicyHash != "" || st.SupersededBy != "" {
			return bad("freeze names its hashes in hashes")
		}
		if len(st.Hashes) == 0 || len(st.Hashes) > MaxFreezeHashes {
			return bad("freeze needs 1 to %d hashes", MaxFreezeHashes)
		}
		for i, h := range st.Hashes {
			if !policy.IsPolicyHash(h) {
				return bad("hashes[%d] must be 43 base64url characters", i)
			}
			if slices.Contains(st.Hashes[:i], h) {
				return bad("hashes[%d] repeats a hash", i)
			}
		}
	case store.PolicyUnfreeze:
		if st.PolicyHash != "" || st.SupersededBy != "" || len(st.Hashes) > 0 {
			return bad("unfreeze names no hash")
		}
	default:
		return bad("action must be approve, retire, freeze or unfreeze")
	}
	return nil
}

// Lifecycle configures the lifecycle routes of a Server.
type Lifecycle struct {
	// Store holds the lifecycle log (the registry's store).
	Store store.PolicyLifecycle
	// Operators are the did:keys allowed to sign lifecycle statements.
	Operators []string
	// RequireApproval is the deployment's setting, reported by status.
	RequireApproval bool
	// OnChange runs after a change is logged, with the folded book; it
	// returns how many running jobs recorded the change (the server
	// refreshes its mirror and appends the change to the chains of the
	// jobs it touches).
	OnChange func(ctx context.Context, c store.PolicyChange) (jobs int, err error)
}

// ChangeView is a logged change as the API shows it.
type ChangeView struct {
	Seq        int64           `json:"seq"`
	Action     string          `json:"action"`
	PolicyHash string          `json:"policy_hash_b64u,omitempty"`
	Hashes     []string        `json:"hashes,omitempty"`
	Actor      string          `json:"actor"`
	Reason     string          `json:"reason,omitempty"`
	Statement  json.RawMessage `json:"statement,omitempty"`
	Signature  string          `json:"signature_b64u,omitempty"`
	At         string          `json:"at"`
}

// ViewChange renders a change.
func ViewChange(c store.PolicyChange) ChangeView {
	return ChangeView{Seq: c.Seq, Action: c.Action, PolicyHash: c.PolicyHash, Hashes: c.Hashes, Actor: c.Actor, Reason: c.Reason,
		Statement: json.RawMessage(c.Statement), Signature: c.Signature, At: c.At.UTC().Format(time.RFC3339Nano)}
}

func viewPtr(c *store.PolicyChange) *ChangeView {
	if c == nil {
		return nil
	}
	v := ViewChange(*c)
	return &v
}

// FreezeView is the deployment freeze as the API shows it.
type FreezeView struct {
	On     bool        `json:"on"`
	Hashes []string    `json:"hashes,omitempty"`
	Change *ChangeView `json:"change,omitempty"`
}

// StatusView is GET /v1/policy-lifecycle/{hash}.
type StatusView struct {
	OK              bool         `json:"ok"`
	PolicyHash      string       `json:"policy_hash_b64u"`
	Published       bool         `json:"published"`
	Status          string       `json:"status"`
	SupersededBy    string       `json:"superseded_by_b64u,omitempty"`
	RequireApproval bool         `json:"require_approval"`
	CanStartJobs    bool         `json:"can_start_jobs"`
	Approval        *ChangeView  `json:"approval,omitempty"`
	Retirement      *ChangeView  `json:"retirement,omitempty"`
	Freeze          FreezeView   `json:"freeze"`
	Changes         []ChangeView `json:"changes"`
	JobsTouched     *int         `json:"jobs_touched,omitempty"`
}

func (s *Server) registerLifecycle(mux httpapi.Router) {
	mux.HandleFunc("POST /v1/policy-lifecycle", s.lifecycleChange)
	// The log holds every operator's signed statement: a statement names
	// no deployment, so one read here could be replayed (within its
	// issued_at window) at another deployment that trusts the same
	// operator key. Reading it takes the admin credential.
	mux.HandleFunc("GET /v1/policy-lifecycle", s.adminOnly(s.lifecycleLog))
	mux.HandleFunc("GET /v1/policy-lifecycle/{hash}", s.adminOnly(s.lifecycleStatus))
}

// adminOnly guards a route with the registry's Authorize (the admin
// credential); without one configured the route is refused.
func (s *Server) adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Authorize == nil {
			WriteError(w, r, apiErr(http.StatusUnauthorized, CodeUnauthorized, "reading the lifecycle log is not enabled on this registry"))
			return
		}
		if e := s.Authorize(r); e != nil {
			WriteError(w, r, e)
			return
		}
		h(w, r)
	}
}

func (s *Server) lifecycleStore() (store.PolicyLifecycle, *APIError) {
	if s.Lifecycle == nil || s.Lifecycle.Store == nil {
		return nil, apiErr(http.StatusServiceUnavailable, CodeStoreUnavailable, "the policy lifecycle is not configured on this registry")
	}
	return s.Lifecycle.Store, nil
}

func (s *Server) lifecycleChange(w http.ResponseWriter, r *http.Request) {
	ls, e := s.lifecycleStore()
	if e != nil {
		WriteError(w, r, e)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeBodyReadFailed, "cannot read the request body"))
		return
	}
	if len(body) > 64<<10 {
		WriteError(w, r, apiErr(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "the statement exceeds 64 KiB"))
		return
	}
	st, signed, sig, e := ParseSignedStatement(body)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	if len(s.Lifecycle.Operators) == 0 {
		WriteError(w, r, apiErr(http.StatusForbidden, CodeOperatorsNotConf, "no policy operator is configured (policy.operators / --policy-operator)"))
		return
	}
	if !slices.Contains(s.Lifecycle.Operators, st.OperatorDID) {
		WriteError(w, r, apiErr(http.StatusForbidden, CodeOperatorNotAllow, "%s is not a policy operator of this deployment", st.OperatorDID))
		return
	}
	at, _ := time.Parse(time.RFC3339, st.IssuedAt)
	if d := s.now().Sub(at); d > StatementSkew || d < -StatementSkew {
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeStatementExpired, "issued_at is more than %s from the registry's clock", StatementSkew))
		return
	}
	ctx := r.Context()
	book, err := store.ReadPolicyBook(ctx, ls)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	named := slices.Clone(st.Hashes)
	if st.PolicyHash != "" {
		named = append(named, st.PolicyHash)
	}
	if st.SupersededBy != "" {
		named = append(named, st.SupersededBy)
	}
	for _, h := range named {
		if _, err := s.Store.GetWPC(ctx, h); errors.Is(err, store.ErrNotFound) {
			WriteError(w, r, apiErr(http.StatusNotFound, CodeWPCNotFound, "policy %s is not in the registry", h))
			return
		} else if err != nil {
			s.storeFailed(w, r, err)
			return
		}
	}
	switch st.Action {
	case store.PolicyApprove, store.PolicyRetire:
		if book.Status(st.PolicyHash).Status == store.PolicyRetired {
			WriteError(w, r, apiErr(http.StatusConflict, CodePolicyRetired, "policy %s is retired already; retirement is final", st.PolicyHash))
			return
		}
	case store.PolicyFreeze:
		for _, h := range st.Hashes {
			if book.Status(h).Status == store.PolicyRetired {
				WriteError(w, r, apiErr(http.StatusConflict, CodePolicyRetired, "policy %s is retired and cannot be allowed by a freeze", h))
				return
			}
		}
	}
	c := store.PolicyChange{Action: st.Action, PolicyHash: st.PolicyHash, Hashes: st.Hashes, Actor: st.OperatorDID,
		Reason: st.Reason, Statement: signed, Signature: sig, At: s.now()}
	if st.SupersededBy != "" {
		c.Action, c.Hashes = store.PolicySupersede, []string{st.SupersededBy}
	}
	s.recordChange(w, r, c, http.StatusCreated)
}

// recordChange logs c and answers with the change and the status of the
// hash it names.
func (s *Server) recordChange(w http.ResponseWriter, r *http.Request, c store.PolicyChange, status int) {
	c, view, e := s.logChange(r.Context(), c)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	writeJSON(w, status, map[string]any{"ok": true, "change": ViewChange(c), "status": view})
}

// logChange logs c, runs OnChange and returns the logged change and the
// status of the hash it names.
func (s *Server) logChange(ctx context.Context, c store.PolicyChange) (store.PolicyChange, StatusView, *APIError) {
	c, err := s.Lifecycle.Store.AddPolicyChange(ctx, c)
	if errors.Is(err, store.ErrConflict) {
		return c, StatusView{}, apiErr(http.StatusConflict, CodeStatementReplayed, "this signed statement was recorded already; sign a new one")
	}
	if err != nil {
		return c, StatusView{}, apiErr(http.StatusServiceUnavailable, CodeStoreUnavailable, "policy storage is unavailable").Wrap(err)
	}
	s.log().InfoContext(ctx, "policy lifecycle change", slog.String("action", c.Action), slog.String("policy_hash", c.PolicyHash),
		slog.Any("hashes", c.Hashes), slog.String("actor", c.Actor), slog.Int64("seq", c.Seq))
	touched := 0
	if s.Lifecycle.OnChange != nil {
		n, err := s.Lifecycle.OnChange(ctx, c)
		touched = n
		if err != nil {
			s.log().WarnContext(ctx, "recording a policy lifecycle change in running jobs failed", slog.Int64("seq", c.Seq), slog.String("error", err.Error()))
		}
	}
	hash := c.PolicyHash
	if hash == "" && len(c.Hashes) > 0 {
		hash = c.Hashes[0]
	}
	view, e := s.statusOf(ctx, hash)
	if e != nil {
		return c, view, e
	}
	view.JobsTouched = &touched
	return c, view, nil
}

func (s *Server) statusOf(ctx context.Context, hash string) (StatusView, *APIError) {
	book, err := store.ReadPolicyBook(ctx, s.Lifecycle.Store)
	if err != nil {
		return StatusView{}, apiErr(http.StatusServiceUnavailable, CodeStoreUnavailable, "policy storage is unavailable").Wrap(err)
	}
	v := StatusView{OK: true, PolicyHash: hash, RequireApproval: s.Lifecycle.RequireApproval, Changes: []ChangeView{},
		Freeze: FreezeView{On: book.Freeze.On, Hashes: book.Freeze.Hashes, Change: viewPtr(book.Freeze.Change)}}
	if hash != "" {
		if _, err := s.Store.GetWPC(ctx, hash); err == nil {
			v.Published = true
		} else if !errors.Is(err, store.ErrNotFound) {
			return v, apiErr(http.StatusServiceUnavailable, CodeStoreUnavailable, "policy storage is unavailable").Wrap(err)
		}
		ps := book.Status(hash)
		v.Status, v.SupersededBy = ps.Status, ps.SupersededBy
		v.Approval, v.Retirement = viewPtr(ps.Approval), viewPtr(ps.Retirement)
		for _, c := range ps.Changes {
			v.Changes = append(v.Changes, ViewChange(c))
		}
		v.CanStartJobs = v.Published && ps.Status != store.PolicyRetired && book.Freeze.Allows(hash) &&
			(!s.Lifecycle.RequireApproval || ps.Status == store.PolicyApproved)
	}
	return v, nil
}

func (s *Server) lifecycleStatus(w http.ResponseWriter, r *http.Request) {
	if _, e := s.lifecycleStore(); e != nil {
		WriteError(w, r, e)
		return
	}
	hash := strings.TrimSpace(r.PathValue("hash"))
	if !policy.IsPolicyHash(hash) {
		WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidPolicyHash, "policy_hash_b64u must be 43 base64url characters"))
		return
	}
	v, e := s.statusOf(r.Context(), hash)
	if e != nil {
		WriteError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// lifecycleLog exports the lifecycle log (every change with its signed
// statement) and the freeze.
func (s *Server) lifecycleLog(w http.ResponseWriter, r *http.Request) {
	ls, e := s.lifecycleStore()
	if e != nil {
		WriteError(w, r, e)
		return
	}
	var after int64
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidRequest, "after must be a change number"))
			return
		}
		after = n
	}
	limit := 1000
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, r, apiErr(http.StatusBadRequest, CodeInvalidRequest, "limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	page, err := ls.PolicyChangesSince(r.Context(), after, limit)
	if err != nil {
		s.storeFailed(w, r, err)
		return
	}
	v, e := s.statusOf(r.Context(), "")
	if e != nil {
		WriteError(w, r, e)
		return
	}
	changes := make([]ChangeView, 0, len(page))
	for _, c := range page {
		changes = append(changes, ViewChange(c))
	}
	body := map[string]any{"ok": true, "require_approval": s.Lifecycle.RequireApproval, "freeze": v.Freeze, "changes": changes,
		"operators": nonNilStrings(s.Lifecycle.Operators)}
	if len(page) == limit {
		body["next_after"] = page[len(page)-1].Seq
	}
	writeJSON(w, http.StatusOK, body)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// JobLister lists jobs (store.Jobs' ListJobs).
type JobLister interface {
	ListJobs(ctx context.Context, after, status string, limit int) ([]store.Job, error)
}

// Event types a lifecycle change appends to the jobs it touches.
const (
	EventPolicyRetired = "policy_retired"
	EventPolicyFrozen  = "policy_frozen"
)

// ChangeEvent is the payload of a policy_retired or policy_frozen event.
type ChangeEvent struct {
	Action       string   `json:"action"`
	PolicyHash   string   `json:"policy_hash_b64u"`
	SupersededBy string   `json:"superseded_by_b64u,omitempty"`
	FreezeHashes []string `json:"freeze_hashes,omitempty"`
	Actor        string   `json:"actor"`
	Reason       string   `json:"reason,omitempty"`
	ChangeSeq    int64    `json:"change_seq"`
	Statement    string   `json:"statement_sha256_b64u,omitempty"`
	Signature    string   `json:"signature_b64u,omitempty"`
	Effect       string   `json:"effect"`
	At           string   `json:"at"`
}

// Touched reports whether a change refuses a job pinned to hash.
func Touched(c store.PolicyChange, hash string) bool {
	switch c.Action {
	case store.PolicyRetire, store.PolicySupersede:
		return hash == c.PolicyHash
	case store.PolicyFreeze:
		return !slices.Contains(c.Hashes, hash)
	}
	return false
}

// RecordInJobs appends c to the chain of every open job it touches (a
// retirement: the jobs pinned to the hash; a freeze: the jobs pinned to a
// hash it leaves out), so that their bundles show who refused them and
// why, through the evidence chain's one record path. A job that closed
// meanwhile is skipped. It returns how many jobs
// recorded the change and the first error.
func RecordInJobs(ctx context.Context, jobs JobLister, rec *evidence.Chain, c store.PolicyChange) (int, error) {
	typ := EventPolicyRetired
	effect := "the job's pinned policy is retired: every further call is refused (POLICY_RETIRED)"
	switch c.Action {
	case store.PolicyRetire, store.PolicySupersede:
	case store.PolicyFreeze:
		typ = EventPolicyFrozen
		effect = "the deployment is frozen to other policies: every further call is refused (POLICY_NOT_IN_FREEZE)"
	default:
		return 0, nil
	}
	ev := ChangeEvent{Action: c.Action, PolicyHash: c.PolicyHash, Actor: c.Actor, Reason: c.Reason, ChangeSeq: c.Seq,
		Signature: c.Signature, Effect: effect, At: c.At.UTC().Format(time.RFC3339Nano)}
	if len(c.Statement) > 0 {
		ev.Statement = b64u.SHA256(c.Statement)
	}
	if c.Action == store.PolicySupersede && len(c.Hashes) > 0 {
		ev.SupersededBy = c.Hashes[0]
	}
	if c.Action == store.PolicyFreeze {
		ev.FreezeHashes = c.Hashes
	}
	n, after := 0, ""
	var first error
	for {
		page, err := jobs.ListJobs(ctx, after, store.JobOpen, 500)
		if err != nil {
			return n, err
		}
		for _, j := range page {
			if !Touched(c, j.PolicyHash) {
				continue
			}
			e := ev
			e.PolicyHash = j.PolicyHash
			if _, err := rec.AppendEvent(ctx, j.ID, typ, e); err != nil {
				var he *httpapi.Error
				if errors.As(err, &he) && he.Code == "JOB_NOT_OPEN" {
					continue // it finished meanwhile
				}
				if first == nil {
					first = fmt.Errorf("job %s: %w", j.ID, err)
				}
				continue
			}
			n++
		}
		if len(page) < 500 {
			return n, first
		}
		after = page[len(page)-1].ID
	}
}
