// Package jobs runs the job service: a job is the unit of authority (one
// short-lived token pinned to one policy) and of evidence (one hash-chained
// event log, the receipts collected during the job, and at the end one
// signed proof bundle, or several joined by an aggregate when the job is
// longer than one bundle may be). Events and their evidence are recorded
// through internal/evidence (evidence.Chain, the one write path, with the
// evidence gate inside it), as the gateways record theirs; this package
// opens jobs, serves their events API, and finishes and exports them.
package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/issuer"
	"github.com/clawea/clawea/internal/policycache"
	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
	"github.com/clawea/clawea/token"
	"github.com/clawea/clawea/verify"
)

// Default scopes of a job token: model gateway, tool gateway, job events.
// The write scope (ScopeWrite) is added as StartRequest.Write and the
// policy say (Start).
var DefaultScopes = []string{"proxy:call", "tool:call", "job:events"}

// ScopeWrite lets a token make mutating tool calls: the gateways refuse a
// mutating call for a token without it (TOKEN_WRITE_SCOPE_REQUIRED),
// whatever the policy says.
const ScopeWrite = token.ScopeWrite

// ScopeJobEvents lets a token append events to its own job and finish it.
const ScopeJobEvents = "job:events"

// reservedEventTypes are written only by clawea's own gateways, each with
// the receipt that strict verification requires of it (verify: every
// llm_call and tool_call event names a receipt). An agent posting one
// through the job API would forge a gateway's record, or make its own
// bundle fail strict verification, so the API refuses them
// (EVENT_TYPE_RESERVED).
var reservedEventTypes = map[string]bool{
	"llm_call": true, "llm_call_refused": true, "tool_call": true,
	"approval_requested": true, "approval_decided": true, "approval_expired": true, "lockdown": true,
	EventJobStarted:       true,                        // written by Start (the labels and the job:start decision)
	EventWriteTokenIssued: true,                        // written by IssueWrite (the token:issue decision)
	"runtime_decision":    true,                        // the tool gateway's decision API (toolgw/decide.go)
	EventResultsMissing:   true,                        // written by finish (missing.go)
	"policy_retired":      true, "policy_frozen": true, // the registry's lifecycle changes (registry.RecordInJobs)
}

// operatorEventTypes record an operator's lever (clawea job revoke): the
// job API takes them only with the admin credential.
var operatorEventTypes = map[string]bool{"operator_revoke": true}

// OperatorEventType reports whether only an operator (the admin
// credential) may append events of type t.
func OperatorEventType(t string) bool { return operatorEventTypes[t] }

// ReservedEventType reports whether only clawea's gateways may append
// events of type t.
func ReservedEventType(t string) bool { return reservedEventTypes[t] }

// Store is what the job service needs.
type Store interface {
	store.Jobs
	store.Agents
	GetWPC(ctx context.Context, hash string) (store.WPC, error)
}

// Error is a job service error: httpapi's one error type (a Go error
// passed to jerr is kept as the private cause, never sent).
type Error = httpapi.Error

func jerr(status int, code, format string, args ...any) *Error {
	return httpapi.Errorf(status, code, format, args...)
}

// Service is the job service. Its events (AppendEvent, Record) go through
// its evidence.Chain, the one write path of job evidence.
type Service struct {
	*evidence.Chain
	st       Store
	secrets  *redact.Registry // the evidence gate's registry
	issuer   *issuer.Issuer
	key      signer.Signer // signs aggregates and exports
	custody  *Custody
	now      func() time.Time
	log      *slog.Logger
	trust    verify.Config
	harness  bundle.Harness
	onChange func(store.Job)
	admit    func(ctx context.Context, policyHash string) error
	pols     *policycache.Cache
}

// Options configure a Service.
type Options struct {
	Issuer  *issuer.Issuer
	Key     signer.Signer
	Custody *Custody
	Now     func() time.Time
	Log     *slog.Logger
	// Trust lists the gateway signers whose receipts the service's own
	// bundles carry; finished bundles are verified against it.
	Trust verify.Config
	// Version names the harness version in bundles.
	Version string
	// SegmentEvents is the most events per bundle (default and maximum
	// 1,000, the reference's limit).
	SegmentEvents int
	// OnChange is told of job state changes made here.
	OnChange func(store.Job)
	// Secrets is the redaction registry of the evidence gate: nothing the
	// service stores or signs for a job may hold a secret the job has seen
	// (EVIDENCE_SECRET_REFUSED). Nil: no secrets are known here.
	Secrets *redact.Registry
	// AdmitPolicy, when set, decides whether a job may start pinned to a
	// policy hash, on the policy lifecycle read now (retired, outside a
	// freeze, or unapproved when approval is required: refused with its
	// *token.Error code). The server sets it.
	AdmitPolicy func(ctx context.Context, policyHash string) error
	// Policies, when set, gives the job service the verified, compiled
	// policies, for the job:start and token:issue decisions. Without it a
	// policy is compiled from the stored payload, its parents found among
	// the stored policies.
	Policies policycache.Source
}

