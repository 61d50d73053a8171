// Package receipt holds the typed payloads of Clawsig receipts and records
// (gateway, tool v1/v2, side-effect, human-approval, web), their binding,
// model identity, selective disclosure, Receipt Transparency inclusion
// proofs and Protocol-M (m1) signatures, with builders that sign them.
//
// Struct field order is the key order written and hashed; it follows the
// reference producers so that a receipt clawea signs verifies under the
// reference's rules (see package verify).
package receipt

import (
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/signer"
)

// Binding ties a receipt to a run, an event of its chain, a nonce, the
// pinned policy and the token scope (receipt_binding.v1). Causal fields
// place the call in a span graph.
type Binding struct {
	RunID                 string   `json:"run_id,omitempty"`
	EventHash             string   `json:"event_hash_b64u,omitempty"`
	Nonce                 string   `json:"nonce,omitempty"`
	PolicyHash            string   `json:"policy_hash,omitempty"`
	TokenScopeHash        string   `json:"token_scope_hash_b64u,omitempty"`
	SpanID                string   `json:"span_id,omitempty"`
	ParentSpanID          string   `json:"parent_span_id,omitempty"`
	ToolSpanID            string   `json:"tool_span_id,omitempty"`
	Phase                 string   `json:"phase,omitempty"`
	AttributionConfidence *float64 `json:"attribution_confidence,omitempty"`
}

// ModelIdentity describes the model that answered (model_identity.v1).
type ModelIdentity struct {
	Version string      `json:"model_identity_version"`
	Tier    string      `json:"tier"`
	Model   ModelSource `json:"model"`
}

// ModelSource names a provider's model.
type ModelSource struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
}

// Model identity tiers, weakest first.
const (
	TierClosedOpaque           = "closed_opaque"
	TierClosedProviderManifest = "closed_provider_manifest"
	TierOpenweightsHashable    = "openweights_hashable"
	TierTEEMeasured            = "tee_measured"
)

// NewModelIdentity returns the identity a gateway can attest for a hosted
// model: closed_opaque, with no further claims.
func NewModelIdentity(provider, model string) ModelIdentity {
	return ModelIdentity{Version: "1", Tier: TierClosedOpaque, Model: ModelSource{Provider: provider, Name: model}}
}

// Hash returns model_identity_hash_b64u: SHA-256 of the identity's JCS.
func (m ModelIdentity) Hash() string {
	jcs, err := canon.MarshalJCS(m)
	if err != nil {
		return ""
	}
	return b64u.SHA256(jcs)
}

// GatewayMetadata is the signed metadata of a gateway receipt.
type GatewayMetadata struct {
	ModelIdentity     *ModelIdentity `json:"model_identity,omitempty"`
	ModelIdentityHash string         `json:"model_identity_hash_b64u,omitempty"`
	// Clawea extensions; the receipt's metadata object is open.
	Status     string `json:"clawea_status,omitempty"`
	ErrorCode  string `json:"clawea_error_code,omitempty"`
	Streamed   bool   `json:"clawea_streamed,omitempty"`
	Redactions int    `json:"clawea_redactions,omitempty"`
	Privacy    string `json:"receipt_privacy_mode,omitempty"`
	// JobLabels are the labels of the job the call was made in.
	JobLabels map[string]string `json:"clawea_job_labels,omitempty"`
}

// Gateway is a gateway receipt payload (gateway_receipt.v1), one per model
// call. RequestHash and ResponseHash cover the bytes actually forwarded and
// returned; token counts are the provider's reported usage.
type Gateway struct {
	Version      string           `json:"receipt_version"`
	ReceiptID    string           `json:"receipt_id"`
	GatewayID    string           `json:"gateway_id"`
	Provider     string           `json:"provider"`
	Model        string           `json:"model"`
	RequestHash  string           `json:"request_hash_b64u"`
	ResponseHash string           `json:"response_hash_b64u"`
	TokensInput  int64            `json:"tokens_input"`
	TokensOutput int64            `json:"tokens_output"`
	LatencyMS    int64            `json:"latency_ms"`
	Timestamp    string           `json:"timestamp"`
	Binding      *Binding         `json:"binding,omitempty"`
	Metadata     *GatewayMetadata `json:"metadata,omitempty"`
}

