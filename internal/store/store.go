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

// IssuerKey is a public key of the token issuer. The active key has no
// NotAfter; a retired key verifies until NotAfter (the rotation overlap).
type IssuerKey struct {
	Kid       string
	PublicKey []byte
	CreatedAt time.Time
	NotAfter  time.Time // zero: active
}

// IssuedToken records a token the issuer minted.
type IssuedToken struct {
	TokenHash  string // lowercase hex SHA-256 of the compact token
	JTI        string
	Sub        string
	JobID      string
	ScopeHash  string
	PolicyHash string
	Kid        string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	Claims     []byte // the payload JSON
}

// Revocation records a revoked token. Seq orders the revocation feed.
type Revocation struct {
	Seq       int64
	TokenHash string
	Reason    string
	RevokedBy string
	JobID     string
	RevokedAt time.Time
	ExpiresAt time.Time // the token's own expiry; the record can go after it
}

// Tokens stores issuer keys, issued tokens and revocations.
type Tokens interface {
	PutIssuerKey(ctx context.Context, k IssuerKey) error
	ListIssuerKeys(ctx context.Context) ([]IssuerKey, error)
	PutIssuedToken(ctx context.Context, t IssuedToken) error
	GetIssuedToken(ctx context.Context, tokenHash string) (IssuedToken, error)
	// Revoke records r unless the token is already revoked; it returns the
	// stored record and whether it existed.
	Revoke(ctx context.Context, r Revocation) (Revocation, bool, error)
	GetRevocation(ctx context.Context, tokenHash string) (Revocation, error)
	// RevocationsSince lists revocations with Seq > after, in Seq order.
	RevocationsSince(ctx context.Context, after int64, limit int) ([]Revocation, error)
}

// Job states.
const (
	JobOpen      = "open"
	JobFinishing = "finishing" // closed to new events, waiting for the agent's signature
	JobFinished  = "finished"
)

// Job is a unit of authority and of evidence.
type Job struct {
	ID         string
	AgentDID   string
	PolicyHash string
	ScopeHash  string // token_scope_hash_b64u of the job's token
	TokenHash  string
	Status     string
	Labels     []byte // JSON object
	Budget     []byte // JSON object
	CreatedAt  time.Time
	ExpiresAt  time.Time
	FinishedAt time.Time
	Seq        int64 // change sequence, for followers
}

// JobEvent is one event of a job's hash chain. Segment numbers the run
// (a job longer than a bundle allows is several runs); Index counts events
// within the segment from 0.
type JobEvent struct {
	JobID     string
	Seq       int64 // position in the job, from 1
	Segment   int
	Index     int
	EventID   string
	EventType string
	EventHash string
	Event     []byte // the event object (compact JSON)
	Payload   []byte // the event payload (compact JSON), kept for summaries
	// Anchor is the span id that roots the segment's causal graph (the
	// first model call's span), carried from event to event; "" until a
	// model call declares one.
	Anchor    string
	CreatedAt time.Time
}

// JobItem is evidence collected during a job: a receipt envelope or an
// inline record.
type JobItem struct {
	JobID     string
	Seq       int64
	Segment   int
	Kind      string // gateway_receipt, tool_receipt, side_effect, human_approval
	ItemID    string
	EventHash string
	JSON      []byte
	CreatedAt time.Time
}

// Bundle is a job's signed evidence: a proof bundle per segment (Part >=
// 0) and, for multi-segment jobs, the aggregate (Part -1).
type Bundle struct {
	JobID      string
	Part       int
	BundleID   string
	Envelope   []byte
	URM        []byte
	TrustPulse []byte
	CreatedAt  time.Time
}

// Jobs stores jobs, their events, evidence and bundles.
type Jobs interface {
	CreateJob(ctx context.Context, j Job) error
	GetJob(ctx context.Context, id string) (Job, error)
	// ListJobs lists jobs by id after the given one; status "" means any.
	ListJobs(ctx context.Context, after, status string, limit int) ([]Job, error)
	// JobsChangedSince lists jobs whose Seq > after, in Seq order.
	JobsChangedSince(ctx context.Context, after int64, limit int) ([]Job, error)
	// SetJobStatus moves a job from one status to another (compare and
	// swap); ErrConflict when it is not in from. Moving to finishing or
	// finished sets FinishedAt to at.
	SetJobStatus(ctx context.Context, id, from, to string, at time.Time) error
	// AppendEvent appends to an open job's chain atomically: next gets the
	// last event (nil for the first; a back end may leave out its Event and
	// Payload bytes) and returns the new one with evidence
	// items bound to it, stored in the same transaction. ErrConflict when
	// the job is not open or an item repeats within the append (a back end
	// may also refuse an id some earlier event carried; callers give
	// evidence unique ids). ListItems orders items by the event they name.
	// next runs inside the transaction and must not use the store.
	AppendEvent(ctx context.Context, jobID string, next func(last *JobEvent) (JobEvent, []JobItem, error)) (JobEvent, error)
	ListEvents(ctx context.Context, jobID string) ([]JobEvent, error)
	// AddItem records evidence for an open job; ErrConflict when closed.
	AddItem(ctx context.Context, it JobItem) (JobItem, error)
	ListItems(ctx context.Context, jobID string) ([]JobItem, error)
	PutBundle(ctx context.Context, b Bundle) error
	ListBundles(ctx context.Context, jobID string) ([]Bundle, error)
}

