package verify

import (
	"strings"

	"github.com/clawea/clawea/b64u"
)

// Schemas for the further proof-of-harness artifacts (VIR, attestations,
// run manifests, side-effect/approval/delegation receipts, prompt packs),
// expressed with the DSL of schema.go.

// virSources is the evidence source enum shared by the VIR schemas.
var virSources = []string{"tls_decrypt", "gateway", "interpose", "preload", "sni"}

var virV1Schema = object().with(
	p("receipt_version", constStr("1")),
	p("receipt_id", nonEmpty()),
	p("source", enum(virSources...)),
	p("provider", nonEmpty()),
	p("model", nonEmpty()),
	p("model_claimed", str()),
	p("model_observed", str()),
	p("request_hash_b64u", str()),
	p("response_hash_b64u", str()),
	p("tokens_input", nonNeg()),
	p("tokens_output", nonNeg()),
	p("latency_ms", nonNeg()),
	p("agent_did", didField()),
	p("timestamp", dateTime()),
	p("binding", object().with(
		p("run_id", nonEmpty()),
		p("event_hash_b64u", str().minLength(8)),
		p("nonce", nonEmpty()),
	)),
	p("transport_attestation", object().with(
		p("source", enum(virSources...)),
		p("keylog_present", boolean()),
		p("cipher_spool_present", boolean()),
		p("decrypted_match", boolean().orNull()),
	).closedObj()),
	p("process_attestation", object().with(
		p("harness_attestation_hash", str().orNull()),
		p("harness_recheck_match", boolean()),
		p("interpose_active", boolean()),
	).closedObj()),
	p("semantic_attestation", object().with(
		p("tool_calls_count", nonNeg()),
		p("side_effect_receipts_count", nonNeg()),
		p("event_chain_len", nonNeg()),
	).closedObj()),
	p("selective_disclosure", object().with(
		p("merkle_root_b64u", b64uField()),
		p("leaf_hashes_b64u", array(str().minLength(8))),
		p("disclosed_leaves", object().additional(str().minLength(8))),
		p("redacted_fields", array(nonEmpty())),
	)),
	p("merkle_disclosure", object().with(
		p("chain_hash", nonEmpty()),
		p("event_count", nonNeg()),
	).closedObj()),
	p("metadata", object()),
).req("receipt_version", "receipt_id", "source", "provider", "model", "request_hash_b64u", "response_hash_b64u",
	"tokens_input", "tokens_output", "latency_ms", "agent_did", "timestamp").as("vir.v1")

var virV2Schema = object().with(
	p("receipt_version", constStr("2")),
	p("receipt_id", nonEmpty()),
	p("source", enum(virSources...)),
	p("provider", nonEmpty()),
	p("model", nonEmpty()),
	p("model_claimed", str()),
	p("model_observed", str()),
	p("request_hash_b64u", str().minLength(8)),
	p("response_hash_b64u", str().minLength(8)),
	p("tokens_input", nonNeg()),
	p("tokens_output", nonNeg()),
	p("latency_ms", nonNeg()),
	p("agent_did", didField()),
	p("timestamp", dateTime()),
	p("binding", object().with(
		p("run_id", nonEmpty()),
		p("event_hash_b64u", str().minLength(8)),
		p("nonce", nonEmpty()),
		p("subject", didField()),
		p("subject_did", didField()),
		p("scope", nonEmpty()),
		p("scope_hash_b64u", str().minLength(8)),
	)),
	p("legal_binding", object().with(
		p("nonce", str().minLength(8)),
		p("subject_did", didField()),
		p("scope_hash_b64u", str().minLength(8)),
		p("job_id", str()),
		p("contract_id", str()),
		p("policy_hash_b64u", str().minLength(8)),
		p("jurisdiction", str()),
	).req("nonce", "subject_did", "scope_hash_b64u").closedObj()),
	p("evidence_conflicts", array(object().with(
		p("field", nonEmpty()),
		p("authoritative_source", enum(virSources...)),
		p("divergent_source", enum(virSources...)),
		p("authoritative_value", anyv()),
		p("divergent_value", anyv()),
	).req("field", "authoritative_source", "divergent_source", "authoritative_value", "divergent_value").closedObj())),
	p("selective_disclosure", object().with(
		p("disclosure_algorithm", enum("vir_v2_typed_lexicographical")),
		p("merkle_root_b64u", b64uField()),
		p("redacted_leaf_hashes_b64u", array(b64uField())),
		p("disclosed_leaves", object().additional(object().with(
			p("type", enum("string", "number", "boolean", "null")),
			p("value", anyv()),
			p("salt_b64u", b64uField()),
		).req("type", "value", "salt_b64u").closedObj())),
	).req("disclosure_algorithm", "merkle_root_b64u", "redacted_leaf_hashes_b64u", "disclosed_leaves").closedObj()),
	p("metadata", object()),
).req("receipt_version", "receipt_id", "source", "provider", "model_claimed", "model_observed", "agent_did",
	"timestamp", "legal_binding", "selective_disclosure").as("vir.v2")