// New returns a job service.
func New(st Store, opt Options) (*Service, error) {
	if opt.Issuer == nil || opt.Key == nil || opt.Custody == nil {
		return nil, errors.New("jobs: issuer, key and custody are required")
	}
	s := &Service{st: st, issuer: opt.Issuer, key: opt.Key, custody: opt.Custody, now: opt.Now, log: opt.Log,
		trust: opt.Trust, onChange: opt.OnChange, secrets: opt.Secrets, admit: opt.AdmitPolicy}
	if opt.Policies != nil {
		s.pols = policycache.New(opt.Policies)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.Chain = evidence.NewChain(st, opt.Secrets, opt.SegmentEvents, s.now)
	v := opt.Version
	if v == "" {
		v = "dev"
	}
	s.harness = bundle.Harness{ID: "clawea", Version: v, Runtime: "clawea"}
	return s, nil
}

// PolicyBudget reads a budget from a policy's metadata
// ({"metadata": {"budget": {"max_requests": N, ...}}}); none gives zero.
func PolicyBudget(payload []byte) store.Budget {
	var doc struct {
		Metadata struct {
			Budget store.Budget `json:"budget"`
		} `json:"metadata"`
	}
	json.Unmarshal(payload, &doc)
	b := doc.Metadata.Budget
	if b.MaxRequests < 0 || b.MaxTokensInput < 0 || b.MaxTokensOutput < 0 {
		return store.Budget{}
	}
	return b
}

// StartRequest opens a job.
type StartRequest struct {
	AgentDID   string         `json:"agent_did"`
	PolicyHash string         `json:"policy_hash_b64u"`
	TTLSec     int64          `json:"ttl_sec,omitempty"`
	Scopes     []string       `json:"scopes,omitempty"`
	Labels     map[string]any `json:"labels,omitempty"`
	Budget     *store.Budget  `json:"budget,omitempty"`
	// Write asks for the write scope (true) or a read-only token (false)
	// when Scopes is empty; unset, the token has the write scope unless
	// the policy governs job:start (docs/tokens-and-jobs.md).
	Write *bool `json:"write,omitempty"`
}

// Started is an opened job with its token.
type Started struct {
	Job       *View  `json:"job"`
	Token     string `json:"token"`
	TokenHash string `json:"token_hash"`
	ExpiresAt string `json:"expires_at"`
}

func newJobID() string {
	var b [10]byte
	rand.Read(b[:])
	return "job_" + hex.EncodeToString(b[:])
}

// Start opens a job: it checks the agent and the policy, mints the job's
// token (mission_id = job id, policy pinned) and records the job with the
// token's scope hash, so that the token works for this job only.
func (s *Service) Start(ctx context.Context, req StartRequest) (*Started, error) {
	if _, err := didkey.PublicKey(req.AgentDID); err != nil {
		return nil, jerr(400, "AGENT_DID_INVALID", "agent_did must be an Ed25519 did:key")
	}
	if req.PolicyHash == "" {
		return nil, jerr(400, "POLICY_REQUIRED", "policy_hash_b64u is required: every job is pinned to a policy")
	}
	wpc, err := s.st.GetWPC(ctx, req.PolicyHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jerr(404, "POLICY_NOT_FOUND", "policy %s is not in the registry", req.PolicyHash)
	} else if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	if s.admit != nil {
		if err := s.admit(ctx, req.PolicyHash); err != nil {
			var te *token.Error
			if errors.As(err, &te) {
				return nil, jerr(te.Status, te.Code, "%s", te.Msg)
			}
			return nil, jerr(503, token.CodePolicyStateUnavailable, "the policy lifecycle state cannot be read").Wrap(err)
		}
	}
	if req.Budget != nil && (req.Budget.MaxRequests < 0 || req.Budget.MaxTokensInput < 0 || req.Budget.MaxTokensOutput < 0) {
		return nil, jerr(400, "BUDGET_INVALID", "budget limits must not be negative")
	}
	budgetOf := PolicyBudget(wpc.Payload).Tighten(req.Budget)
	labelMap, err := parseLabels(req.Labels)
	if err != nil {
		return nil, err
	}
	pol, err := s.policy(ctx, wpc)
	if err != nil {
		return nil, err
	}
	governs := pol != nil && pol.Governs(policy.ActionJobStart)
	scopes, err := startScopes(req, governs)
	if err != nil {
		return nil, err
	}
	defTTL, _ := s.issuer.TTLs()
	ttl := time.Duration(req.TTLSec) * time.Second
	if ttl == 0 {
		ttl = defTTL
	}
	var decision *startDecision
	if governs {
		if decision, err = decideStart(pol, policy.ActionJobStart, req.AgentDID, ttl, scopes, labelMap); err != nil {
			s.log.InfoContext(ctx, "job start refused by policy", slog.String("agent", req.AgentDID), slog.String("policy_hash", req.PolicyHash), slog.String("error", err.Error()))
			return nil, err
		}
	}
	id := newJobID()
	iss, err := s.issuer.Issue(ctx, issuer.IssueRequest{Sub: req.AgentDID, Scope: append(slices.Clone(scopes), policy.LabelScopes(labelMap)...),
		TTL: time.Duration(req.TTLSec) * time.Second, MissionID: id, PolicyHash: req.PolicyHash, AgentDID: req.AgentDID})
	if err != nil {
		var ae *issuer.APIError
		if errors.As(err, &ae) {
			return nil, jerr(ae.Status, ae.Code, "%s", ae.Msg)
		}
		return nil, err
	}
	labels, _ := json.Marshal(labelMap)
	budget, _ := json.Marshal(budgetOf)
	now := s.now()
	job := store.Job{ID: id, AgentDID: req.AgentDID, PolicyHash: req.PolicyHash, ScopeHash: iss.Claims.TokenScopeHash,
		TokenHash: iss.TokenHash, Status: store.JobOpen, Labels: labels, Budget: budget, CreatedAt: now,
		ExpiresAt: time.Unix(iss.Claims.Exp, 0)}
	if err := evidence.Check(s.secrets, id, labels, budget); err != nil {
		return nil, evidence.Refused(err)
	}
	if err := s.st.CreateJob(ctx, job); err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "cannot record the job").Wrap(err)
	}
	if s.onChange != nil {
		s.onChange(job)
	}
	if decision != nil || len(labelMap) > 0 {
		// The job's first event: its labels and the job:start decision.
		if _, err := s.AppendEvent(ctx, id, EventJobStarted, startedPayload(scopes, labelMap, decision, iss.Claims.Exp-iss.Claims.Iat)); err != nil {
			// The job cannot be evidenced as started: it is closed again.
			s.issuer.Revoke(context.WithoutCancel(ctx), iss.TokenHash, "job_start_failed", "jobs", id, job.ExpiresAt)
			return nil, err
		}
	}
	s.log.InfoContext(ctx, "job started", slog.String("job_id", id), slog.String("agent", req.AgentDID), slog.String("policy_hash", req.PolicyHash))
	v, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Started{Job: v, Token: iss.Token, TokenHash: iss.TokenHash, ExpiresAt: job.ExpiresAt.UTC().Format(time.RFC3339)}, nil
}

