package verify

// Structural rules of the core protocol artifacts, written in clawea's own
// validator DSL (schema.go). They state the same constraints as the
// reference's published JSON Schemas for these artifacts so that a document
// is accepted or refused at the same check as in the reference verifier.

var envelopeRequired = []string{
	"envelope_version", "envelope_type", "payload", "payload_hash_b64u",
	"hash_algorithm", "signature_b64u", "algorithm", "signer_did", "issued_at",
}

// envShape selects one of the SignedEnvelope variants the schemas use.
type envShape int

const (
	envStrict         envShape = iota // base64url and did: fields, SHA-256|BLAKE3, optional expires_at
	envStrictNoExpiry                 // the same without expires_at
	envLoose                          // non-empty fields, SHA-256 only, optional expires_at
)

// envelopeOf returns the SignedEnvelope shape of type typ around payload.
func envelopeOf(name, typ string, payload *schema, shape envShape) *schema {
	hash, sig, did, algs := b64uField(), b64uField(), didField(), []string{"SHA-256", "BLAKE3"}
	if shape == envLoose {
		hash, sig, did, algs = nonEmpty(), nonEmpty(), nonEmpty(), []string{"SHA-256"}
	}
	s := object().with(
		p("envelope_version", constStr("1")),
		p("envelope_type", constStr(typ)),
		p("payload", payload),
		p("payload_hash_b64u", hash),
		p("hash_algorithm", enum(algs...)),
		p("signature_b64u", sig),
		p("algorithm", enum("Ed25519")),
		p("signer_did", did),
		p("issued_at", dateTime()),
	)
	if shape != envStrictNoExpiry {
		s.with(p("expires_at", dateTime()))
	}
	return s.req(envelopeRequired...).closedObj().as(name)
}

// signedEnvelope is the common strict envelope with an optional expiry.
func signedEnvelope(name, typ string, payload *schema) *schema {
	return envelopeOf(name, typ, payload, envStrict)
}

var receiptBindingSchema = object().with(
	p("run_id", nonEmpty()),
	p("event_hash_b64u", b64uField()),
	p("nonce", nonEmpty()),
	p("policy_hash", nonEmpty()),
	p("token_scope_hash_b64u", b64uField()),
	p("span_id", nonEmpty()),
	p("spanId", nonEmpty()),
	p("parent_span_id", nonEmpty()),
	p("parentSpanId", nonEmpty()),
	p("tool_span_id", nonEmpty()),
	p("toolSpanId", nonEmpty()),
	p("phase", enum(causalPhases...)),
	p("attribution_confidence", num()),
	p("attributionConfidence", num()),
).closedObj().as("receipt_binding.v1")

var causalPhases = []string{"setup", "planning", "reasoning", "execution", "observation", "reflection", "teardown"}

var resourceRef = object().with(
	p("resource_type", nonEmpty()),
	p("resource_hash_b64u", b64uField()),
	p("uri", str()),
).req("resource_type", "resource_hash_b64u").closedObj()

var modelIdentitySchema = object().with(
	p("model_identity_version", constStr("1")),
	p("tier", enum(modelTiers...)),
	p("model", object().with(
		p("provider", nonEmpty()), p("name", nonEmpty()), p("family", str()),
		p("endpoint", str()), p("region", str()), p("deployment_id", str()), p("revision", str()),
	).req("provider", "name").closedObj()),
	p("gateway_observed", object().with(
		p("gateway_id", didField()),
		p("observed_at", dateTime()),
		p("request_id", str()),
		p("provider_response_fingerprint", str()),
		p("transport", object().with(
			p("provider_api", str()), p("http_status", nonNeg()), p("latency_ms", nonNeg()),
		).closedObj()),
	).req("gateway_id", "observed_at").closedObj()),
	p("artifacts", object().with(
		p("provider_manifest", object().with(
			p("manifest_type", constStr("provider_build_manifest")),
			p("uri", str()),
			p("hash_b64u", b64uField()),
			p("content_type", str()),
			p("signature", object().with(
				p("signer_did", didField()),
				p("signature_envelope_ref", resourceRef),
			).req("signer_did", "signature_envelope_ref").closedObj()),
		).req("manifest_type", "hash_b64u").closedObj()),
		p("openweights", object().with(
			p("weights_format", str()),
			p("weights", array(object().with(
				p("file_name", str()), p("hash_b64u", b64uField()), p("size_bytes", nonNeg()),
			).req("hash_b64u").closedObj())),
			p("tokenizer", object()), p("config", object()), p("serving_code", object()),
		).closedObj()),
		p("tee_measurement", object().with(
			p("attestation_type", str()),
			p("attestation_report_ref", resourceRef),
			p("measurement", object()), p("tcb", object()),
		).closedObj()),
	).closedObj()),
	p("metadata", object()),
).req("model_identity_version", "tier", "model").closedObj().as("model_identity.v1")