var virEnvelopeV1Schema = envelopeOf("vir_envelope.v1", "vir_receipt",
	ref("vir.v1", func() *schema { return virV1Schema }), envStrictNoExpiry)

var virEnvelopeV2Schema = envelopeOf("vir_envelope.v2", "vir_receipt",
	ref("vir.v2", func() *schema { return virV2Schema }), envStrictNoExpiry)

var coverageAttestationSchema = object().with(
	p("attestation_version", constStr("1")),
	p("attestation_id", nonEmpty()),
	p("run_id", nonEmpty()),
	p("agent_did", didField()),
	p("sentinel_did", didField()),
	p("issued_at", dateTime()),
	p("binding", object().with(
		p("event_chain_root_hash_b64u", b64uField()),
	).req("event_chain_root_hash_b64u").closedObj()),
	p("metrics", object().with(
		p("lineage", object().with(
			p("root_pid", integer().minimum(1)),
			p("processes_tracked", integer().minimum(0)),
			p("unmonitored_spawns", integer().minimum(0)),
			p("escapes_suspected", boolean()),
		).req("root_pid", "processes_tracked", "unmonitored_spawns", "escapes_suspected").closedObj()),
		p("egress", object().with(
			p("connections_total", integer().minimum(0)),
			p("unmediated_connections", integer().minimum(0)),
		).req("connections_total", "unmediated_connections").closedObj()),
		p("liveness", object().with(
			p("status", enum("continuous", "interrupted")),
			p("uptime_ms", integer().minimum(0)),
			p("heartbeat_interval_ms", integer().minimum(1)),
			p("max_gap_ms", integer().minimum(0)),
		).req("status", "uptime_ms", "heartbeat_interval_ms", "max_gap_ms").closedObj()),
	).req("lineage", "egress", "liveness").closedObj()),
	p("metadata", object()),
).req("attestation_version", "attestation_id", "run_id", "agent_did", "sentinel_did", "issued_at",
	"binding", "metrics").closedObj().as("coverage_attestation.v1")

var coverageAttestationEnvelopeSchema = envelopeOf("coverage_attestation_envelope.v1", "coverage_attestation",
	ref("coverage_attestation.v1", func() *schema { return coverageAttestationSchema }), envStrict)