// View is a job as the API shows it.
type View struct {
	ID         string          `json:"id"`
	Status     string          `json:"status"`
	AgentDID   string          `json:"agent_did"`
	PolicyHash string          `json:"policy_hash_b64u"`
	ScopeHash  string          `json:"token_scope_hash_b64u"`
	TokenHash  string          `json:"token_hash"`
	Labels     json.RawMessage `json:"labels"`
	Budget     json.RawMessage `json:"budget"`
	CreatedAt  string          `json:"created_at"`
	ExpiresAt  string          `json:"expires_at"`
	FinishedAt string          `json:"finished_at,omitempty"`
	Events     int             `json:"events"`
	Evidence   map[string]int  `json:"evidence"`
	Bundles    []BundleRef     `json:"bundles,omitempty"`
	Custodial  bool            `json:"custodial_agent"`
}

// BundleRef names a stored bundle.
type BundleRef struct {
	Part     int    `json:"part"`
	BundleID string `json:"bundle_id"`
	Kind     string `json:"kind"`
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Get returns a job with its counts.
func (s *Service) Get(ctx context.Context, id string) (*View, error) {
	j, err := s.st.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jerr(404, "JOB_NOT_FOUND", "no job %s", id)
	}
	if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	evs, err := s.st.ListEvents(ctx, id)
	if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	items, err := s.st.ListItems(ctx, id)
	if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	v := &View{ID: j.ID, Status: j.Status, AgentDID: j.AgentDID, PolicyHash: j.PolicyHash, ScopeHash: j.ScopeHash, TokenHash: j.TokenHash,
		Labels: j.Labels, Budget: j.Budget, CreatedAt: ts(j.CreatedAt), ExpiresAt: ts(j.ExpiresAt), Events: len(evs),
		Evidence: map[string]int{}}
	if j.Status == store.JobFinished {
		v.FinishedAt = ts(j.FinishedAt)
	}
	for _, it := range items {
		v.Evidence[it.Kind]++
	}
	if _, err := s.st.GetAgent(ctx, j.AgentDID); err == nil {
		v.Custodial = true
	}
	bs, _ := s.st.ListBundles(ctx, id)
	for _, b := range bs {
		kind := "proof_bundle"
		if b.Part < 0 {
			kind = "aggregate_bundle"
		}
		v.Bundles = append(v.Bundles, BundleRef{Part: b.Part, BundleID: b.BundleID, Kind: kind})
	}
	return v, nil
}

// List lists jobs.
func (s *Service) List(ctx context.Context, after, status string, limit int) ([]store.Job, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return s.st.ListJobs(ctx, after, status, limit)
}

// Event decodes a stored event.
func Event(ev store.JobEvent) (bundle.Event, error) {
	var e bundle.Event
	err := json.Unmarshal(ev.Event, &e)
	return e, err
}

