package toolgw

import (
	"errors"
	"time"
)

// Codes of connector failures added by issue P7 (the others, NOT_FOUND,
// CONFLICT, CONNECTOR_FORBIDDEN, CONNECTOR_TIMEOUT, SERVICEBUS_LOCK_LOST,
// SERVICEBUS_MESSAGE_TOO_LARGE and CONNECTOR_ERROR, are in errors.go).
const (
	// CodeConnectorThrottled: the service throttled the gateway (Key Vault
	// HTTP 429, Service Bus server-busy), after the SDK's retries. HTTP 429.
	CodeConnectorThrottled = "CONNECTOR_THROTTLED"
	// CodeConnectorUnreachable: the service could not be reached (a
	// transport failure, a lost connection, Key Vault HTTP 502/503/504).
	// HTTP 502.
	CodeConnectorUnreachable = "CONNECTOR_UNREACHABLE"
	// CodeClientCancelled: the caller went away (its request's context was
	// cancelled) before the connector finished. HTTP 499.
	CodeClientCancelled = "CLIENT_CANCELLED"
)

// StatusClientClosedRequest is the (non-standard) HTTP status of
// CLIENT_CANCELLED; the caller is gone and rarely reads it.
const StatusClientClosedRequest = 499

// retryAfter is the wait a connector's error says the service asked for
// (keyvault.RetryAfter and the Service Bus connector share the method).
func retryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter(), true
	}
	return 0, false
}