var binarySemanticEvidenceSchema = object().with(
	p("evidence_version", constStr("1")),
	p("binary_hash_b64u", b64uField()),
	p("binary_profile", object().with(
		p("target_architecture", enum("x86_64", "arm64", "x86", "arm", "riscv64", "unknown")),
		p("linkage", enum("STATIC", "DYNAMIC", "UNKNOWN")),
		p("symbols", enum("STRIPPED", "INTACT", "UNKNOWN")),
		p("is_sip_protected", boolean()),
	).req("target_architecture", "linkage", "symbols", "is_sip_protected").closedObj()),
	p("extracted_claims", object().with(
		p("network_egress", enum("PRESENT", "ABSENT", "UNKNOWN")),
		p("dynamic_code_generation", enum("PRESENT", "ABSENT", "UNKNOWN")),
	).req("network_egress", "dynamic_code_generation").closedObj()),
	p("causality_metrics", object().with(
		p("merkle_chain_intact", boolean()),
		p("unattested_children_spawned", boolean()),
	).req("merkle_chain_intact", "unattested_children_spawned").closedObj()),
	p("forensic_metrics", object().with(
		p("static_analysis_budget_exhausted", boolean()),
		p("parser_timeout", boolean()),
		p("normalized_regions_scanned", integer().minimum(0)),
	).req("static_analysis_budget_exhausted", "parser_timeout", "normalized_regions_scanned").closedObj()),
	p("metadata", object()),
).req("evidence_version", "binary_hash_b64u", "binary_profile", "extracted_claims", "causality_metrics",
	"forensic_metrics").closedObj().as("binary_semantic_evidence.v1")

var binarySemanticEvidenceEnvelopeSchema = envelopeOf("binary_semantic_evidence_envelope.v1", "binary_semantic_evidence",
	ref("binary_semantic_evidence.v1", func() *schema { return binarySemanticEvidenceSchema }), envStrictNoExpiry)

var executionAttestationSchema = func() *schema {
	s := object().with(
		p("attestation_version", constStr("1")),
		p("attestation_id", nonEmpty()),
		p("execution_type", enum("sandbox_execution", "tee_execution")),
		p("agent_did", didField()),
		p("attester_did", didField()),
		p("run_id", str()),
		p("proof_bundle_hash_b64u", b64uField()),
		p("harness", object().with(
			p("id", str()),
			p("version", str()),
			p("runtime", str()),
			p("config_hash_b64u", str().pat(b64u.IsValid, "base64url")),
		).closedObj()),
		p("runtime_metadata", object().with(
			p("tee", object().with(
				p("attestation_type", enum("sgx_quote", "tdx_quote", "sev_snp_report", "nitro_attestation_doc", "generic_tee")),
				p("root_id", nonEmpty()),
				p("tcb_version", nonEmpty()),
				p("evidence_ref", object().with(
					p("resource_type", nonEmpty()),
					p("resource_hash_b64u", b64uField()),
					p("uri", str()),
				).req("resource_type", "resource_hash_b64u").closedObj()),
				p("nonce_binding_b64u", b64uField()),
				p("measurements", object().with(
					p("measurement_hash_b64u", b64uField()),
					p("runtime_digest_b64u", b64uField()),
					p("kernel_digest_b64u", b64uField()),
					p("model_weights_digest_b64u", b64uField()),
				).req("measurement_hash_b64u").closedObj()),
				p("tcb", object().with(
					p("status", enum("up_to_date", "out_of_date", "configuration_needed", "revoked", "unknown")),
					p("advisory_ids", array(nonEmpty())),
				).closedObj()),
				p("metadata", object()),
			).req("attestation_type", "root_id", "tcb_version", "evidence_ref", "measurements").closedObj()),
		)),
		p("issued_at", dateTime()),
		p("expires_at", dateTime()),
		p("metadata", object()),
	).req("attestation_version", "attestation_id", "execution_type", "agent_did", "attester_did", "issued_at").closedObj()
	// allOf/if/then (tee_execution requires runtime_metadata.tee): there is no modifier for it, so it is
	// set as the equivalent anyOf, given that execution_type is required and one of the two enum values.
	s.anyOf = []*schema{
		object().with(p("execution_type", constStr("sandbox_execution"))).req("execution_type"),
		object().with(p("runtime_metadata", object().req("tee"))).req("runtime_metadata"),
	}
	return s.as("execution_attestation.v1")
}()

var executionAttestationEnvelopeSchema = envelopeOf("execution_attestation_envelope.v1", "execution_attestation",
	ref("execution_attestation.v1", func() *schema { return executionAttestationSchema }), envStrictNoExpiry)