// CreateAgent makes a custodial agent identity: the key is generated and
// sealed here and never leaves the service.
func (s *Service) CreateAgent(ctx context.Context, name string) (store.Agent, error) {
	k, err := signer.Generate()
	if err != nil {
		return store.Agent{}, err
	}
	sealed, err := s.custody.Seal(k)
	if err != nil {
		return store.Agent{}, err
	}
	a := store.Agent{DID: k.DID(), Name: strings.TrimSpace(name), SealedKey: sealed, CreatedAt: s.now()}
	if err := s.st.PutAgent(ctx, a); err != nil {
		return store.Agent{}, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	return a, nil
}

// ListAgents lists custodial agents.
func (s *Service) ListAgents(ctx context.Context) ([]store.Agent, error) { return s.st.ListAgents(ctx) }

// segmentEvidence is what one run (segment) holds.
type segmentEvidence struct {
	seg      int
	events   []store.JobEvent
	items    []store.JobItem
	runID    string
	chain    []bundle.Event
	payloads []json.RawMessage
	// unanchored are the side-effect and human-approval records (as
	// stored) the segment's bundle cannot list; its clawea_unanchored
	// entry commits to them and they are returned beside it.
	unanchored [][]byte
}

// FinishResult is the outcome of Finish.
type FinishResult struct {
	Job        *View             `json:"job"`
	Status     string            `json:"status"` // finished or awaiting_signature
	SignBy     string            `json:"sign_by,omitempty"`
	Payloads   []json.RawMessage `json:"payloads,omitempty"` // to sign, when awaiting_signature
	Bundles    []FinishedBundle  `json:"bundles,omitempty"`
	Verified   string            `json:"verification,omitempty"`
	Unanchored int               `json:"unanchored_records,omitempty"`
	// ResultsMissing counts the runtime tool calls the policy allowed
	// whose result the runtime never reported (recorded at finish as a
	// runtime_results_missing event).
	ResultsMissing int `json:"runtime_results_missing,omitempty"`
}

// FinishedBundle is one stored bundle with its verdict.
type FinishedBundle struct {
	Part       int             `json:"part"`
	BundleID   string          `json:"bundle_id"`
	Kind       string          `json:"kind"`
	Envelope   json.RawMessage `json:"envelope"`
	URM        json.RawMessage `json:"urm,omitempty"`
	TrustPulse json.RawMessage `json:"trust_pulse,omitempty"`
	// UnanchoredRecords are the bundle's side-effect and human-approval
	// records that no model call of its run anchors: the bundle's
	// metadata.clawea_unanchored commits to them (bundle.UnanchoredRoot).
	UnanchoredRecords []json.RawMessage `json:"unanchored_records,omitempty"`
}

// Finish closes a job and turns its evidence into signed bundles. For a
// custodial agent the service signs; otherwise the first call returns the
// payloads to sign (status awaiting_signature) and a second call passes the
// agent's signed envelopes in signed. The finished bundles are verified in
// strict mode before they are stored; then the job's token is revoked.
func (s *Service) Finish(ctx context.Context, jobID string, signed []json.RawMessage) (*FinishResult, error) {
	j, err := s.st.GetJob(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, jerr(404, "JOB_NOT_FOUND", "no job %s", jobID)
	}
	if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	switch j.Status {
	case store.JobFinished:
		return nil, jerr(409, "JOB_FINISHED", "job %s is already finished", jobID)
	case store.JobOpen:
		// An empty job stays open: there is nothing to prove yet.
		evs, err := s.st.ListEvents(ctx, jobID)
		if err != nil {
			return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
		} else if len(evs) == 0 {
			return nil, jerr(409, "JOB_EMPTY", "job %s has no events; append at least one before finishing", jobID)
		}
		if err := s.recordMissingResults(ctx, jobID, evs); err != nil {
			return nil, err
		}
		if err := s.st.SetJobStatus(ctx, jobID, store.JobOpen, store.JobFinishing, s.now()); err != nil {
			if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
				return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
			}
			return nil, jerr(409, "JOB_NOT_OPEN", "job %s changed state", jobID).Wrap(err)
		}
		if j, err = s.st.GetJob(ctx, jobID); err != nil {
			return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
		}
		if s.onChange != nil {
			s.onChange(j)
		}
	}
	segs, unanchored, err := s.build(ctx, j)
	if err != nil {
		return nil, err
	}
	var payloads []json.RawMessage
	for _, sg := range segs {
		payloads = append(payloads, sg.payloads...)
	}
	var envs []*envelope.Envelope
	switch agent, aerr := s.st.GetAgent(ctx, j.AgentDID); {
	case aerr == nil:
		key, err := s.custody.Open(agent.DID, agent.SealedKey)
		if err != nil {
			return nil, jerr(500, "AGENT_KEY_UNAVAILABLE", "the agent's key is unavailable").Wrap(err)
		}
		for _, p := range payloads {
			env, err := envelope.Sign(key, envelope.TypeBundle, mustValue(p), envelope.Options{IssuedAt: j.FinishedAt})
			if err != nil {
				return nil, err
			}
			envs = append(envs, env)
		}
	case !errors.Is(aerr, store.ErrNotFound):
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(aerr)
	case len(signed) == 0:
		v, _ := s.Get(ctx, jobID)
		return &FinishResult{Job: v, Status: "awaiting_signature", SignBy: j.AgentDID, Payloads: payloads}, nil
	default:
		if len(signed) != len(payloads) {
			return nil, jerr(400, "SIGNATURES_MISMATCH", "expected %d signed bundles, got %d", len(payloads), len(signed))
		}
		for i, raw := range signed {
			env, err := checkSigned(raw, payloads[i], j.AgentDID)
			if err != nil {
				return nil, jerr(400, "SIGNATURE_REJECTED", "signed bundle %d does not verify", i).Wrap(err)
			}
			envs = append(envs, env)
		}
	}
	return s.complete(ctx, j, segs, envs, unanchored)
}

