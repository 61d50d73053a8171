package bundle

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/signer"
)

// URM is the Universal Run Manifest kept beside a bundle (urm.v1). The
// bundle references it by the SHA-256 of its compact form.
type URM struct {
	Version       string         `json:"urm_version"`
	URMID         string         `json:"urm_id"`
	RunID         string         `json:"run_id"`
	AgentDID      string         `json:"agent_did"`
	IssuedAt      string         `json:"issued_at"`
	Harness       URMHarness     `json:"harness"`
	Inputs        []URMResource  `json:"inputs"`
	Outputs       []URMResource  `json:"outputs"`
	ChainRootHash string         `json:"event_chain_root_hash_b64u,omitempty"`
	ReceiptsRoot  string         `json:"receipts_root_hash_b64u,omitempty"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

// URMHarness names the runtime in a URM.
type URMHarness struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Runtime string `json:"runtime,omitempty"`
}

// URMResource is one input or output of a run.
type URMResource struct {
	Type        string `json:"type"`
	Hash        string `json:"hash_b64u"`
	ContentType string `json:"content_type,omitempty"`
	Path        string `json:"path,omitempty"`
	SizeBytes   *int64 `json:"size_bytes,omitempty"`
}

// JSON returns the URM's canonical compact bytes and its hash.
func (u *URM) JSON() ([]byte, string, error) {
	if u.Version == "" {
		u.Version = "1"
	}
	if u.Inputs == nil {
		u.Inputs = []URMResource{}
	}
	if u.Outputs == nil {
		u.Outputs = []URMResource{}
	}
	raw, err := canon.Marshal(u)
	if err != nil {
		return nil, "", err
	}
	return raw, b64u.SHA256(raw), nil
}

// ReceiptsRoot returns SHA-256 of the receipts' payload hashes joined with
// ':' (OpenClaw's informational receipts root).
func ReceiptsRoot(envs []*envelope.Envelope) string {
	if len(envs) == 0 {
		return ""
	}
	hashes := make([]string, len(envs))
	for i, e := range envs {
		hashes[i] = e.PayloadHash
	}
	return b64u.SHA256([]byte(strings.Join(hashes, ":")))
}

// TrustPulse is a self-reported, redacted summary of a run for people
// (trust_pulse.v1). It never raises a tier.
type TrustPulse struct {
	Version       string      `json:"trust_pulse_version"`
	TrustPulseID  string      `json:"trust_pulse_id,omitempty"`
	RunID         string      `json:"run_id"`
	AgentDID      string      `json:"agent_did"`
	IssuedAt      string      `json:"issued_at"`
	EvidenceClass string      `json:"evidence_class"`
	TierUplift    bool        `json:"tier_uplift"`
	StartedAt     string      `json:"started_at,omitempty"`
	EndedAt       string      `json:"ended_at,omitempty"`
	DurationMS    *int64      `json:"duration_ms,omitempty"`
	Tools         []ToolCount `json:"tools"`
	Files         []FileTouch `json:"files"`
}

// ToolCount counts the calls of one tool.
type ToolCount struct {
	Name  string `json:"name"`
	Calls int    `json:"calls"`
}

// FileTouch counts touches of one relative path.
type FileTouch struct {
	Path    string `json:"path"`
	Touches int    `json:"touches"`
}

// NewTrustPulse summarises tool calls (name → count) for a run.
func NewTrustPulse(runID, agentDID string, started, ended time.Time, tools map[string]int) *TrustPulse {
	tp := &TrustPulse{Version: "1", TrustPulseID: "tp_" + runID, RunID: runID, AgentDID: agentDID,
		IssuedAt: envelope.FormatTime(ended), EvidenceClass: "self_reported",
		StartedAt: envelope.FormatTime(started), EndedAt: envelope.FormatTime(ended),
		Tools: []ToolCount{}, Files: []FileTouch{}}
	d := ended.Sub(started).Milliseconds()
	tp.DurationMS = &d
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if len(tp.Tools) == 128 {
			break
		}
		tp.Tools = append(tp.Tools, ToolCount{Name: n, Calls: tools[n]})
	}
	return tp
}

// ManifestEntry describes one artifact of an export or aggregate bundle.
type ManifestEntry struct {
	Path        string `json:"path"`
	SHA256      string `json:"sha256_b64u"`
	ContentType string `json:"content_type"`
	SizeBytes   int    `json:"size_bytes"`
}

// Manifest lists the artifacts of an export or aggregate bundle.
type Manifest struct {
	Version     string          `json:"manifest_version"`
	GeneratedAt string          `json:"generated_at"`
	Entries     []ManifestEntry `json:"entries"`
}

func manifestEntry(path string, artifact any) (ManifestEntry, error) {
	jcs, err := canon.MarshalJCS(artifact)
	if err != nil {
		return ManifestEntry{}, err
	}
	return ManifestEntry{Path: path, SHA256: b64u.SHA256(jcs), ContentType: "application/json", SizeBytes: len(jcs)}, nil
}

// ExportArtifacts are the artifacts of an export bundle.
type ExportArtifacts struct {
	ProofBundle *envelope.Envelope   `json:"proof_bundle_envelope"`
	Execution   []*envelope.Envelope `json:"execution_attestation_envelopes,omitempty"`
	Derivation  []*envelope.Envelope `json:"derivation_attestation_envelopes,omitempty"`
	AuditResult []*envelope.Envelope `json:"audit_result_attestation_envelopes,omitempty"`
}

// Export is an export bundle: an offline audit package signed by its
// issuer over the JCS of its signable fields.
type Export struct {
	Version    string          `json:"export_version"`
	ExportID   string          `json:"export_id"`
	CreatedAt  string          `json:"created_at"`
	IssuerDID  string          `json:"issuer_did"`
	Manifest   Manifest        `json:"manifest"`
	Artifacts  ExportArtifacts `json:"artifacts"`
	BundleHash string          `json:"bundle_hash_b64u"`
	HashAlg    string          `json:"hash_algorithm"`
	Signature  string          `json:"signature_b64u"`
	Algorithm  string          `json:"algorithm"`
	IssuedAt   string          `json:"issued_at"`
	ExpiresAt  string          `json:"expires_at,omitempty"`
	Metadata   map[string]any  `json:"metadata,omitempty"`
}

type exportSignable struct {
	Version   string          `json:"export_version"`
	ExportID  string          `json:"export_id"`
	CreatedAt string          `json:"created_at"`
	IssuerDID string          `json:"issuer_did"`
	Manifest  Manifest        `json:"manifest"`
	Artifacts ExportArtifacts `json:"artifacts"`
	IssuedAt  string          `json:"issued_at"`
	ExpiresAt string          `json:"expires_at,omitempty"`
	Metadata  map[string]any  `json:"metadata,omitempty"`
}

// NewExport packages a proof bundle (and optional attestations) and signs
// the package with issuer.
func NewExport(issuer signer.Signer, exportID string, arts ExportArtifacts, at time.Time) (*Export, error) {
	if arts.ProofBundle == nil {
		return nil, errors.New("bundle: an export needs a proof bundle")
	}
	ts := envelope.FormatTime(at)
	man := Manifest{Version: "1", GeneratedAt: ts}
	e, err := manifestEntry("artifacts/proof_bundle_envelope.json", arts.ProofBundle)
	if err != nil {
		return nil, err
	}
	man.Entries = append(man.Entries, e)
	for _, k := range []struct {
		dir  string
		list []*envelope.Envelope
	}{{"execution_attestation_envelopes", arts.Execution}, {"derivation_attestation_envelopes", arts.Derivation}, {"audit_result_attestation_envelopes", arts.AuditResult}} {
		for i, env := range k.list {
			e, err := manifestEntry(fmt.Sprintf("artifacts/%s/%d.json", k.dir, i), env)
			if err != nil {
				return nil, err
			}
			man.Entries = append(man.Entries, e)
		}
	}
	x := &Export{Version: "1", ExportID: exportID, CreatedAt: ts, IssuerDID: issuer.DID(), Manifest: man,
		Artifacts: arts, HashAlg: envelope.HashSHA256, Algorithm: envelope.AlgEd25519, IssuedAt: ts}
	jcs, err := canon.MarshalJCS(exportSignable{x.Version, x.ExportID, x.CreatedAt, x.IssuerDID, x.Manifest, x.Artifacts, x.IssuedAt, x.ExpiresAt, x.Metadata})
	if err != nil {
		return nil, err
	}
	x.BundleHash = b64u.SHA256(jcs)
	sig, err := issuer.Sign([]byte(x.BundleHash))
	if err != nil {
		return nil, err
	}
	x.Signature = b64u.Encode(sig)
	return x, nil
}

// FleetSummary summarises the members of an aggregate.
type FleetSummary struct {
	TotalMembers   int    `json:"total_members"`
	UniqueAgents   int    `json:"unique_agents"`
	TotalRuns      int    `json:"total_runs"`
	FleetProofTier string `json:"fleet_proof_tier,omitempty"`
}

// AggregatePayload joins member proof bundles (aggregate_bundle.v1).
type AggregatePayload struct {
	Version     string            `json:"aggregate_version"`
	AggregateID string            `json:"aggregate_id"`
	CreatedAt   string            `json:"created_at"`
	ExpiresAt   string            `json:"expires_at,omitempty"`
	IssuerDID   string            `json:"issuer_did"`
	Manifest    Manifest          `json:"manifest"`
	Artifacts   AggregateMembers  `json:"artifacts"`
	Metadata    AggregateMetadata `json:"metadata"`
}

// AggregateMembers holds the member bundles sorted by JCS hash.
type AggregateMembers struct {
	MemberBundles []*envelope.Envelope `json:"member_bundles"`
}

// AggregateMetadata carries the fleet summary.
type AggregateMetadata struct {
	FleetSummary FleetSummary `json:"fleet_summary"`
	JobID        string       `json:"clawea_job_id,omitempty"`
}

// NewAggregate sorts members by the hash of their JCS form, writes the
// manifest and fleet summary, and signs the aggregate with issuer, which
// must not be any member's agent.
func NewAggregate(issuer signer.Signer, aggregateID string, members []*envelope.Envelope, at time.Time) (*envelope.Envelope, error) {
	if len(members) == 0 || len(members) > 1000 {
		return nil, errors.New("bundle: an aggregate holds 1 to 1000 members")
	}
	type keyed struct {
		hash string
		env  *envelope.Envelope
	}
	list := make([]keyed, len(members))
	agents, runs := map[string]bool{}, map[string]bool{}
	for i, m := range members {
		jcs, err := canon.MarshalJCS(m)
		if err != nil {
			return nil, err
		}
		list[i] = keyed{b64u.SHA256(jcs), m}
		agent, _ := m.Payload.StringOf("agent_did")
		if agent == issuer.DID() {
			return nil, errors.New("bundle: the aggregate issuer must not be a member's agent")
		}
		agents[agent] = true
		if chain := m.Payload.Get("event_chain"); chain.IsArray() && len(chain.Items) > 0 {
			rid, _ := chain.Items[0].StringOf("run_id")
			if runs[rid] {
				return nil, fmt.Errorf("bundle: two members share run id %q", rid)
			}
			runs[rid] = true
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].hash < list[j].hash })
	ts := envelope.FormatTime(at)
	p := AggregatePayload{Version: "1", AggregateID: aggregateID, CreatedAt: ts, IssuerDID: issuer.DID(),
		Manifest: Manifest{Version: "1", GeneratedAt: ts}}
	for i, k := range list {
		p.Artifacts.MemberBundles = append(p.Artifacts.MemberBundles, k.env)
		e, err := manifestEntry(fmt.Sprintf("artifacts/member_bundles/%d.json", i), k.env)
		if err != nil {
			return nil, err
		}
		p.Manifest.Entries = append(p.Manifest.Entries, e)
	}
	p.Metadata.FleetSummary = FleetSummary{TotalMembers: len(list), UniqueAgents: len(agents), TotalRuns: len(runs)}
	return envelope.Sign(issuer, envelope.TypeAggregate, p, envelope.Options{IssuedAt: at})
}