var auditResultAttestationSchema = object().with(
	p("audit_pack", object().with(
		p("pack_id", str()),
		p("pack_version", str()),
		p("pack_hash_b64u", b64uField()),
	).req("pack_hash_b64u").closedObj()),
	p("audit_version", constStr("1")),
	p("audit_id", nonEmpty()),
	p("issued_at", dateTime()),
	p("expires_at", dateTime()),
	p("model", ref("model_identity.v1", func() *schema { return modelIdentitySchema })),
	p("derivation_attestation_hash_b64u", b64uField()),
	p("audit_code", object().with(
		p("repo_uri", str().fmt(fmtURI)),
		p("commit_sha", str()),
		p("code_hash_b64u", b64uField()),
		p("uri", str()),
	).req("code_hash_b64u").closedObj()),
	p("dataset", object().with(
		p("dataset_id", nonEmpty()),
		p("dataset_hash_b64u", b64uField()),
		p("access", enum("public", "confidential")),
		p("uri", str()),
	).req("dataset_id", "dataset_hash_b64u", "access").closedObj()),
	p("protocol", object().with(
		p("name", nonEmpty()),
		p("config_hash_b64u", b64uField()),
		p("seed", num()),
	).req("name", "config_hash_b64u").closedObj()),
	p("result", object().with(
		p("status", enum("pass", "fail", "warn")),
		p("results_hash_b64u", b64uField()),
		p("summary", object()),
	).req("status", "results_hash_b64u").closedObj()),
	p("execution", object().with(
		p("execution_attestation_hash_b64u", b64uField()),
		p("proof_bundle_hash_b64u", b64uField()),
	).closedObj()),
	p("clawlogs", object().with(
		p("log_entry_hash_b64u", b64uField()),
		p("inclusion_proof", ref("log_inclusion_proof.v1", func() *schema { return logInclusionProofSchema })),
	).closedObj()),
	p("metadata", object()),
).req("audit_version", "audit_id", "issued_at", "model", "audit_code", "dataset", "protocol",
	"result").closedObj().as("audit_result_attestation.v1")

var auditResultAttestationEnvelopeSchema = envelopeOf("audit_result_attestation_envelope.v1", "audit_result_attestation",
	ref("audit_result_attestation.v1", func() *schema { return auditResultAttestationSchema }), envStrictNoExpiry)

// urmResource is the shape of an entry of urm.v1 inputs and outputs.
func urmResource() *schema {
	return object().with(
		p("type", nonEmpty()),
		p("hash_b64u", b64uField()),
		p("content_type", str()),
		p("uri", str().fmt(fmtURI)),
		p("path", str()),
		p("size_bytes", integer().minimum(0)),
		p("metadata", object()),
	).req("type", "hash_b64u").closedObj()
}

var urmSchema = object().with(
	p("urm_version", constStr("1")),
	p("urm_id", nonEmpty()),
	p("run_id", nonEmpty()),
	p("agent_did", didField()),
	p("issued_at", dateTime()),
	p("harness", object().with(
		p("id", nonEmpty()),
		p("version", nonEmpty()),
		p("runtime", str()),
		p("config_hash_b64u", b64uField()),
		p("metadata", object()),
	).req("id", "version").closedObj()),
	p("inputs", array(urmResource())),
	p("outputs", array(urmResource())),
	p("event_chain_root_hash_b64u", b64uField()),
	p("receipts_root_hash_b64u", b64uField()),
	p("proof_bundle_hash_b64u", b64uField()),
	p("metadata", object()),
).req("urm_version", "urm_id", "run_id", "agent_did", "issued_at", "harness", "inputs", "outputs").closedObj().as("urm.v1")

// isSafeRelativePath implements the trust_pulse.v1 files[].path pattern
// ^(?!/)(?!~)(?!.*\\)(?!.*(?:^|/)\.\.(?:/|$)).+$ : non-empty, a single line
// (ECMAScript "." excludes line terminators), no leading "/" or "~", no
// backslash, and no ".." path segment.
func isSafeRelativePath(s string) bool {
	if s == "" || s[0] == '/' || s[0] == '~' || strings.ContainsAny(s, "\\\n\r\u2028\u2029") {
		return false
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == ".." {
			return false
		}
	}
	return true
}

