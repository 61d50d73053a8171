package toolgw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
)

// TestConnectorErrorPrecedence: a class the service answered with wins
// over a deadline that passed meanwhile; only the call's own deadline (or
// a timeout the connector reports) is CONNECTOR_TIMEOUT; a caller's
// cancellation is CLIENT_CANCELLED.
func TestConnectorErrorPrecedence(t *testing.T) {
	tl := &tool{name: "keyvault_get_secret"}
	wrap := func(err error) error { return fmt.Errorf("%w: detail", err) }
	for _, tc := range []struct {
		err      error
		deadline bool
		caller   error
		code     string
		status   int
	}{
		{wrap(keyvault.ErrForbidden), true, nil, CodeForbidden, 403},
		{wrap(keyvault.ErrNotFound), true, context.Canceled, CodeNotFound, 404},
		{wrap(servicebus.ErrConflict), false, nil, CodeConflict, 409},
		{wrap(keyvault.ErrThrottled), false, nil, CodeConnectorThrottled, 429},
		{wrap(servicebus.ErrThrottled), false, nil, CodeConnectorThrottled, 429},
		{wrap(keyvault.ErrUnreachable), false, nil, CodeConnectorUnreachable, 502},
		{wrap(servicebus.ErrUnreachable), false, nil, CodeConnectorUnreachable, 502},
		{wrap(keyvault.ErrTimeout), false, nil, CodeConnectorTimeout, 504},
		{wrap(servicebus.ErrTimeout), false, nil, CodeConnectorTimeout, 504},
		{wrap(context.DeadlineExceeded), false, nil, CodeConnectorTimeout, 504},
		{errors.New("odd"), true, nil, CodeConnectorTimeout, 504},
		{wrap(context.Canceled), false, context.Canceled, CodeClientCancelled, StatusClientClosedRequest},
		{wrap(context.DeadlineExceeded), true, context.DeadlineExceeded, CodeClientCancelled, StatusClientClosedRequest},
		{wrap(keyvault.ErrTimeout), true, context.Canceled, CodeClientCancelled, StatusClientClosedRequest},
		{wrap(context.Canceled), false, nil, CodeConnectorError, 502},
		{errors.New("odd"), false, nil, CodeConnectorError, 502},
		{wrap(servicebus.ErrClosed), false, nil, CodeConnectorError, 502},
	} {
		e := connectorError(tl, tc.err, tc.deadline, tc.caller)
		if e.Code != tc.code || e.Status != tc.status {
			t.Errorf("%v (deadline %v, caller %v): %d %s, want %d %s", tc.err, tc.deadline, tc.caller, e.Status, e.Code, tc.status, tc.code)
		}
		if got := statusOf(e); (got == "timeout") != (tc.code == CodeConnectorTimeout) {
			t.Errorf("%s: result_status %q", e.Code, got)
		}
	}
	if e := connectorError(tl, errors.New("odd"), false, nil); e.Status != http.StatusBadGateway {
		t.Errorf("unclassed: %d", e.Status)
	}
}
