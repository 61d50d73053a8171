package modelgw

import (
	"encoding/json"
	"net/http"

	"github.com/clawea/clawea/internal/httpapi"
)

// Error codes the gateway answers with (besides the token verifier's
// TOKEN_* codes and the policy source's WPC_* codes).
const (
	CodeStrictAuthHeaders   = httpapi.CodeStrictAuthHeaders
	CodeProviderKeyRefused  = httpapi.CodeProviderKeyRefused
	CodeBYOKDisabled        = "BYOK_DISABLED"
	CodeUnknownProvider     = "UNKNOWN_PROVIDER"
	CodeUnknownRoute        = "UNKNOWN_ROUTE"
	CodeProviderAPIMismatch = "PROVIDER_API_MISMATCH"
	CodeProviderKeyMissing  = "PROVIDER_KEY_UNAVAILABLE"
	CodeRequestTooLarge     = "REQUEST_TOO_LARGE"
	CodeInvalidRequest      = "INVALID_REQUEST"
	CodePolicyRequired      = "POLICY_REQUIRED"
	CodePolicyHashMismatch  = httpapi.CodePolicyHashMismatch
	CodeProviderNotAllowed  = "POLICY_PROVIDER_NOT_ALLOWED"
	CodeModelRequired       = "POLICY_MODEL_REQUIRED"
	CodeModelNotAllowed     = "POLICY_MODEL_NOT_ALLOWED"
	CodeTierTooLow          = "POLICY_MODEL_IDENTITY_TIER_TOO_LOW"
	CodeEgressNotAllowed    = "POLICY_EGRESS_NOT_ALLOWED"
	CodePolicyDenied        = "POLICY_DENIED"
	CodeApprovalRequired    = "POLICY_APPROVAL_REQUIRED"
	CodePolicyInvalid       = "POLICY_INVALID"
	CodePrivacyUnsupported  = "RECEIPT_PRIVACY_MODE_UNSUPPORTED"
	CodeRequestBudget       = "REQUEST_BUDGET_EXCEEDED"
	CodeTokenBudget         = "TOKEN_BUDGET_EXCEEDED"
	CodeIdemMismatch        = "IDEMPOTENCY_FINGERPRINT_MISMATCH"
	CodeIdemInUse           = "IDEMPOTENCY_KEY_IN_USE"
	CodeIdemUnavailable     = "IDEMPOTENCY_REPLAY_UNAVAILABLE"
	CodeIdemInvalid         = "IDEMPOTENCY_KEY_INVALID"
	CodeUpstreamUnreachable = "UPSTREAM_UNAVAILABLE"
	CodeUpstreamTimeout     = "UPSTREAM_TIMEOUT"
	CodeUpstreamError       = "UPSTREAM_ERROR"
	CodeUpstreamMalformed   = "UPSTREAM_MALFORMED"
	CodeUpstreamTooLarge    = "UPSTREAM_RESPONSE_TOO_LARGE"
	CodeUpstreamAborted     = "UPSTREAM_STREAM_ABORTED"
	CodeClientDisconnected  = "CLIENT_DISCONNECTED"
	CodeSigningFailed       = "RECEIPT_SIGNING_FAILED"
	CodeStoreFailed         = "RECEIPT_STORE_FAILED"
	CodeJobClosed           = "JOB_NOT_OPEN"
	CodeReceiptNotFound     = "RECEIPT_NOT_FOUND"
	CodeJobNotFound         = "JOB_NOT_FOUND"
	CodeReceiptPending      = "RECEIPT_PENDING"
	CodeStoreUnavailable    = "STORE_UNAVAILABLE"
	CodeModelNameTooLong    = "MODEL_NAME_TOO_LONG"
	CodeStreamLimit         = "STREAM_LIMIT_EXCEEDED"
)

// MaxModelNameBytes bounds a request's model name: it is copied into the
// llm_call event and the signed receipt (model, model_identity).
const MaxModelNameBytes = 256

// Error is a refusal with a stable code and an HTTP status: httpapi's one
// error type (a Go error passed to errf is kept as the private cause,
// never sent).
type Error = httpapi.Error

func errf(status int, code, format string, args ...any) *Error {
	return httpapi.Errorf(status, code, format, args...)
}

// errorBody is {"error":{"code","message","type"}}: clawea's shape, which
// the OpenAI SDKs read as an API error (type mirrors the code), plus
// "type":"error" at the top as Anthropic's SDK expects.
type errorBody struct {
	Type  string      `json:"type,omitempty"`
	Error errorDetail `json:"error"`
	// Receipt is the signed receipt of a call that reached the provider.
	Receipt json.RawMessage `json:"_receipt_envelope,omitempty"`
}

type errorDetail struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	Type       string   `json:"type"`
	Statements []string `json:"statements,omitempty"`
	RequestID  string   `json:"request_id,omitempty"`
}

// writeError answers e in clawea's shape with the SDK-compatible extras;
// httpapi.Prepare logs its private cause with the request id.
func writeError(w http.ResponseWriter, r *http.Request, anthropic bool, err *Error, receipt []byte) {
	e := httpapi.Prepare(r, err)
	b := errorBody{Error: errorDetail{Code: e.Code, Message: e.Msg, Type: e.Code, Statements: e.Statements, RequestID: e.RequestID}, Receipt: receipt}
	if anthropic {
		b.Type = "error"
	}
	raw, _ := json.Marshal(b)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Clawea-Error", e.Code)
	w.WriteHeader(e.Status)
	w.Write(append(raw, '\n'))
}