var trustPulseSchema = object().with(
	p("trust_pulse_version", constStr("1")),
	p("trust_pulse_id", nonEmpty()),
	p("run_id", nonEmpty()),
	p("agent_did", didField()),
	p("issued_at", dateTime()),
	p("evidence_class", constStr("self_reported")),
	p("tier_uplift", constBool(false)),
	p("started_at", dateTime()),
	p("ended_at", dateTime()),
	p("duration_ms", integer().minimum(0)),
	p("tools", array(object().with(
		p("name", nonEmpty().maxLength(128)),
		p("calls", integer().minimum(0)),
	).req("name", "calls").closedObj()).maxItemsN(128)),
	p("files", array(object().with(
		p("path", nonEmpty().maxLength(1024).pat(isSafeRelativePath, "a safe relative path (no leading / or ~, no \\, no .. segment)")),
		p("touches", integer().minimum(0)),
	).req("path", "touches").closedObj()).maxItemsN(512)),
).req("trust_pulse_version", "run_id", "agent_did", "issued_at", "evidence_class", "tier_uplift", "tools",
	"files").closedObj().as("trust_pulse.v1")

var eventChainSchema = object().with(
	p("chain_version", constStr("1")),
	p("chain_id", nonEmpty()),
	p("run_id", nonEmpty()),
	p("events", array(object().with(
		p("event_id", nonEmpty()),
		p("run_id", nonEmpty()),
		p("event_type", nonEmpty()),
		p("timestamp", dateTime()),
		p("payload_hash_b64u", b64uField()),
		p("prev_hash_b64u", b64uField().orNull()),
		p("event_hash_b64u", b64uField()),
	).req("event_id", "run_id", "event_type", "timestamp", "payload_hash_b64u", "prev_hash_b64u",
		"event_hash_b64u").closedObj()).minItemsN(1)),
	p("metadata", object()),
).req("chain_version", "chain_id", "run_id", "events").closedObj().as("event_chain.v1")

var sideEffectReceiptSchema = object().with(
	p("receipt_version", constStr("1")),
	p("receipt_id", nonEmpty()),
	p("effect_class", enum("network_egress", "filesystem_write", "external_api_write")),
	p("target_hash_b64u", nonEmpty()),
	p("vendor_id", str()),
	p("request_hash_b64u", nonEmpty()),
	p("response_hash_b64u", nonEmpty()),
	p("response_status", enum("success", "error", "timeout", "denied")),
	p("hash_algorithm", enum("SHA-256")),
	p("agent_did", nonEmpty()),
	p("timestamp", dateTime()),
	p("latency_ms", nonNeg()),
	p("bytes_written", nonNeg()),
	p("binding", object().with(
		p("run_id", str()),
		p("event_hash_b64u", str()),
		p("nonce", str()),
		p("policy_hash", str()),
		p("token_scope_hash_b64u", str()),
		p("capability_id", str()),
	)),
).req("receipt_version", "receipt_id", "effect_class", "target_hash_b64u", "request_hash_b64u",
	"response_hash_b64u", "hash_algorithm", "agent_did", "timestamp", "latency_ms").closedObj().as("side_effect_receipt.v1")

var sideEffectReceiptEnvelopeSchema = envelopeOf("side_effect_receipt_envelope.v1", "side_effect_receipt",
	ref("side_effect_receipt.v1", func() *schema { return sideEffectReceiptSchema }), envLoose)

