package verify

// Reason codes. The first group is the reference verifier's (PROTOCOL.md
// §6.5), kept letter for letter; the last group is clawea's own, used only
// by strict mode and by input errors the reference has no code for.
const (
	OK                         = "OK"
	MalformedEnvelope          = "MALFORMED_ENVELOPE"
	UnknownEnvelopeVersion     = "UNKNOWN_ENVELOPE_VERSION"
	UnknownEnvelopeType        = "UNKNOWN_ENVELOPE_TYPE"
	UnknownAlgorithm           = "UNKNOWN_ALGORITHM"
	UnknownHashAlgorithm       = "UNKNOWN_HASH_ALGORITHM"
	UnknownVersion             = "UNKNOWN_VERSION"
	UnknownType                = "UNKNOWN_TYPE"
	UnknownAlgo                = "UNKNOWN_ALGO"
	SchemaValidationFailed     = "SCHEMA_VALIDATION_FAILED"
	InvalidDIDFormat           = "INVALID_DID_FORMAT"
	HashMismatch               = "HASH_MISMATCH"
	SignatureInvalid           = "SIGNATURE_INVALID"
	CoSignatureInvalid         = "CO_SIGNATURE_INVALID"
	ExpiredTTL                 = "EXPIRED_TTL"
	DependencyNotConfigured    = "DEPENDENCY_NOT_CONFIGURED"
	ClaimNotFound              = "CLAIM_NOT_FOUND"
	ReceiptBindingMismatch     = "RECEIPT_BINDING_MISMATCH"
	ReceiptVerificationFailed  = "RECEIPT_VERIFICATION_FAILED"
	ProofBundleAgentMismatch   = "PROOF_BUNDLE_AGENT_MISMATCH"
	DisclosureAlgorithmUnknown = "DISCLOSURE_ALGORITHM_UNKNOWN"
	DisclosureRootMismatch     = "DISCLOSURE_ROOT_MISMATCH"
	DisclosureTypeMismatch     = "DISCLOSURE_TYPE_MISMATCH"
	RateLimitWindowInvalid     = "RATE_LIMIT_WINDOW_INVALID"
	RateLimitClaimInconsistent = "RATE_LIMIT_CLAIM_INCONSISTENT"
	RateLimitExceeded          = "RATE_LIMIT_EXCEEDED"
	URMMissing                 = "URM_MISSING"
	URMMismatch                = "URM_MISMATCH"
	PromptCommitmentMismatch   = "PROMPT_COMMITMENT_MISMATCH"
	CommitMessageInvalid       = "COMMIT_MESSAGE_INVALID"
	InclusionProofInvalid      = "INCLUSION_PROOF_INVALID"

	MissingRequiredField         = "MISSING_REQUIRED_FIELD"
	CausalClockContradiction     = "CAUSAL_CLOCK_CONTRADICTION"
	FutureTimestampPoisoning     = "FUTURE_TIMESTAMP_POISONING"
	AggregateSignerMismatch      = "AGGREGATE_SIGNER_MISMATCH"
	UnsortedMemberArray          = "UNSORTED_MEMBER_ARRAY"
	AggregateDuplicateMember     = "AGGREGATE_DUPLICATE_MEMBER"
	InconsistentRunID            = "INCONSISTENT_RUN_ID"
	AggregateMemberInvalid       = "AGGREGATE_MEMBER_INVALID"
	IdentityConflict             = "IDENTITY_CONFLICT"
	AggregateTTLExceedsMember    = "AGGREGATE_TTL_EXCEEDS_MEMBER"
	AggregateDuplicateBundleID   = "AGGREGATE_DUPLICATE_BUNDLE_ID"
	AggregateDuplicateRunID      = "AGGREGATE_DUPLICATE_RUN_ID"
	FleetSummaryMismatch         = "FLEET_SUMMARY_MISMATCH"
	CausalPhaseInvalid           = "CAUSAL_PHASE_INVALID"
	CausalPhaseTransitionInvalid = "CAUSAL_PHASE_TRANSITION_INVALID"
	CausalConfidenceOutOfRange   = "CAUSAL_CONFIDENCE_OUT_OF_RANGE"
	CausalBindingNormalization   = "CAUSAL_BINDING_NORMALIZATION_FAILED"
	CausalBindingFieldConflict   = "CAUSAL_BINDING_FIELD_CONFLICT"
	CausalReceiptReplayDetected  = "CAUSAL_RECEIPT_REPLAY_DETECTED"
	CausalReferenceDangling      = "CAUSAL_REFERENCE_DANGLING"
	CausalSpanReuseConflict      = "CAUSAL_SPAN_REUSE_CONFLICT"
	CausalCycleDetected          = "CAUSAL_CYCLE_DETECTED"
	CausalGraphDisconnected      = "CAUSAL_GRAPH_DISCONNECTED"
	CausalSideEffectOrphaned     = "CAUSAL_SIDE_EFFECT_ORPHANED"
	CausalHumanApprovalOrphaned  = "CAUSAL_HUMAN_APPROVAL_ORPHANED"

	// clawea's own codes.
	UnsignedPayload     = "UNSIGNED_PAYLOAD"     // strict: raw payload without a signature
	UnsupportedEvidence = "UNSUPPORTED_EVIDENCE" // strict: evidence this verifier cannot check
	InputInvalid        = "INPUT_INVALID"        // not JSON, or not a known artifact (ERROR)
	InputTooLarge       = "INPUT_TOO_LARGE"      // over the size cap, refused unread (ERROR)
	DuplicateJSONKey    = "DUPLICATE_JSON_KEY"   // a key written twice in one object (both modes)
	AggregateIncomplete = "AGGREGATE_INCOMPLETE" // strict: members are not a job's whole segment sequence
	ReceiptMissing      = "RECEIPT_MISSING"      // strict: an event's receipt is absent
	ReceiptUnbound      = "RECEIPT_UNBOUND"      // strict: a receipt or record names no event of the chain
	SignerNotPinned     = "SIGNER_NOT_PINNED"    // a bundle or aggregate signer outside the configured pin
)