var modelTiers = []string{"closed_opaque", "closed_provider_manifest", "openweights_hashable", "tee_measured"}

var logInclusionProofSchema = object().with(
	p("proof_version", constStr("1")),
	p("log_id", nonEmpty()),
	p("tree_size", nonNeg()),
	p("leaf_hash_b64u", b64uField()),
	p("root_hash_b64u", b64uField()),
	p("audit_path", array(b64uField())),
	p("root_published_at", dateTime()),
	p("root_signature", object().with(
		p("signer_did", didField()),
		p("sig_b64u", b64uField()),
	).req("signer_did", "sig_b64u").closedObj()),
	p("metadata", object()),
).req("proof_version", "log_id", "tree_size", "leaf_hash_b64u", "root_hash_b64u", "audit_path", "root_published_at", "root_signature").
	closedObj().as("log_inclusion_proof.v1")

var kinematicFingerprintSchema = object().with(
	p("ttft_ms", num()), p("itl_p50_ms", num()), p("itl_p95_ms", num()), p("itl_stddev_ms", num()),
	p("chunk_count", integer()), p("burst_signature_b64u", str()), p("hardware_inferred", str()),
	p("confidence_score", num().minimum(0).maximum(1)), p("total_tokens", integer()), p("total_duration_ms", num()),
).req("ttft_ms", "itl_p50_ms", "itl_p95_ms", "itl_stddev_ms", "chunk_count", "burst_signature_b64u").
	closedObj().as("kinematic_fingerprint.v1")

var sentinelAnomalyReportSchema = object().with(
	p("threat_score", num().minimum(0).maximum(100)),
	p("anomaly_type", enum("benign", "prompt_injection_suspected", "data_exfiltration_topology", "alien_trajectory", "model_impersonation")),
	p("global_prevalence", integer()),
	p("nearest_neighbors", array(str())),
	p("confidence", num().minimum(0).maximum(1)),
).req("threat_score", "anomaly_type").closedObj().as("sentinel_anomaly_report.v1")

var auditResultRefs = array(object().with(
	p("resource_type", str()),
	p("resource_hash_b64u", b64uField()),
	p("uri", str()),
).req("resource_hash_b64u").closedObj())

var gatewayPayloadRequired = []string{
	"receipt_version", "receipt_id", "gateway_id", "provider", "model",
	"request_hash_b64u", "response_hash_b64u", "tokens_input", "tokens_output", "latency_ms", "timestamp",
}

func gatewayPayloadFields(metadata *schema) []prop {
	return []prop{
		p("receipt_version", constStr("1")),
		p("receipt_id", nonEmpty()),
		p("gateway_id", nonEmpty()),
		p("provider", nonEmpty()),
		p("model", nonEmpty()),
		p("request_hash_b64u", b64uField()),
		p("response_hash_b64u", b64uField()),
		p("tokens_input", nonNeg()),
		p("tokens_output", nonNeg()),
		p("latency_ms", nonNeg()),
		p("timestamp", dateTime()),
		p("binding", receiptBindingSchema),
		p("metadata", metadata),
	}
}

// gatewayMetadataSchema is the standalone receipt's metadata rules.
var gatewayMetadataSchema = object().with(
	p("model_identity", modelIdentitySchema),
	p("model_identity_hash_b64u", b64uField()),
	p("audit_result_refs", auditResultRefs),
	p("x402_payment_ref", nonEmpty()),
	p("x402_amount_minor", integer().minimum(0)),
	p("x402_currency", nonEmpty()),
	p("x402_network", nonEmpty()),
	p("x402_payment_auth_hash_b64u", b64uField()),
	p("log_inclusion_proof", logInclusionProofSchema),
	p("kinematic_fingerprint", kinematicFingerprintSchema),
	p("sentinel_anomaly_report", sentinelAnomalyReportSchema),
)