// PreparedAppender is implemented by back ends that can take an event, and
// its evidence, built in advance on the head the caller last saw (head nil:
// the job had no events), and append it in one step when that is still the
// job's last event. Otherwise, and whenever the job is not open, they do
// what AppendEvent does with next, which reports errors as AppendEvent
// does. Callers use it when a back end has it.
type PreparedAppender interface {
	AppendPrepared(ctx context.Context, jobID string, head *JobEvent, ev JobEvent, items []JobItem,
		next func(last *JobEvent) (JobEvent, []JobItem, error)) (JobEvent, error)
}

// ErrLimit is returned when an addition would take a counter over its
// limit.
var ErrLimit = errors.New("store: limit reached")

// Usage counts a job's model calls and tokens.
type Usage struct {
	Requests  int64
	TokensIn  int64
	TokensOut int64
}

// Exceeds reports whether u is over limit in a dimension limit sets (> 0).
func (u Usage) Exceeds(limit Usage) bool {
	return limit.Requests > 0 && u.Requests > limit.Requests ||
		limit.TokensIn > 0 && u.TokensIn > limit.TokensIn ||
		limit.TokensOut > 0 && u.TokensOut > limit.TokensOut
}

// UsageCounters keep per-job usage for budgets, shared by every gateway
// instance on the store.
type UsageCounters interface {
	// AddUsage adds d to the job's usage unless the result Exceeds limit
	// (then ErrLimit, nothing changes, and the usage it was refused
	// against is returned); it returns the new usage. d may be negative
	// (a reservation given back or settled lower; pass a zero limit).
	AddUsage(ctx context.Context, jobID string, d, limit Usage) (Usage, error)
	GetUsage(ctx context.Context, jobID string) (Usage, error)
}

// Gateway call states.
const (
	CallInFlight = "in_flight"
	CallDone     = "done"
)