// Explain returns a one-line hint for a reason code.
func Explain(code string) string {
	if h, ok := hints[code]; ok {
		return h
	}
	return ""
}

var hints = map[string]string{
	OK:                          "every check passed",
	MalformedEnvelope:           "a structural field is missing or ill-typed, a date or base64url value is bad, a limit is exceeded, or the event chain is not linked",
	UnknownEnvelopeVersion:      "envelope_version is not one this verifier supports (\"1\"; \"2\" only for tool receipts)",
	UnknownEnvelopeType:         "envelope_type is not allowed here",
	UnknownAlgorithm:            "algorithm must be Ed25519",
	UnknownHashAlgorithm:        "hash_algorithm is not supported (SHA-256 only is implemented)",
	UnknownVersion:              "a receipt or signature version is not supported",
	SchemaValidationFailed:      "the document does not have the shape the protocol requires",
	InvalidDIDFormat:            "a DID is malformed, the signer is not the agent, or no key can be extracted from it",
	HashMismatch:                "a recomputed hash differs from the one written: the content was changed after hashing",
	SignatureInvalid:            "a signature does not verify with the signer's key",
	CoSignatureInvalid:          "a co-signature does not verify",
	ExpiredTTL:                  "the artifact expired before the verification time (use --at to verify at another time)",
	DependencyNotConfigured:     "a required signer allowlist is empty; pass --config with the trusted gateway DIDs",
	ClaimNotFound:               "the signer is not in the allowlist",
	ReceiptBindingMismatch:      "a receipt is not bound to this run's event chain",
	ReceiptVerificationFailed:   "a bound gateway receipt failed signature, hash or allowlist checks",
	ProofBundleAgentMismatch:    "a receipt names a different agent than the bundle",
	DisclosureRootMismatch:      "a selective disclosure does not match the committed hash",
	DisclosureTypeMismatch:      "a disclosed value's JSON type differs from its declared type",
	RateLimitWindowInvalid:      "a rate-limit window ends before it starts",
	RateLimitClaimInconsistent:  "rate-limit claim fields disagree",
	RateLimitExceeded:           "observed usage exceeds the claimed limit",
	URMMissing:                  "the bundle references a URM document that was not supplied (--urm)",
	URMMismatch:                 "the URM document does not match the bundle",
	InclusionProofInvalid:       "a transparency-log inclusion proof does not verify",
	UnsignedPayload:             "strict mode refuses an unsigned payload: only signed envelopes can pass",
	UnsupportedEvidence:         "strict mode refuses evidence kinds this verifier cannot check",
	InputInvalid:                "the input is not JSON or not a recognised artifact",
	InputTooLarge:               "the input is over the size limit; raise --max-bytes if it is expected",
	DuplicateJSONKey:            "an object holds the same key twice: parsers disagree on which copy counts, so the document is refused",
	AggregateIncomplete:         "strict mode: the aggregate's members are not the whole contiguous segment sequence (.s0 ... .sN) of one job",
	ReceiptMissing:              "strict mode: an llm_call or tool_call event has no receipt bound to it in the bundle",
	ReceiptUnbound:              "strict mode: a receipt or record is not bound to an event of the bundle's chain",
	SignerNotPinned:             "the bundle or aggregate signer is not in the pinned signers of the trust config (agent_signer_dids / aggregate_signer_dids)",
	CommitMessageInvalid:        "an m1 commit signature message must be commit:<7-64 hex>",
	AggregateMemberInvalid:      "a member bundle of the aggregate failed verification",
	IdentityConflict:            "the aggregate issuer is also one of its member agents",
	UnsortedMemberArray:         "aggregate members must be sorted by the hash of their JCS form",
	FleetSummaryMismatch:        "the fleet summary does not match the members",
	CausalSideEffectOrphaned:    "a side-effect receipt is not anchored to a span declared by a gateway receipt",
	CausalHumanApprovalOrphaned: "a human-approval receipt is not anchored to a span declared by a gateway receipt",
}