// gatewayReceiptSchema is the standalone payload (verifyReceipt).
var gatewayReceiptSchema = object().with(gatewayPayloadFields(gatewayMetadataSchema)...).
	req(gatewayPayloadRequired...).closedObj().as("gateway_receipt.v1")

var gatewayReceiptEnvelopeSchema = signedEnvelope("gateway_receipt_envelope.v1", "gateway_receipt", gatewayReceiptSchema)

// bundleGatewayReceiptSchema is the receipt item inside proof_bundle.v1,
// whose metadata rules are narrower than the standalone schema's.
var bundleGatewayReceiptSchema = signedEnvelope("proof_bundle.v1 receipt", "gateway_receipt",
	object().with(gatewayPayloadFields(object().with(
		p("model_identity", modelIdentitySchema),
		p("model_identity_hash_b64u", b64uField()),
		p("audit_result_refs", auditResultRefs),
	))...).req(gatewayPayloadRequired...).closedObj())

var coSignatureSchema = object().with(
	p("signature_b64u", b64uField()),
	p("algorithm", enum("Ed25519")),
	p("signer_did", didField()),
	p("issued_at", dateTime()),
	p("role", enum("proxy", "approver", "auditor", "supervisor")),
).req("signature_b64u", "algorithm", "signer_did", "issued_at", "role").closedObj().as("co_signature.v1")

var disclosureTypes = []string{"string", "number", "boolean", "null", "array", "object"}

var selectiveDisclosureSchema = object().with(
	p("disclosure_algorithm", constStr(disclosureAlgorithm)),
	p("merkle_root_b64u", b64uField()),
	p("redacted_leaf_hashes_b64u", array(b64uField())),
	p("disclosed_leaves", object().additional(object().with(
		p("type", enum(disclosureTypes...)),
		p("value", anyv()),
		p("salt_b64u", b64uField()),
	).req("type", "value", "salt_b64u").closedObj())),
).req("disclosure_algorithm", "merkle_root_b64u", "redacted_leaf_hashes_b64u", "disclosed_leaves").
	closedObj().as("selective_disclosure.v1")

const disclosureAlgorithm = "vir_v2_typed_lexicographical"

var toolReceiptV1Schema = object().with(
	p("receipt_version", constStr("1")),
	p("receipt_id", nonEmpty()),
	p("tool_name", nonEmpty()),
	p("tool_version", str()),
	p("args_hash_b64u", nonEmpty()),
	p("result_hash_b64u", nonEmpty()),
	p("result_status", enum("success", "error", "timeout")),
	p("hash_algorithm", enum("SHA-256")),
	p("agent_did", nonEmpty()),
	p("timestamp", dateTime()),
	p("latency_ms", nonNeg()),
	p("binding", object().with(
		p("run_id", str()), p("event_hash_b64u", str()), p("nonce", str()),
		p("policy_hash", str()), p("token_scope_hash_b64u", str()),
	)),
).req("receipt_version", "receipt_id", "tool_name", "args_hash_b64u", "result_hash_b64u", "hash_algorithm", "agent_did", "timestamp", "latency_ms").
	closedObj().as("tool_receipt.v1")

var toolReceiptV2Schema = object().with(
	p("receipt_version", constStr("2")),
	p("receipt_id", nonEmpty()),
	p("tool_name", nonEmpty()),
	p("tool_version", str()),
	p("args_hash_b64u", b64uField()),
	p("result_hash_b64u", b64uField()),
	p("result_status", enum("success", "error", "timeout")),
	p("hash_algorithm", enum("SHA-256", "BLAKE3")),
	p("agent_did", didField()),
	p("timestamp", dateTime()),
	p("latency_ms", nonNeg()),
	p("binding", receiptBindingSchema),
	p("args_salt_b64u", b64uField()),
	p("result_salt_b64u", b64uField()),
	p("args_disclosure", selectiveDisclosureSchema),
	p("result_disclosure", selectiveDisclosureSchema),
).req("receipt_version", "receipt_id", "tool_name", "args_hash_b64u", "result_hash_b64u", "hash_algorithm", "agent_did", "timestamp", "latency_ms", "args_salt_b64u", "result_salt_b64u").
	closedObj().as("tool_receipt.v2")