func mustValue(raw []byte) canon.Value {
	v, _ := canon.Parse(raw)
	return v
}

// checkSigned accepts an agent-signed envelope only if its payload is the
// prepared one, the agent signed it, and it verifies.
func checkSigned(raw, payload json.RawMessage, agent string) (*envelope.Envelope, error) {
	v, err := envelope.Parse(raw)
	if err != nil {
		return nil, err
	}
	if err := envelope.Verify(&v, false); err != nil {
		return nil, err
	}
	if did, _ := v.StringOf("signer_did"); did != agent {
		return nil, fmt.Errorf("signed by %s, not the job's agent %s", did, agent)
	}
	if t, _ := v.StringOf("envelope_type"); t != envelope.TypeBundle {
		return nil, errors.New("not a proof_bundle envelope")
	}
	want := mustValue(payload)
	if !bytes.Equal(canon.AppendCompact(nil, v.Get("payload")), canon.AppendCompact(nil, &want)) {
		return nil, errors.New("the signed payload is not the prepared payload")
	}
	var env envelope.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// build groups a job's events and evidence by segment and prepares each
// segment's bundle payload (deterministic for a finishing job).
func (s *Service) build(ctx context.Context, j store.Job) ([]*segmentEvidence, int, error) {
	evs, err := s.st.ListEvents(ctx, j.ID)
	if err != nil {
		return nil, 0, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	items, err := s.st.ListItems(ctx, j.ID)
	if err != nil {
		return nil, 0, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	var segs []*segmentEvidence
	bySeg := map[int]*segmentEvidence{}
	get := func(n int) *segmentEvidence {
		if sg, ok := bySeg[n]; ok {
			return sg
		}
		sg := &segmentEvidence{seg: n, runID: evidence.RunID(j.ID, n)}
		bySeg[n] = sg
		segs = append(segs, sg)
		return sg
	}
	if len(evs) == 0 {
		return nil, 0, jerr(409, "JOB_EMPTY", "job %s has no events; append at least one before finishing", j.ID)
	}
	for _, ev := range evs {
		sg := get(ev.Segment)
		sg.events = append(sg.events, ev)
		e, err := Event(ev)
		if err != nil {
			return nil, 0, jerr(500, "EVENT_CORRUPTED", "event %d is corrupted", ev.Seq).Wrap(err)
		}
		sg.chain = append(sg.chain, e)
	}
	for _, it := range items {
		sg := get(it.Segment)
		sg.items = append(sg.items, it)
	}
	slices.SortFunc(segs, func(a, b *segmentEvidence) int { return a.seg - b.seg })
	var totals store.Usage
	for _, it := range items {
		if it.Kind == evidence.KindGatewayReceipt {
			var r struct {
				Payload struct {
					In  int64 `json:"tokens_input"`
					Out int64 `json:"tokens_output"`
				} `json:"payload"`
			}
			json.Unmarshal(it.JSON, &r)
			totals.Requests++
			totals.TokensIn += r.Payload.In
			totals.TokensOut += r.Payload.Out
		}
	}
	unanchored := 0
	for _, sg := range segs {
		p, err := s.payload(j, sg, len(segs), totals)
		if err != nil {
			return nil, 0, err
		}
		unanchored += len(sg.unanchored)
		raw, err := canon.Marshal(p)
		if err != nil {
			return nil, 0, err
		}
		if err := checkLimits(p, raw, sg.seg); err != nil {
			return nil, 0, err
		}
		sg.payloads = []json.RawMessage{raw}
	}
	return segs, unanchored, nil
}

// payload builds a segment's bundle payload. totals are the job's token
// counts over every segment: a rate-limit claim states a token limit only
// when the whole job kept within it (a streamed call's input can overshoot
// a budget that was not yet reached when it began), and records an overrun
// in the metadata instead.
//
// Side-effect and approval records must be anchored to a span declared by
// a gateway receipt of the same bundle (the reference's causal rule).
// Records that cannot be are left out of the bundle's lists; the metadata
// gets one fixed-size clawea_unanchored entry committing to them, and they
// are kept in sg.unanchored to travel beside the bundle. Every tool call
// they describe is in the bundle anyway, as its signed tool receipt.
func (s *Service) payload(j store.Job, sg *segmentEvidence, parts int, totals store.Usage) (*bundle.Payload, error) {
	p := &bundle.Payload{Version: "1", BundleID: "bundle_" + sg.runID, AgentDID: j.AgentDID, EventChain: sg.chain,
		Metadata: &bundle.Metadata{Harness: &s.harness, PolicyHash: j.PolicyHash, TokenScopeHash: j.ScopeHash, JobID: j.ID}}
	if parts > 1 {
		p.Metadata.Part = &bundle.Part{Index: sg.seg, Count: parts}
	}
	var tokensIn, tokensOut int64
	for _, it := range sg.items {
		switch it.Kind {
		case evidence.KindGatewayReceipt, evidence.KindToolReceipt:
			var env envelope.Envelope
			if err := json.Unmarshal(it.JSON, &env); err != nil {
				return nil, jerr(500, "EVIDENCE_CORRUPTED", "%s %s is corrupted", it.Kind, it.ItemID).Wrap(err)
			}
			if it.Kind == evidence.KindGatewayReceipt {
				p.Receipts = append(p.Receipts, &env)
				if n := env.Payload.Get("tokens_input"); n.IsNumber() {
					tokensIn += int64(n.Num)
				}
				if n := env.Payload.Get("tokens_output"); n.IsNumber() {
					tokensOut += int64(n.Num)
				}
			} else {
				p.ToolReceipts = append(p.ToolReceipts, &env)
			}
		}
	}
	rs, err := splitRecords(sg.items)
	if err != nil {
		return nil, err
	}
	p.SideEffects, p.HumanApprovals, sg.unanchored = rs.sideEffects, rs.approvals, rs.unanchored
	if p.Metadata.Unanchored, err = bundle.NewUnanchored(rs.unanchored); err != nil {
		return nil, jerr(500, "EVIDENCE_CORRUPTED", "segment %d has a corrupted record", sg.seg).Wrap(err)
	}
	// The job's labels (a label named budget_overrun is refused at start).
	labels := map[string]any{}
	var jobLabels map[string]string
	if json.Unmarshal(j.Labels, &jobLabels) == nil {
		for k, v := range jobLabels {
			labels[k] = v
		}
	}
	b := store.ParseBudget(j.Budget)
	if b.MaxRequests > 0 || b.MaxTokensInput > 0 || b.MaxTokensOutput > 0 {
		maxReq := b.MaxRequests
		overrun := map[string]any{}
		if maxReq == 0 || totals.Requests > maxReq {
			// The claim format needs a request limit; without one, the
			// job's own total is the truthful bound (the same in every
			// member, as an aggregate requires). The model gateway
			// reserves each call's request, input and output before
			// forwarding it, so usage stays within every limit; should a
			// total still exceed one (a provider reporting more output
			// than it was capped at, or more input than the body's size
			// reserved, e.g. content it adds itself), that limit would be
			// untrue as a claim: the total is claimed, or the limit left
			// out, and the overrun recorded, so the job still finishes.
			if maxReq > 0 {
				overrun["requests"] = map[string]int64{"max": maxReq, "observed": totals.Requests}
			}
			maxReq = totals.Requests
		}
		claim := bundle.RateLimitClaim{Version: "1", Scope: "agent", ScopeKey: j.AgentDID,
			WindowStart: envelope.FormatTime(j.CreatedAt), WindowEnd: envelope.FormatTime(j.FinishedAt),
			MaxRequests: maxReq, ObservedRequests: int64(len(p.Receipts)), RunID: sg.runID}
		if b.MaxTokensInput > 0 {
			if totals.TokensIn <= b.MaxTokensInput {
				claim.MaxTokensInput, claim.ObservedTokensInput = &b.MaxTokensInput, &tokensIn
			} else {
				overrun["tokens_input"] = map[string]int64{"max": b.MaxTokensInput, "observed": totals.TokensIn}
			}
		}
		if b.MaxTokensOutput > 0 {
			if totals.TokensOut <= b.MaxTokensOutput {
				claim.MaxTokensOutput, claim.ObservedTokensOutput = &b.MaxTokensOutput, &tokensOut
			} else {
				overrun["tokens_output"] = map[string]int64{"max": b.MaxTokensOutput, "observed": totals.TokensOut}
			}
		}
		if len(overrun) > 0 {
			labels["budget_overrun"] = overrun
		}
		p.RateLimitClaims = []bundle.RateLimitClaim{claim}
	}
	if len(labels) > 0 {
		p.Metadata.Labels = labels
	}
	_, _, urmHash, err := s.urm(j, sg, p)
	if err != nil {
		return nil, err
	}
	// Members of an aggregate carry no URM reference: the aggregate's
	// verification cannot be given the members' URM documents, so a
	// reference there would fail as URM_MISSING. The URM is still written.
	if parts == 1 {
		p.URM = &bundle.URMRef{Version: "1", URMID: "urm_" + sg.runID, ResourceType: "urm", ResourceHash: urmHash}
	}
	return p, nil
}

// urm builds a segment's URM and Trust Pulse.
func (s *Service) urm(j store.Job, sg *segmentEvidence, p *bundle.Payload) ([]byte, []byte, string, error) {
	tools := map[string]int{}
	// Policy lifecycle changes that stopped the job (the registry's
	// policy_retired and policy_frozen events) are shown with their payload
	// (operator, reason, signed statement's hash), which the event's
	// payload hash binds.
	var lifecycle []map[string]any
	for _, ev := range sg.events {
		if ev.EventType == "policy_retired" || ev.EventType == "policy_frozen" {
			lifecycle = append(lifecycle, map[string]any{"event_id": ev.EventID, "event_type": ev.EventType,
				"event_hash_b64u": ev.EventHash, "payload": json.RawMessage(ev.Payload)})
		}
		if ev.EventType != "tool_call" {
			continue
		}
		var pl struct {
			Tool string `json:"tool"`
		}
		if json.Unmarshal(ev.Payload, &pl) == nil && pl.Tool != "" {
			tools[pl.Tool]++
		}
	}
	started := sg.events[0].CreatedAt
	tp := bundle.NewTrustPulse(sg.runID, j.AgentDID, started, j.FinishedAt, tools)
	tpRaw, err := canon.Marshal(tp)
	if err != nil {
		return nil, nil, "", err
	}
	u := &bundle.URM{URMID: "urm_" + sg.runID, RunID: sg.runID, AgentDID: j.AgentDID, IssuedAt: envelope.FormatTime(j.FinishedAt),
		Harness:       bundle.URMHarness{ID: s.harness.ID, Version: s.harness.Version, Runtime: s.harness.Runtime},
		Inputs:        []bundle.URMResource{{Type: "work_policy_contract", Hash: j.PolicyHash, ContentType: "application/json"}},
		Outputs:       []bundle.URMResource{{Type: "trust_pulse", Hash: b64u.SHA256(tpRaw), ContentType: "application/json"}},
		ChainRootHash: sg.chain[0].EventHash, ReceiptsRoot: bundle.ReceiptsRoot(p.Receipts),
		Metadata: map[string]any{"trust_pulse": map[string]any{"hash_b64u": b64u.SHA256(tpRaw)}, "job_id": j.ID}}
	if len(lifecycle) > 0 {
		u.Metadata["clawea_policy_lifecycle"] = lifecycle
	}
	raw, hash, err := u.JSON()
	return raw, tpRaw, hash, err
}

// complete stores signed bundles (and the aggregate for multi-part jobs)
// after verifying them, marks the job finished and revokes its token.
func (s *Service) complete(ctx context.Context, j store.Job, segs []*segmentEvidence, envs []*envelope.Envelope, unanchored int) (*FinishResult, error) {
	opt := verify.Options{Strict: true, Config: s.trust, Now: j.FinishedAt.Add(time.Second), MaxBytes: -1}
	var out []FinishedBundle
	var records []store.Bundle
	for i, sg := range segs {
		env := envs[i]
		raw, err := env.JSON()
		if err != nil {
			return nil, err
		}
		pv := env.Payload
		payload := canon.AppendCompact(nil, &pv)
		var p bundle.Payload
		if err := json.Unmarshal(payload, &p); err != nil {
			return nil, err
		}
		urm, tp, _, err := s.urm(j, sg, &p)
		if err != nil {
			return nil, err
		}
		o := opt
		o.URM = urm
		if res := verify.Check(raw, verify.KindProofBundle, o); res.Status != verify.StatusPass {
			s.log.ErrorContext(ctx, "finished bundle failed verification", slog.String("job_id", j.ID), slog.String("code", res.ReasonCode), slog.String("reason", res.Reason))
			return nil, jerr(500, "BUNDLE_SELF_CHECK_FAILED", "bundle %d does not verify: %s %s", i, res.ReasonCode, res.Reason)
		}
		if err := bundle.CheckUnanchored(p.Metadata.Unanchored, sg.unanchored); err != nil {
			return nil, jerr(500, "BUNDLE_SELF_CHECK_FAILED", "bundle %d does not match its records", i).Wrap(err)
		}
		out = append(out, FinishedBundle{Part: sg.seg, BundleID: p.BundleID, Kind: "proof_bundle", Envelope: raw, URM: urm, TrustPulse: tp,
			UnanchoredRecords: rawList(sg.unanchored)})
		records = append(records, store.Bundle{JobID: j.ID, Part: sg.seg, BundleID: p.BundleID, Envelope: raw, URM: urm, TrustPulse: tp, CreatedAt: s.now()})
	}
	if len(envs) > 1 {
		agg, err := bundle.NewAggregate(s.key, "aggregate_"+j.ID, envs, j.FinishedAt)
		if err != nil {
			return nil, jerr(500, "AGGREGATE_FAILED", "the aggregate bundle could not be built").Wrap(err)
		}
		raw, err := agg.JSON()
		if err != nil {
			return nil, err
		}
		if res := verify.Check(raw, verify.KindAggregateBundle, opt); res.Status != verify.StatusPass {
			return nil, jerr(500, "BUNDLE_SELF_CHECK_FAILED", "aggregate does not verify: %s %s", res.ReasonCode, res.Reason)
		}
		out = append([]FinishedBundle{{Part: -1, BundleID: "aggregate_" + j.ID, Kind: "aggregate_bundle", Envelope: raw}}, out...)
		records = append(records, store.Bundle{JobID: j.ID, Part: -1, BundleID: "aggregate_" + j.ID, Envelope: raw, CreatedAt: s.now()})
	}
	for _, b := range records {
		// Every record in the bundle passed the gate when it was written.
		// A secret found now became one after a record held its value (the
		// agent wrote the value, then stored and read it as a secret), or
		// is ordinary text. Refusing would leave the job unfinished and its
		// evidence unbundled — what an agent hiding its record would want —
		// so the job finishes and the log says which secret it was.
		if err := evidence.Check(s.secrets, j.ID, b.Envelope, b.URM, b.TrustPulse); err != nil {
			s.log.WarnContext(ctx, "a finished bundle holds a value registered as a secret after it was recorded", slog.String("job_id", j.ID), slog.String("code", evidence.CodeSecretRefused), slog.String("error", err.Error()))
		}
		if err := s.st.PutBundle(ctx, b); err != nil {
			return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
		}
	}
	if err := s.st.SetJobStatus(ctx, j.ID, store.JobFinishing, store.JobFinished, s.now()); err != nil {
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
		}
		return nil, jerr(409, "JOB_NOT_OPEN", "job %s changed state", j.ID).Wrap(err)
	}
	if _, _, err := s.issuer.Revoke(ctx, j.TokenHash, "job_finished", "jobs", j.ID, j.ExpiresAt); err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "job finished but its token could not be revoked").Wrap(err)
	}
	if fj, err := s.st.GetJob(ctx, j.ID); err == nil && s.onChange != nil {
		s.onChange(fj)
	}
	s.log.InfoContext(ctx, "job finished", slog.String("job_id", j.ID), slog.Int("bundles", len(out)))
	v, _ := s.Get(ctx, j.ID)
	return &FinishResult{Job: v, Status: "finished", Bundles: out, Verified: "PASS", Unanchored: unanchored, ResultsMissing: resultsMissing(segs)}, nil
}

