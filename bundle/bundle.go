// Package bundle builds the Clawsig evidence containers: the hash-chained
// event log of a run, the signed proof bundle that carries it with the
// run's receipts, the URM and Trust Pulse documents beside it, the export
// bundle (an offline audit package) and the aggregate bundle that joins
// several proof bundles.
package bundle

import (
	"errors"
	"fmt"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/signer"
)

// Event is one entry of a run's event chain. EventHash covers the fixed
// six-field header, in this order.
type Event struct {
	EventID     string  `json:"event_id"`
	RunID       string  `json:"run_id"`
	EventType   string  `json:"event_type"`
	Timestamp   string  `json:"timestamp"`
	PayloadHash string  `json:"payload_hash_b64u"`
	PrevHash    *string `json:"prev_hash_b64u"`
	EventHash   string  `json:"event_hash_b64u"`
}

// header is the hashed part of an event.
type header struct {
	EventID     string  `json:"event_id"`
	RunID       string  `json:"run_id"`
	EventType   string  `json:"event_type"`
	Timestamp   string  `json:"timestamp"`
	PayloadHash string  `json:"payload_hash_b64u"`
	PrevHash    *string `json:"prev_hash_b64u"`
}

// HashEvent computes event_hash_b64u from the header fields of e.
func HashEvent(e *Event) (string, error) {
	return b64u.SHA256(e.appendHeader(nil)), nil
}