// GatewayCall is a model call made with an idempotency key (the receipt's
// nonce): what a replay returns and what receipt recovery serves. Keys are
// scoped to their job: a record is named by (JobID, Nonce), and one job's
// key says nothing about another's.
type GatewayCall struct {
	Nonce       string
	JobID       string
	Fingerprint string
	Status      string // in_flight or done
	HTTPStatus  int
	ContentType string
	Body        []byte // the response as sent (may be empty when too large to keep)
	Receipt     []byte // the signed receipt envelope (compact JSON)
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// GatewayCalls stores idempotency records, each under its job id and
// nonce.
type GatewayCalls interface {
	// ClaimCall inserts c (in flight) unless the job c.JobID has a call
	// with its nonce; it returns the stored record and whether c was
	// inserted.
	ClaimCall(ctx context.Context, c GatewayCall) (GatewayCall, bool, error)
	// CompleteCall records the outcome of a claimed call (c.JobID,
	// c.Nonce); ErrNotFound when there is none.
	CompleteCall(ctx context.Context, c GatewayCall) error
	// ReleaseCall forgets an in-flight claim whose call never reached the
	// provider, so that a retry may proceed.
	ReleaseCall(ctx context.Context, jobID, nonce string) error
	// GetCall returns the job's call with nonce, or ErrNotFound.
	GetCall(ctx context.Context, jobID, nonce string) (GatewayCall, error)
}

// Approval states.
const (
	ApprovalPending = "pending"
	ApprovalAllowed = "allowed"
	ApprovalDenied  = "denied"
	ApprovalExpired = "expired"
	ApprovalUsed    = "used" // an allowed approval consumed by the call it allowed
)

// Approval is a human decision a tool call waits for, bound to the job, the
// tool, the hash of its arguments and the pinned policy.
type Approval struct {
	ID         string
	JobID      string
	Tool       string
	Action     string
	Resource   string
	ArgsHash   string
	PolicyHash string
	Status     string
	Summary    []byte // JSON shown to approvers (no argument values)
	Request    []byte // JSON: the receipt payloads prepared for each decision
	Decision   []byte // JSON: the decision as recorded (signed receipt, approver)
	Approver   string // did:key of the approver who decided
	CreatedAt  time.Time
	ExpiresAt  time.Time
	DecidedAt  time.Time
}

// Approvals stores approvals.
type Approvals interface {
	// CreateApproval inserts a pending approval unless one is pending for
	// the same job, tool, arguments and policy; it returns the stored one
	// and whether it existed.
	CreateApproval(ctx context.Context, a Approval) (Approval, bool, error)
	GetApproval(ctx context.Context, id string) (Approval, error)
	// FindApproval returns the newest approval for a job's call (any
	// status), or ErrNotFound.
	FindApproval(ctx context.Context, jobID, tool, argsHash, policyHash string) (Approval, error)
	// ListApprovals lists approvals by id after the given one; status ""
	// means any.
	ListApprovals(ctx context.Context, status, after string, limit int) ([]Approval, error)
	// SetApprovalStatus moves an approval from one status to another
	// (compare and swap; ErrConflict when it is not in from), recording the
	// approver, decision and time when given.
	SetApprovalStatus(ctx context.Context, id, from, to, approver string, decision []byte, at time.Time) error
}

// Lockdown is the global switch that denies every mutating tool.
type Lockdown struct {
	On     bool
	By     string
	Reason string
	At     time.Time
	Seq    int64 // the change's number in the lockdown log
}

// Settings stores node-wide switches. Every change is kept in a log.
type Settings interface {
	SetLockdown(ctx context.Context, l Lockdown) (Lockdown, error)
	GetLockdown(ctx context.Context) (Lockdown, error)
	LockdownLog(ctx context.Context, limit int) ([]Lockdown, error)
}

// ConnectorSwitch is one change of a connector's switch: a denied
// connector's tools are refused by every tool gateway sharing the store
// (clawea connector deny|allow). Name is "keyvault", "servicebus" or
// "mcp:<upstream>".
type ConnectorSwitch struct {
	Name   string
	Denied bool
	By     string
	Reason string
	At     time.Time
	Seq    int64 // the change's number in the switch log
}

// ConnectorSwitches store the connector switches. Every change is kept in
// a log; the newest change of a name is its state.
type ConnectorSwitches interface {
	SetConnectorSwitch(ctx context.Context, c ConnectorSwitch) (ConnectorSwitch, error)
	// DeniedConnectors lists the names whose newest change denies them,
	// with that change, sorted by name.
	DeniedConnectors(ctx context.Context) ([]ConnectorSwitch, error)
	// ConnectorSwitchLog lists the newest changes first.
	ConnectorSwitchLog(ctx context.Context, limit int) ([]ConnectorSwitch, error)
}

// Counters keep named per-job counters (messages sent, ...).
type Counters interface {
	// AddCounter adds delta to a job's counter and returns the new value.
	AddCounter(ctx context.Context, jobID, name string, delta int64) (int64, error)
}

// Bus message states.
const (
	MsgActive     = "active"
	MsgLocked     = "locked"
	MsgDeadLetter = "dead_letter"
)

// BusMessage is a message of the local Service Bus queue.
type BusMessage struct {
	Namespace     string
	Entity        string
	Seq           int64
	MessageID     string
	Subject       string
	ContentType   string
	CorrelationID string
	Body          []byte
	Properties    []byte // JSON object
	State         string
	LockToken     string
	LockedUntil   time.Time
	DeliveryCount int
	EnqueuedAt    time.Time
	DeadReason    string
	DeadDesc      string
}

// Bus is the local message queue behind the Service Bus tools when no
// real namespace is configured.
type Bus interface {
	BusSend(ctx context.Context, m BusMessage) (BusMessage, error)
	// BusPeek lists up to max active messages without changing them.
	BusPeek(ctx context.Context, ns, entity string, max int) ([]BusMessage, error)
	// BusReceive takes up to max messages that are active or whose lock
	// expired: lockFor > 0 locks them (peek-lock) with new lock tokens,
	// lockFor == 0 deletes them (receive and delete). now decides expiry.
	BusReceive(ctx context.Context, ns, entity string, max int, lockFor time.Duration, now time.Time) ([]BusMessage, error)
	// BusSettle completes (delete), abandons (unlock) or dead-letters a
	// locked message by lock token; ErrNotFound when the lock is unknown or
	// expired.
	BusSettle(ctx context.Context, ns, entity, lockToken, action, reason, desc string, now time.Time) error
	// BusReceiveDead takes (deletes) up to max dead-lettered messages.
	BusReceiveDead(ctx context.Context, ns, entity string, max int) ([]BusMessage, error)
	// BusPurgeDead deletes every dead-lettered message of the entity.
	BusPurgeDead(ctx context.Context, ns, entity string) (int, error)
}

// Agent is an agent identity whose key the job service holds (sealed).
type Agent struct {
	DID       string
	Name      string
	SealedKey []byte
	CreatedAt time.Time
}

// Agents stores custodial agent keys.
type Agents interface {
	PutAgent(ctx context.Context, a Agent) error
	GetAgent(ctx context.Context, did string) (Agent, error)
	ListAgents(ctx context.Context) ([]Agent, error)
}

// Store is everything a back end provides.
type Store interface {
	WPCs
	Tokens
	Jobs
	Agents
	UsageCounters
	GatewayCalls
	Approvals
	Settings
	ConnectorSwitches
	Counters
	Bus
	PolicyLifecycle
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
