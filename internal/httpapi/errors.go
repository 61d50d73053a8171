// Package httpapi is the one error type, error shape and credential layer
// of clawea's HTTP surfaces.
//
// Every handler answers a failure with Write, which sends
// {"error":{"code","message",...}} and never the text of a Go error: an
// *Error carries a public message and, separately, a private cause that is
// logged with the request id. Any other error becomes 500 INTERNAL.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/clawea/clawea/token"
)

// Codes shared by every surface.
const (
	CodeInternal         = "INTERNAL"
	CodeStoreUnavailable = "STORE_UNAVAILABLE"
	CodeUnauthorized     = "UNAUTHORIZED"
	CodeInvalidRequest   = "INVALID_REQUEST"
	CodeInvalidJSON      = "INVALID_JSON"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	// CodeStrictAuthHeaders: two credential headers carry different
	// credentials (the model gateway's code, now used everywhere).
	CodeStrictAuthHeaders = "STRICT_AUTH_HEADERS"
	// CodePolicyHashMismatch: X-Policy-Hash differs from the policy the
	// job's token is pinned to.
	CodePolicyHashMismatch = "POLICY_HASH_MISMATCH"
)

// Error is a failure with an HTTP status, a stable code and a public
// message. The cause is private: it is logged, never sent.
type Error struct {
	Status int    `json:"-"`
	Code   string `json:"code"`
	// Msg is the public message: it must not hold internal text (Go
	// errors, SQL, file paths).
	Msg string `json:"message"`
	// Statements are the deciding policy statements of a policy refusal.
	Statements []string `json:"statements,omitempty"`
	ApprovalID string   `json:"approval_id,omitempty"`
	// ReceiptID names the signed record of a refusal, when one was made.
	ReceiptID string `json:"receipt_id,omitempty"`
	// Details are extra public fields.
	Details map[string]any `json:"details,omitempty"`
	// RequestID is set when the error is written.
	RequestID string `json:"request_id,omitempty"`

	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Msg + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Msg
}

// Unwrap returns the private cause.
func (e *Error) Unwrap() error { return e.cause }

// Cause returns the private cause (nil if none).
func (e *Error) Cause() error { return e.cause }

// Is reports whether target is an *Error with the same code: sentinels
// (package-level *Error values) match every error of their code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// New returns an error with a fixed public message.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Msg: msg}
}

// Errorf returns an error whose public message is formatted. An argument
// that is a Go error (other than an *Error) is never formatted into the
// message: it is replaced by "internal error" and kept as the private
// cause. Format public values only; pass causes with Wrap.
func Errorf(status int, code, format string, args ...any) *Error {
	e := &Error{Status: status, Code: code}
	args = append([]any(nil), args...)
	for i, a := range args {
		err, ok := a.(error)
		if !ok {
			continue
		}
		var pub *Error
		if errors.As(err, &pub) && pub == err {
			args[i] = pub.Msg
			if e.cause == nil {
				e.cause = err
			}
			continue
		}
		if e.cause == nil {
			e.cause = err
		} else {
			e.cause = errors.Join(e.cause, err)
		}
		args[i] = "internal error"
	}
	e.Msg = fmt.Sprintf(format, args...)
	return e
}

// Wrap returns a copy of e with cause as its private cause (so a sentinel
// can be returned with the failure behind it).
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// Internal is a 500 with a generic message and cause kept private.
func Internal(cause error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Msg: "internal error", cause: cause}
}

// StoreUnavailable is a 503 STORE_UNAVAILABLE with cause kept private.
func StoreUnavailable(cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Msg: "the store is unavailable", cause: cause}
}

// From maps any error to an *Error: an *Error in the chain as it is, a
// token verification failure by its code and message, anything else to
// 500 INTERNAL (the text kept private).
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var te *token.Error
	if errors.As(err, &te) {
		return FromToken(te)
	}
	return Internal(err)
}

// FromToken maps a token verification failure. Its message is public for
// a refusal; a 5xx (state or key unavailable) may carry a store's error
// text, so its message is replaced and the original kept as the cause.
func FromToken(te *token.Error) *Error {
	if te.Status >= 500 {
		return &Error{Status: te.Status, Code: te.Code, Msg: "token verification is unavailable", cause: te}
	}
	return &Error{Status: te.Status, Code: te.Code, Msg: te.Msg}
}

// Body is the one error shape: {"error":{"code","message",...}}.
type Body struct {
	Error *Error `json:"error"`
}

// Decode reads an error body written by Write (for clients); ok is false
// when raw is not one.
func Decode(raw []byte) (*Error, bool) {
	var b Body
	if json.Unmarshal(raw, &b) != nil || b.Error == nil || b.Error.Code == "" {
		return nil, false
	}
	return b.Error, true
}