// Bundles returns a finished job's stored bundles.
func (s *Service) Bundles(ctx context.Context, jobID string) ([]store.Bundle, error) {
	return s.st.ListBundles(ctx, jobID)
}

// Key returns the service's signing key (aggregates, exports).
func (s *Service) Key() signer.Signer { return s.key }

// Export is an offline audit package of a finished job.
type Export struct {
	JobID string `json:"job_id"`
	// ExportBundle wraps the proof bundle of a single-part job, signed by
	// the job service (export_bundle.v1); multi-part jobs export their
	// aggregate instead.
	ExportBundle json.RawMessage  `json:"export_bundle,omitempty"`
	Bundles      []FinishedBundle `json:"bundles"`
	SignerDID    string           `json:"signer_did"`
}

// Export packages a finished job's evidence: its bundles, each with the
// records that travel beside it (read back from the job's evidence and
// checked against the bundle's clawea_unanchored entry).
func (s *Service) Export(ctx context.Context, jobID string) (*Export, error) {
	// A job still finishing may hold some of its bundles only (a finish
	// that failed while storing them): nothing is exported until it is
	// finished.
	switch j, err := s.st.GetJob(ctx, jobID); {
	case errors.Is(err, store.ErrNotFound):
		return nil, jerr(404, "JOB_NOT_FOUND", "no job %s", jobID)
	case err != nil:
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	case j.Status != store.JobFinished:
		return nil, jerr(404, "BUNDLES_NOT_FOUND", "job %s is %s, not finished: it has no bundles to export", jobID, j.Status)
	}
	bs, err := s.st.ListBundles(ctx, jobID)
	if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	if len(bs) == 0 {
		return nil, jerr(404, "BUNDLES_NOT_FOUND", "job %s has no bundles (not finished?)", jobID)
	}
	beside, err := s.unanchoredBySegment(ctx, jobID)
	if err != nil {
		return nil, err
	}
	x := &Export{JobID: jobID, SignerDID: s.key.DID()}
	for _, b := range bs {
		fb := FinishedBundle{Part: b.Part, BundleID: b.BundleID, Kind: "proof_bundle", Envelope: b.Envelope}
		if b.Part < 0 {
			fb.Kind = "aggregate_bundle"
		} else {
			fb.URM, fb.TrustPulse = b.URM, b.TrustPulse
			var env struct {
				Payload struct {
					Metadata struct {
						Unanchored *bundle.Unanchored `json:"clawea_unanchored"`
					} `json:"metadata"`
				} `json:"payload"`
			}
			if err := json.Unmarshal(b.Envelope, &env); err != nil {
				return nil, jerr(500, "BUNDLE_CORRUPTED", "bundle %d is corrupted", b.Part).Wrap(err)
			}
			if err := bundle.CheckUnanchored(env.Payload.Metadata.Unanchored, beside[b.Part]); err != nil {
				return nil, jerr(500, "BUNDLE_CORRUPTED", "bundle %d and the job's stored records disagree", b.Part).Wrap(err)
			}
			fb.UnanchoredRecords = rawList(beside[b.Part])
		}
		x.Bundles = append(x.Bundles, fb)
	}
	if len(bs) == 1 {
		var env envelope.Envelope
		if err := json.Unmarshal(bs[0].Envelope, &env); err != nil {
			return nil, jerr(500, "BUNDLE_CORRUPTED", "a stored bundle is corrupted").Wrap(err)
		}
		exp, err := bundle.NewExport(s.key, "export_"+jobID, bundle.ExportArtifacts{ProofBundle: &env}, s.now())
		if err != nil {
			return nil, jerr(500, "EXPORT_FAILED", "the export could not be built").Wrap(err)
		}
		raw, err := canon.Marshal(exp)
		if err != nil {
			return nil, err
		}
		if err := evidence.Check(s.secrets, jobID, raw); err != nil {
			// The export wraps the finished bundle: see complete.
			s.log.WarnContext(ctx, "an export holds a value registered as a secret after it was recorded", slog.String("job_id", jobID), slog.String("code", evidence.CodeSecretRefused), slog.String("error", err.Error()))
		}
		x.ExportBundle = raw
	}
	return x, nil
}