var toolReceiptEnvelopeV1Schema = envelopeOf("tool_receipt_envelope.v1", "tool_receipt", toolReceiptV1Schema, envLoose)

var toolReceiptEnvelopeV2Schema = object().with(
	p("envelope_version", constStr("2")),
	p("envelope_type", constStr("tool_receipt")),
	p("payload", toolReceiptV2Schema),
	p("payload_hash_b64u", b64uField()),
	p("hash_algorithm", enum("SHA-256", "BLAKE3")),
	p("signature_b64u", b64uField()),
	p("algorithm", enum("Ed25519")),
	p("signer_did", didField()),
	p("issued_at", dateTime()),
	p("expires_at", dateTime()),
	p("co_signatures", array(coSignatureSchema).maxItemsN(16)),
).req(envelopeRequired...).closedObj().as("tool_receipt_envelope.v2")

var webReceiptSchema = object().with(
	p("receipt_version", constStr("1")),
	p("receipt_id", nonEmpty()),
	p("witness_id", nonEmpty()),
	p("source", enum("chatgpt_web", "claude_web", "gemini_web", "other")),
	p("request_hash_b64u", b64uField()),
	p("response_hash_b64u", b64uField()),
	p("session_hash_b64u", b64uField()),
	p("timestamp", dateTime()),
	p("binding", receiptBindingSchema),
	p("transparency", object().with(
		p("inclusion_proof", logInclusionProofSchema),
		p("anchor_id", nonEmpty()),
		p("anchor_uri", nonEmpty()),
	).closedObj()),
	p("metadata", object()),
).req("receipt_version", "receipt_id", "witness_id", "source", "request_hash_b64u", "response_hash_b64u", "timestamp").
	closedObj().as("web_receipt.v1")

var webReceiptEnvelopeSchema = signedEnvelope("web_receipt_envelope.v1", "web_receipt", webReceiptSchema)

var rateLimitClaimSchema = object().with(
	p("claim_version", constStr("1")),
	p("scope", enum("agent", "model", "tool")),
	p("scope_key", nonEmpty()),
	p("window_start", dateTime()),
	p("window_end", dateTime()),
	p("max_requests", nonNeg()),
	p("observed_requests", nonNeg()),
	p("max_tokens_input", nonNeg()),
	p("observed_tokens_input", nonNeg()),
	p("max_tokens_output", nonNeg()),
	p("observed_tokens_output", nonNeg()),
	p("run_id", nonEmpty()),
).req("claim_version", "scope", "scope_key", "window_start", "window_end", "max_requests", "observed_requests").closedObj()

var eventSchema = object().with(
	p("event_id", nonEmpty()),
	p("run_id", nonEmpty()),
	p("event_type", nonEmpty()),
	p("timestamp", dateTime()),
	p("payload_hash_b64u", b64uField()),
	p("prev_hash_b64u", b64uField().orNull()),
	p("event_hash_b64u", b64uField()),
).req("event_id", "run_id", "event_type", "timestamp", "payload_hash_b64u", "prev_hash_b64u", "event_hash_b64u").closedObj()

