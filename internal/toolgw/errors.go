package toolgw

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Codes the tool gateway answers with (besides the token verifier's
// TOKEN_* codes and the policy source's WPC_* codes).
const (
	CodeUnknownTool       = "UNKNOWN_TOOL"
	CodeInvalidArguments  = "INVALID_ARGUMENTS"
	CodeUnknownVault      = "UNKNOWN_VAULT"
	CodeUnknownNamespace  = "UNKNOWN_NAMESPACE"
	CodePolicyRequired    = "POLICY_REQUIRED"
	CodePolicyDenied      = "POLICY_DENIED"
	CodeLockdown          = "LOCKDOWN_ACTIVE"
	CodeApprovalRequired  = "APPROVAL_REQUIRED"
	CodeApprovalPending   = "APPROVAL_PENDING"
	CodeApprovalDenied    = "APPROVAL_DENIED"
	CodeApprovalExpired   = "APPROVAL_EXPIRED"
	CodeApprovalNotFound  = "APPROVAL_NOT_FOUND"
	CodeApprovalDecided   = "APPROVAL_ALREADY_DECIDED"
	CodeApproverUnknown   = "APPROVER_NOT_ALLOWED"
	CodeApprovalSignature = "APPROVAL_SIGNATURE_INVALID"
	CodeNotFound          = "NOT_FOUND"
	CodeConflict          = "CONFLICT"
	CodeForbidden         = "CONNECTOR_FORBIDDEN"
	CodeLockLost          = "SERVICEBUS_LOCK_LOST"
	CodeTooLarge          = "SERVICEBUS_MESSAGE_TOO_LARGE"
	CodeConnectorTimeout  = "CONNECTOR_TIMEOUT"
	CodeConnectorError    = "CONNECTOR_ERROR"
	CodeSigningFailed     = "RECEIPT_SIGNING_FAILED"
	CodeStoreFailed       = "RECEIPT_STORE_FAILED"
	CodeStoreUnavailable  = "STORE_UNAVAILABLE"
	CodeUnauthorized      = "UNAUTHORIZED"
	CodeInvalidRequest    = "INVALID_REQUEST"
)

// Error is a refusal or failure with a stable code.
type Error struct {
	Status     int      `json:"-"`
	Code       string   `json:"code"`
	Msg        string   `json:"message"`
	Statements []string `json:"statements,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	// ReceiptID names the signed record of the refusal, when one was made.
	ReceiptID string `json:"receipt_id,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

func errf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	raw, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(raw, '\n'))
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("X-Clawea-Error", e.Code)
	writeJSON(w, e.Status, map[string]any{"error": e})
}