var humanApprovalReceiptSchema = object().with(
	p("receipt_version", constStr("1")),
	p("receipt_id", nonEmpty()),
	p("approval_type", enum("explicit_approve", "explicit_deny", "auto_approve", "timeout_deny")),
	p("approver_subject", nonEmpty()),
	p("approver_method", enum("ui_click", "cli_confirm", "api_call", "policy_auto", "timeout")),
	p("agent_did", nonEmpty()),
	p("scope_hash_b64u", nonEmpty()),
	p("scope_summary", str().maxLength(1024)),
	p("policy_hash_b64u", str()),
	p("minted_capability_id", str()),
	p("minted_capability_ttl_seconds", nonNeg()),
	p("plan_hash_b64u", str()),
	p("evidence_required", array(str())),
	p("hash_algorithm", enum("SHA-256")),
	p("timestamp", dateTime()),
	p("binding", object().with(
		p("run_id", str()),
		p("event_hash_b64u", str()),
		p("nonce", str()),
		p("policy_hash", str()),
		p("token_scope_hash_b64u", str()),
	)),
).req("receipt_version", "receipt_id", "approval_type", "approver_subject", "agent_did", "scope_hash_b64u",
	"hash_algorithm", "timestamp").closedObj().as("human_approval_receipt.v1")

var humanApprovalReceiptEnvelopeSchema = envelopeOf("human_approval_receipt_envelope.v1", "human_approval_receipt",
	ref("human_approval_receipt.v1", func() *schema { return humanApprovalReceiptSchema }), envLoose)

var delegationReceiptSchema = object().with(
	p("receipt_version", constStr("1")),
	p("receipt_id", nonEmpty()),
	p("delegator_did", didField()),
	p("delegate_did", didField()),
	p("task_description_hash_b64u", b64uField()),
	p("delegate_bundle_hash_b64u", b64uField()),
	p("delegation_policy", str()),
	p("hash_algorithm", enum("SHA-256", "BLAKE3")),
	p("delegated_at", dateTime()),
	p("completed_at", dateTime()),
	p("binding", object().with(
		p("run_id", str()),
		p("event_hash_b64u", str()),
		p("nonce", str()),
		p("policy_hash", str()),
	)),
).req("receipt_version", "receipt_id", "delegator_did", "delegate_did", "task_description_hash_b64u",
	"delegate_bundle_hash_b64u", "hash_algorithm", "delegated_at").closedObj().as("delegation_receipt.v1")

var delegationReceiptEnvelopeSchema = envelopeOf("delegation_receipt_envelope.v1", "delegation_receipt",
	ref("delegation_receipt.v1", func() *schema { return delegationReceiptSchema }), envLoose)

var promptPackSchema = object().with(
	p("prompt_pack_version", constStr("1")),
	p("prompt_pack_id", nonEmpty()),
	p("hash_algorithm", constStr("SHA-256")),
	p("prompt_root_hash_b64u", b64uField()),
	p("entries", array(object().with(
		p("entry_id", nonEmpty().maxLength(256)),
		p("content_hash_b64u", b64uField()),
		p("content_type", str().maxLength(128)),
		p("size_bytes", integer().minimum(0)),
	).req("entry_id", "content_hash_b64u").closedObj()).maxItemsN(256)),
).req("prompt_pack_version", "hash_algorithm", "prompt_root_hash_b64u", "entries").closedObj().as("prompt_pack.v1")

var systemPromptReportSchema = object().with(
	p("system_prompt_report_version", constStr("1")),
	p("report_id", nonEmpty()),
	p("run_id", nonEmpty()),
	p("agent_did", didField()),
	p("issued_at", dateTime()),
	p("hash_algorithm", constStr("SHA-256")),
	p("prompt_root_hash_b64u", b64uField()),
	p("calls", array(object().with(
		p("event_id", nonEmpty()),
		p("event_hash_b64u", b64uField()),
		p("provider", nonEmpty().maxLength(64)),
		p("model", nonEmpty().maxLength(128)),
		p("rendered_system_prompt_hash_b64u", b64uField()),
	).req("event_id", "rendered_system_prompt_hash_b64u").closedObj()).maxItemsN(512)),
).req("system_prompt_report_version", "report_id", "run_id", "agent_did", "issued_at", "hash_algorithm",
	"calls").closedObj().as("system_prompt_report.v1")
