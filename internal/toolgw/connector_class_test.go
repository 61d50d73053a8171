package toolgw

import (
	"errors"
	"fmt"
	"testing"

	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
)

// TestConnectorClasses: a connector outside the gateway gets the codes of
// the generic failure classes and of a class of its own; the Key Vault and
// Service Bus sentinels keep their text and are of those classes.
func TestConnectorClasses(t *testing.T) {
	tl := &tool{name: "notes_read"}
	mine := connector.Sentinel("notes: page burnt", &connector.Coded{Code: "NOTES_PAGE_BURNT", Status: 410, What: "the page is burnt"})
	for _, tc := range []struct {
		err    error
		code   string
		status int
		msg    string
	}{
		{fmt.Errorf("page x: %w", connector.ErrNotFound), CodeNotFound, 404, "notes_read: the secret or entity does not exist"},
		{fmt.Errorf("page x: %w", connector.ErrConflict), CodeConflict, 409, ""},
		{fmt.Errorf("page x: %w", connector.ErrInvalid), CodeInvalidArguments, 400, ""},
		{fmt.Errorf("page x: %w", connector.ErrUnreachable), CodeConnectorUnreachable, 502, ""},
		{fmt.Errorf("page x: %w", mine), "NOTES_PAGE_BURNT", 410, "notes_read: the page is burnt"},
		{fmt.Errorf("x: %w", servicebus.ErrLockLost), CodeLockLost, 409, "notes_read: the message's lock is lost, expired or unknown"},
		{fmt.Errorf("x: %w", servicebus.ErrTooLarge), CodeTooLarge, 413, "notes_read: the message is too large"},
		{errors.New("page x: odd"), CodeConnectorError, 502, "notes_read failed"},
	} {
		e := connectorError(tl, tc.err, false, nil)
		if e.Code != tc.code || e.Status != tc.status || tc.msg != "" && e.Msg != tc.msg {
			t.Errorf("%v: %d %s %q", tc.err, e.Status, e.Code, e.Msg)
		}
	}
	if keyvault.ErrNotFound.Error() != "keyvault: not found" || servicebus.ErrLockLost.Error() != "servicebus: message lock lost or unknown" {
		t.Error("sentinel texts changed")
	}
	if errors.Is(keyvault.ErrNotFound, servicebus.ErrNotFound) || !errors.Is(keyvault.ErrNotFound, connector.ErrNotFound) {
		t.Error("sentinel identity")
	}
}