// appendHeader writes the hashed part of an event, as canon.Marshal of
// header writes it.
func (e *Event) appendHeader(b []byte) []byte {
	field := func(b []byte, sep byte, k, v string) []byte {
		b = append(b, sep, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return canon.AppendString(b, v)
	}
	b = field(b, '{', "event_id", e.EventID)
	b = field(b, ',', "run_id", e.RunID)
	b = field(b, ',', "event_type", e.EventType)
	b = field(b, ',', "timestamp", e.Timestamp)
	b = field(b, ',', "payload_hash_b64u", e.PayloadHash)
	if e.PrevHash == nil {
		b = append(b, `,"prev_hash_b64u":null`...)
	} else {
		b = field(b, ',', "prev_hash_b64u", *e.PrevHash)
	}
	return append(b, '}')
}

// AppendCompact appends the event's compact JSON (the bytes canon.Marshal
// writes for it).
func (e *Event) AppendCompact(b []byte) []byte {
	b = e.appendHeader(b)
	b = append(b[:len(b)-1], `,"event_hash_b64u":`...)
	b = canon.AppendString(b, e.EventHash)
	return append(b, '}')
}

// PayloadHash returns the b64u SHA-256 of a payload's compact form, the
// event payload hash producers use.
func PayloadHash(payload any) (string, error) {
	raw, err := canon.Marshal(payload)
	if err != nil {
		return "", err
	}
	return b64u.SHA256(raw), nil
}

// Chain is an append-only event chain for one run. It is not safe for
// concurrent use; callers serialise appends.
type Chain struct {
	RunID  string
	Events []Event
}

// NewChain starts an empty chain for runID.
func NewChain(runID string) *Chain { return &Chain{RunID: runID} }

// Append adds an event whose payload hash is payloadHash and returns it.
func (c *Chain) Append(eventID, eventType string, at time.Time, payloadHash string) (Event, error) {
	if eventID == "" || eventType == "" {
		return Event{}, errors.New("bundle: event id and type are required")
	}
	if !b64u.IsValidMin(payloadHash, 8) {
		return Event{}, errors.New("bundle: payload hash must be base64url")
	}
	e := Event{EventID: eventID, RunID: c.RunID, EventType: eventType, Timestamp: envelope.FormatTime(at), PayloadHash: payloadHash}
	if n := len(c.Events); n > 0 {
		prev := c.Events[n-1].EventHash
		e.PrevHash = &prev
	}
	h, err := HashEvent(&e)
	if err != nil {
		return Event{}, err
	}
	e.EventHash = h
	c.Events = append(c.Events, e)
	return e, nil
}

// Root returns the first event's hash (the chain root), or "".
func (c *Chain) Root() string {
	if len(c.Events) == 0 {
		return ""
	}
	return c.Events[0].EventHash
}

// URMRef points at the run's URM document.
type URMRef struct {
	Version      string `json:"urm_version"`
	URMID        string `json:"urm_id"`
	ResourceType string `json:"resource_type"`
	ResourceHash string `json:"resource_hash_b64u"`
}

// RateLimitClaim states a limit and the usage observed in a window.
type RateLimitClaim struct {
	Version              string `json:"claim_version"`
	Scope                string `json:"scope"` // agent, model or tool
	ScopeKey             string `json:"scope_key"`
	WindowStart          string `json:"window_start"`
	WindowEnd            string `json:"window_end"`
	MaxRequests          int64  `json:"max_requests"`
	ObservedRequests     int64  `json:"observed_requests"`
	MaxTokensInput       *int64 `json:"max_tokens_input,omitempty"`
	ObservedTokensInput  *int64 `json:"observed_tokens_input,omitempty"`
	MaxTokensOutput      *int64 `json:"max_tokens_output,omitempty"`
	ObservedTokensOutput *int64 `json:"observed_tokens_output,omitempty"`
	RunID                string `json:"run_id,omitempty"`
}

// Harness identifies the runtime that produced a bundle.
type Harness struct {
	ID         string `json:"id"`
	Version    string `json:"version"`
	Runtime    string `json:"runtime,omitempty"`
	ConfigHash string `json:"config_hash_b64u,omitempty"`
}

// Metadata is the bundle's open metadata object. Clawea records the policy
// and token scope the job ran under.
type Metadata struct {
	Harness        *Harness       `json:"harness,omitempty"`
	PolicyHash     string         `json:"clawea_policy_hash_b64u,omitempty"`
	TokenScopeHash string         `json:"clawea_token_scope_hash_b64u,omitempty"`
	JobID          string         `json:"clawea_job_id,omitempty"`
	Part           *Part          `json:"clawea_part,omitempty"`
	Labels         map[string]any `json:"clawea_labels,omitempty"`
	// Unanchored commits to the run's side-effect and human-approval
	// records that travel beside the bundle (see Unanchored).
	Unanchored *Unanchored `json:"clawea_unanchored,omitempty"`
}

// Part numbers a member bundle of a job split across an aggregate.
type Part struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// Payload is a proof bundle payload (proof_bundle.v1). Receipts are signed
// envelopes; side-effect and approval records are inline.
type Payload struct {
	Version         string                  `json:"bundle_version"`
	BundleID        string                  `json:"bundle_id"`
	AgentDID        string                  `json:"agent_did"`
	URM             *URMRef                 `json:"urm,omitempty"`
	EventChain      []Event                 `json:"event_chain,omitempty"`
	Receipts        []*envelope.Envelope    `json:"receipts,omitempty"`
	ToolReceipts    []*envelope.Envelope    `json:"tool_receipts,omitempty"`
	SideEffects     []receipt.SideEffect    `json:"side_effect_receipts,omitempty"`
	HumanApprovals  []receipt.HumanApproval `json:"human_approval_receipts,omitempty"`
	RateLimitClaims []RateLimitClaim        `json:"rate_limit_claims,omitempty"`
	Metadata        *Metadata               `json:"metadata,omitempty"`
}

// Limits of one proof bundle under the reference verifier.
const (
	MaxEvents   = 1000
	MaxReceipts = 1000
)

// ErrTooLarge is returned when a payload exceeds the per-bundle limits;
// split the run with Split and join the parts with an aggregate bundle.
var ErrTooLarge = errors.New("bundle: more than 1000 events or receipts in one bundle")

// Sign signs the payload with the agent's key. The signer must be the
// payload's agent.
func (p *Payload) Sign(agent signer.Signer, at time.Time) (*envelope.Envelope, error) {
	if p.Version == "" {
		p.Version = "1"
	}
	if p.AgentDID == "" {
		p.AgentDID = agent.DID()
	}
	if p.AgentDID != agent.DID() {
		return nil, fmt.Errorf("bundle: signer %s is not the bundle's agent %s", agent.DID(), p.AgentDID)
	}
	if len(p.EventChain) > MaxEvents || len(p.Receipts) > MaxReceipts || len(p.ToolReceipts) > MaxReceipts ||
		len(p.SideEffects) > MaxReceipts || len(p.HumanApprovals) > MaxReceipts {
		return nil, ErrTooLarge
	}
	return envelope.Sign(agent, envelope.TypeBundle, p, envelope.Options{IssuedAt: at})
}