var egressPolicyReceiptSchema = object().with(
	p("envelope_version", constStr("1")),
	p("envelope_type", constStr("egress_policy_receipt")),
	p("payload", object().with(
		p("receipt_version", constStr("1")),
		p("receipt_id", nonEmpty()),
		p("policy_version", constStr("1")),
		p("policy_hash_b64u", b64uField()),
		p("effective_policy_hash_b64u", b64uField()),
		p("proofed_mode", constBool(true)),
		p("clawproxy_url", str().fmt(fmtURI).minLength(1)),
		p("allowed_proxy_destinations", array(str().pat(isDestination, "^[a-z0-9.*:-]+$").minLength(1)).minItemsN(1)),
		p("allowed_child_destinations", array(str().pat(isDestination, "^[a-z0-9.*:-]+$").minLength(1)).minItemsN(1)),
		p("direct_provider_access_blocked", constBool(true)),
		p("blocked_attempt_count", integer().minimum(0)),
		p("blocked_attempts_observed", boolean()),
		p("hash_algorithm", constStr("SHA-256")),
		p("agent_did", didField()),
		p("timestamp", dateTime()),
		p("binding", object().with(
			p("run_id", nonEmpty()),
			p("event_hash_b64u", b64uField()),
		).req("run_id", "event_hash_b64u").closedObj()),
		p("transparency", object().with(
			p("inclusion_proof", logInclusionProofSchema),
			p("consistency_proof", object().with(
				p("proof_version", constStr("1")),
				p("log_id", nonEmpty()),
				p("from_tree_size", integer().minimum(1)),
				p("to_tree_size", integer().minimum(1)),
				p("from_root_hash_b64u", b64uField()),
				p("to_root_hash_b64u", b64uField()),
				p("consistency_path", array(b64uField())),
				p("metadata", object()),
			).req("proof_version", "log_id", "from_tree_size", "to_tree_size", "from_root_hash_b64u", "to_root_hash_b64u", "consistency_path").closedObj()),
			p("anchor_id", nonEmpty()),
			p("anchor_uri", str().fmt(fmtURI).minLength(1)),
		).req("inclusion_proof").closedObj()),
	).req("receipt_version", "receipt_id", "policy_version", "policy_hash_b64u", "proofed_mode", "clawproxy_url",
		"allowed_proxy_destinations", "allowed_child_destinations", "direct_provider_access_blocked",
		"blocked_attempt_count", "blocked_attempts_observed", "hash_algorithm", "agent_did", "timestamp", "binding").closedObj()),
	p("payload_hash_b64u", b64uField()),
	p("hash_algorithm", enum("SHA-256")),
	p("signature_b64u", b64uField()),
	p("algorithm", enum("Ed25519")),
	p("signer_did", didField()),
	p("issued_at", dateTime()),
).req(envelopeRequired...).closedObj()