// Sign signs g as a gateway_receipt envelope. issued_at is the payload's
// timestamp, as the reference gateway writes it.
func (g *Gateway) Sign(s signer.Signer) (*envelope.Envelope, error) {
	raw, at, err := g.compact()
	if err != nil {
		return nil, err
	}
	val, err := canon.Parse(raw)
	if err != nil {
		return nil, err
	}
	return envelope.Sign(s, envelope.TypeGateway, &val, envelope.Options{IssuedAt: at})
}

// SignJSON is Sign followed by the envelope's JSON, without parsing the
// receipt back: its own encoder writes canon's compact form (checked by
// TestGatewayEncoderMatchesMarshal), so those bytes are hashed and copied
// as they are. The model gateway signs a receipt per call this way.
func (g *Gateway) SignJSON(s signer.Signer) ([]byte, error) {
	raw, at, err := g.compact()
	if err != nil {
		return nil, err
	}
	return envelope.SignCompact(s, envelope.TypeGateway, raw, envelope.Options{IssuedAt: at})
}

// compact fills the default version and returns the receipt's compact
// bytes and its timestamp, which becomes the envelope's issued_at.
func (g *Gateway) compact() ([]byte, time.Time, error) {
	if g.Version == "" {
		g.Version = "1"
	}
	at, err := parseTime(g.Timestamp)
	if err != nil {
		return nil, at, err
	}
	return g.appendCompact(make([]byte, 0, 1024)), at, nil
}

// SideEffect is a side-effect record as carried inline in a proof bundle
// (the open inline form: *_digest fields, unsigned inside the bundle).
type SideEffect struct {
	Version        string   `json:"receipt_version"`
	ReceiptID      string   `json:"receipt_id"`
	EffectClass    string   `json:"effect_class"`
	TargetDigest   string   `json:"target_digest,omitempty"`
	RequestDigest  string   `json:"request_digest,omitempty"`
	ResponseDigest string   `json:"response_digest,omitempty"`
	HashAlgorithm  string   `json:"hash_algorithm"`
	VendorID       string   `json:"vendor_id,omitempty"`
	BytesWritten   *int64   `json:"bytes_written,omitempty"`
	AgentDID       string   `json:"agent_did"`
	Timestamp      string   `json:"timestamp"`
	Binding        *Binding `json:"binding,omitempty"`
}

// Effect classes.
const (
	EffectNetworkEgress    = "network_egress"
	EffectFilesystemWrite  = "filesystem_write"
	EffectExternalAPIWrite = "external_api_write"
)

// HumanApproval records a human (or timeout) decision inside a bundle.
type HumanApproval struct {
	Version          string   `json:"receipt_version"`
	ReceiptID        string   `json:"receipt_id"`
	ApprovalType     string   `json:"approval_type"`
	ScopeHash        string   `json:"scope_hash_b64u,omitempty"`
	PlanHash         string   `json:"plan_hash_b64u,omitempty"`
	ApproverSubject  string   `json:"approver_subject,omitempty"`
	CapabilityMinted *bool    `json:"capability_minted,omitempty"`
	PolicyHash       string   `json:"policy_hash_b64u,omitempty"`
	HashAlgorithm    string   `json:"hash_algorithm"`
	AgentDID         string   `json:"agent_did"`
	Timestamp        string   `json:"timestamp"`
	Binding          *Binding `json:"binding,omitempty"`
}

// Approval types.
const (
	ApprovalExplicitApprove = "explicit_approve"
	ApprovalExplicitDeny    = "explicit_deny"
	ApprovalAutoApprove     = "auto_approve"
	ApprovalTimeoutDeny     = "timeout_deny"
)

// Web is a web receipt payload (witnessed_web tier).
type Web struct {
	Version      string         `json:"receipt_version"`
	ReceiptID    string         `json:"receipt_id"`
	WitnessID    string         `json:"witness_id"`
	Source       string         `json:"source"`
	RequestHash  string         `json:"request_hash_b64u"`
	ResponseHash string         `json:"response_hash_b64u"`
	SessionHash  string         `json:"session_hash_b64u,omitempty"`
	Timestamp    string         `json:"timestamp"`
	Binding      *Binding       `json:"binding,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// Sign signs w as a web_receipt envelope.
func (w *Web) Sign(s signer.Signer) (*envelope.Envelope, error) {
	if w.Version == "" {
		w.Version = "1"
	}
	at, err := parseTime(w.Timestamp)
	if err != nil {
		return nil, err
	}
	return envelope.Sign(s, "web_receipt", w, envelope.Options{IssuedAt: at})
}
