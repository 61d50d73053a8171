package toolgw

import (
	"net/http"

	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/httpapi"
)

// Codes the tool gateway answers with (besides the token verifier's
// TOKEN_* codes and the policy source's WPC_* codes).
const (
	CodeUnknownTool = "UNKNOWN_TOOL"
	// CodeExactAllowRequired: a runtime tool as strong as a shell (exec,
	// process, nodes, gateway, sessions_spawn, ...) matched only a glob.
	CodeExactAllowRequired = "EXACT_ALLOW_REQUIRED"
	CodeInvalidArguments   = connector.CodeInvalidArguments
	CodeUnknownVault       = keyvault.CodeUnknownVault
	CodeUnknownNamespace   = servicebus.CodeUnknownNamespace
	CodePolicyRequired     = "POLICY_REQUIRED"
	CodePolicyDenied       = "POLICY_DENIED"
	CodeLockdown           = "LOCKDOWN_ACTIVE"
	CodeApprovalRequired   = "APPROVAL_REQUIRED"
	CodeApprovalPending    = "APPROVAL_PENDING"
	CodeApprovalDenied     = "APPROVAL_DENIED"
	CodeApprovalExpired    = "APPROVAL_EXPIRED"
	CodeApprovalNotFound   = "APPROVAL_NOT_FOUND"
	CodeApprovalDecided    = "APPROVAL_ALREADY_DECIDED"
	CodeApproverUnknown    = "APPROVER_NOT_ALLOWED"
	CodeApprovalSignature  = "APPROVAL_SIGNATURE_INVALID"
	CodeNotFound           = "NOT_FOUND"
	CodeConflict           = "CONFLICT"
	CodeForbidden          = "CONNECTOR_FORBIDDEN"
	CodeLockLost           = servicebus.CodeLockLost
	CodeTooLarge           = servicebus.CodeTooLarge
	CodeConnectorTimeout   = "CONNECTOR_TIMEOUT"
	CodeConnectorError     = "CONNECTOR_ERROR"
	CodeSigningFailed      = "RECEIPT_SIGNING_FAILED"
	CodeStoreFailed        = "RECEIPT_STORE_FAILED"
	CodeStoreUnavailable   = "STORE_UNAVAILABLE"
	CodeUnauthorized       = httpapi.CodeUnauthorized
	CodeInvalidRequest     = httpapi.CodeInvalidRequest
)

// Error is a refusal or failure with a stable code: httpapi's one error
// type (Statements, ApprovalID and ReceiptID are its public extras; a Go
// error passed to errf is kept as the private cause, never sent).
type Error = httpapi.Error

func errf(status int, code, format string, args ...any) *Error {
	return httpapi.Errorf(status, code, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, r *http.Request, e *Error) { httpapi.Write(w, r, e) }