func isDestination(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '*' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func isDecimalDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isCAIP10Registry(s string) bool {
	// eip155:<digits>:0x<40 hex>
	rest, ok := cutPrefix(s, "eip155:")
	if !ok {
		return false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ':' {
		return false
	}
	addr := rest[i+1:]
	if len(addr) != 42 || addr[0] != '0' || addr[1] != 'x' {
		return false
	}
	for j := 2; j < len(addr); j++ {
		c := addr[j]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

var sentinelCount = nonNeg()

var bundleMetadataSchema = object().with(
	p("harness", object().with(
		p("id", nonEmpty()),
		p("version", nonEmpty()),
		p("runtime", str()),
		p("config_hash_b64u", b64uField()),
	).req("id", "version")),
	p("sentinels", object().with(
		p("interpose_active", boolean()),
		p("shell_events", sentinelCount), p("fs_events", sentinelCount), p("net_events", sentinelCount),
		p("net_suspicious", sentinelCount), p("interpose_events", sentinelCount), p("interpose_gateway", sentinelCount),
		p("interpose_transcript", sentinelCount), p("interpose_tool_calls", sentinelCount), p("interpose_anomalies", sentinelCount),
		p("preload_llm_events", sentinelCount), p("tls_sni_events", sentinelCount), p("tls_sni_receipts", sentinelCount),
		p("tls_decrypt_receipts", sentinelCount), p("vir_receipts", sentinelCount),
		p("runtime_profile", object()), p("runtime_hygiene", object()),
		p("egress_policy_receipt", egressPolicyReceiptSchema),
		p("interpose_state", object()),
	).req("interpose_active").closedObj()),
)

var proofBundleSchema = object().with(
	p("bundle_version", constStr("1")),
	p("bundle_id", nonEmpty()),
	p("agent_did", didField()),
	p("eip8004_agent_id", str().pat(isDecimalDigits, "^[0-9]+$")),
	p("eip8004_registry", str().pat(isCAIP10Registry, "eip155:<chain>:0x<40 hex>")),
	p("urm", object().with(
		p("urm_version", constStr("1")),
		p("urm_id", nonEmpty()),
		p("resource_type", nonEmpty()),
		p("resource_hash_b64u", b64uField()),
		p("metadata", object()),
	).req("urm_version", "urm_id", "resource_type", "resource_hash_b64u").closedObj()),
	p("event_chain", array(eventSchema).minItemsN(1)),
	p("vir_receipts", array(oneOf(
		ref("vir.v1", func() *schema { return virV1Schema }),
		ref("vir.v2", func() *schema { return virV2Schema }),
		ref("vir_envelope.v1", func() *schema { return virEnvelopeV1Schema }),
		ref("vir_envelope.v2", func() *schema { return virEnvelopeV2Schema }),
	)).minItemsN(1)),
	p("receipts", array(bundleGatewayReceiptSchema).minItemsN(1)),
	p("web_receipts", array(webReceiptEnvelopeSchema).minItemsN(1)),
	p("coverage_attestations", array(ref("coverage_attestation_envelope.v1", func() *schema { return coverageAttestationEnvelopeSchema }))),
	p("binary_semantic_evidence_attestations", array(ref("binary_semantic_evidence_envelope.v1", func() *schema { return binarySemanticEvidenceEnvelopeSchema }))),
	p("tool_receipts", array(oneOf(toolReceiptV1Schema, toolReceiptEnvelopeV1Schema, toolReceiptV2Schema, toolReceiptEnvelopeV2Schema)).maxItemsN(1000)),
	p("side_effect_receipts", array(object().with(
		p("receipt_version", constStr("1")),
		p("receipt_id", nonEmpty()),
		p("effect_class", enum(effectClasses...)),
		p("target_digest", str()),
		p("request_digest", str()),
		p("response_digest", str()),
		p("hash_algorithm", enum("SHA-256", "BLAKE3")),
		p("vendor_id", str()),
		p("bytes_written", nonNeg()),
		p("agent_did", didField()),
		p("timestamp", dateTime()),
		p("binding", object()),
	).req("receipt_version", "receipt_id", "effect_class", "hash_algorithm", "agent_did", "timestamp")).maxItemsN(1000)),
	p("human_approval_receipts", array(object().with(
		p("receipt_version", constStr("1")),
		p("receipt_id", nonEmpty()),
		p("approval_type", enum(approvalTypes...)),
		p("scope_hash_b64u", str()),
		p("plan_hash_b64u", str()),
		p("approver_subject", str()),
		p("capability_minted", boolean()),
		p("policy_hash_b64u", str()),
		p("agent_did", didField()),
		p("timestamp", dateTime()),
		p("binding", object()),
	).req("receipt_version", "receipt_id", "approval_type", "agent_did", "timestamp")).maxItemsN(1000)),
	p("delegation_receipts", array(object().with(
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
		p("binding", object()),
	).req("receipt_version", "receipt_id", "delegator_did", "delegate_did", "task_description_hash_b64u", "delegate_bundle_hash_b64u", "hash_algorithm", "delegated_at")).maxItemsN(1000)),
	p("rate_limit_claims", array(rateLimitClaimSchema).maxItemsN(256)),
	p("attestations", array(object().with(
		p("attestation_id", nonEmpty()),
		p("attestation_type", enum("owner", "third_party")),
		p("attester_did", didField()),
		p("subject_did", didField()),
		p("expires_at", dateTime()),
		p("signature_b64u", b64uField()),
	).req("attestation_id", "attestation_type", "attester_did", "subject_did", "signature_b64u").closedObj()).minItemsN(1)),
	p("metadata", bundleMetadataSchema),
).req("bundle_version", "bundle_id", "agent_did").closedObj().anyOfRequired(
	[]string{"urm"}, []string{"event_chain"}, []string{"receipts"}, []string{"vir_receipts"},
	[]string{"web_receipts"}, []string{"binary_semantic_evidence_attestations"}, []string{"tool_receipts"},
	[]string{"side_effect_receipts"}, []string{"human_approval_receipts"}, []string{"delegation_receipts"},
	[]string{"attestations"},
).as("proof_bundle.v1")

var effectClasses = []string{"network_egress", "filesystem_write", "external_api_write"}

var approvalTypes = []string{"explicit_approve", "explicit_deny", "auto_approve", "timeout_deny"}

var proofBundleEnvelopeSchema = signedEnvelope("proof_bundle_envelope.v1", "proof_bundle", proofBundleSchema)

var manifestSchema = object().with(
	p("manifest_version", constStr("1")),
	p("generated_at", dateTime()),
	p("entries", array(object().with(
		p("path", nonEmpty()),
		p("sha256_b64u", b64uField()),
		p("content_type", nonEmpty()),
		p("size_bytes", nonNeg()),
	).req("path", "sha256_b64u", "content_type", "size_bytes").closedObj()).minItemsN(1)),
).req("manifest_version", "generated_at", "entries").closedObj().as("export_bundle_manifest.v1")

var derivationAttestationSchema = object().with(
	p("derivation_version", constStr("1")),
	p("derivation_id", nonEmpty()),
	p("issued_at", dateTime()),
	p("input_model", modelIdentitySchema),
	p("output_model", modelIdentitySchema),
	p("transform", object().with(
		p("kind", nonEmpty()),
		p("code_hash_b64u", b64uField()),
		p("params_hash_b64u", b64uField()),
		p("build_steps", array(str())),
	).req("kind").closedObj()),
	p("artifacts", array(object().with(
		p("type", nonEmpty()),
		p("hash_b64u", b64uField()),
		p("uri", str()),
		p("content_type", str()),
	).req("type", "hash_b64u").closedObj())),
	p("execution", object().with(
		p("execution_attestation_hash_b64u", b64uField()),
		p("proof_bundle_hash_b64u", b64uField()),
	).closedObj()),
	p("clawlogs", object().with(
		p("log_entry_hash_b64u", b64uField()),
		p("inclusion_proof", logInclusionProofSchema),
	).closedObj()),
	p("metadata", object()),
).req("derivation_version", "derivation_id", "issued_at", "input_model", "output_model", "transform").closedObj().as("derivation_attestation.v1")

var derivationAttestationEnvelopeSchema = envelopeOf("derivation_attestation_envelope.v1", "derivation_attestation", derivationAttestationSchema, envStrictNoExpiry)

var exportBundleSchema = object().with(
	p("export_version", constStr("1")),
	p("export_id", nonEmpty()),
	p("created_at", dateTime()),
	p("issuer_did", didField()),
	p("manifest", manifestSchema),
	p("artifacts", object().with(
		p("proof_bundle_envelope", proofBundleEnvelopeSchema),
		p("execution_attestation_envelopes", array(ref("execution_attestation_envelope.v1", func() *schema { return executionAttestationEnvelopeSchema }))),
		p("derivation_attestation_envelopes", array(derivationAttestationEnvelopeSchema)),
		p("audit_result_attestation_envelopes", array(ref("audit_result_attestation_envelope.v1", func() *schema { return auditResultAttestationEnvelopeSchema }))),
	).req("proof_bundle_envelope").closedObj()),
	p("bundle_hash_b64u", b64uField()),
	p("hash_algorithm", enum("SHA-256")),
	p("signature_b64u", b64uField()),
	p("algorithm", enum("Ed25519")),
	p("issued_at", dateTime()),
	p("expires_at", dateTime()),
	p("metadata", object()),
).req("export_version", "export_id", "created_at", "issuer_did", "manifest", "artifacts", "bundle_hash_b64u", "hash_algorithm", "signature_b64u", "algorithm", "issued_at").
	closedObj().as("export_bundle.v1")

var aggregateBundleSchema = object().with(
	p("aggregate_version", constStr("1")),
	p("aggregate_id", nonEmpty()),
	p("created_at", dateTime()),
	p("expires_at", dateTime()),
	p("issuer_did", didField()),
	p("manifest", manifestSchema),
	p("artifacts", object().with(
		p("member_bundles", array(oneOf(proofBundleEnvelopeSchema, exportBundleSchema)).minItemsN(1).maxItemsN(1000)),
	).req("member_bundles").closedObj()),
	p("metadata", object().with(
		p("fleet_summary", object().with(
			p("total_members", num().minimum(1)),
			p("unique_agents", num().minimum(1)),
			p("total_runs", num().minimum(1)),
			p("fleet_proof_tier", str()),
		).req("total_members", "unique_agents", "total_runs").closedObj()),
	).req("fleet_summary")),
).req("aggregate_version", "aggregate_id", "created_at", "issuer_did", "manifest", "artifacts", "metadata").
	closedObj().as("aggregate_bundle.v1")

var aggregateBundleEnvelopeSchema = signedEnvelope("aggregate_bundle_envelope.v1", "aggregate_bundle", aggregateBundleSchema)
