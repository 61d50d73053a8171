package servicebus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
)

type staticCredential struct{}

func (staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t"}, nil
}

const testConnStr = "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"

func TestNewAzureOptions(t *testing.T) {
	// Construction does not dial, so these need no network.
	good := []struct {
		ns   string
		opt  AzureOptions
		want string
	}{
		{"", AzureOptions{ConnectionString: testConnStr}, "contoso.servicebus.windows.net"},
		{"contoso", AzureOptions{ConnectionString: testConnStr}, "contoso.servicebus.windows.net"},
		{"sb://CONTOSO.servicebus.windows.net/", AzureOptions{ConnectionString: testConnStr}, "contoso.servicebus.windows.net"},
		{"contoso", AzureOptions{Credential: staticCredential{}}, "contoso.servicebus.windows.net"},
		{"contoso.servicebus.usgovcloudapi.net", AzureOptions{Credential: staticCredential{}}, "contoso.servicebus.usgovcloudapi.net"},
	}
	for _, c := range good {
		a, err := NewAzure(c.ns, c.opt)
		if err != nil {
			t.Errorf("NewAzure(%q): %v", c.ns, err)
			continue
		}
		if a.Namespace() != c.want || a.maxUnsettled != DefaultMaxUnsettled || a.lockDuration != DefaultLockDuration {
			t.Errorf("NewAzure(%q): namespace %q, max unsettled %d, lock %s", c.ns, a.Namespace(), a.maxUnsettled, a.lockDuration)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close of an unused bus: %v", err)
		}
	}
	bad := []struct {
		ns  string
		opt AzureOptions
	}{
		{"contoso", AzureOptions{}},
		{"contoso", AzureOptions{ConnectionString: testConnStr, Credential: staticCredential{}}},
		{"other", AzureOptions{ConnectionString: testConnStr}},
		{"", AzureOptions{Credential: staticCredential{}}},
		{"", AzureOptions{ConnectionString: "SharedAccessKey=c2VjcmV0"}},
		{"", AzureOptions{ConnectionString: "Endpoint=sb://contoso.servicebus.windows.net/"}},
		{"sb://a/b", AzureOptions{Credential: staticCredential{}}},
	}
	for _, c := range bad {
		if _, err := NewAzure(c.ns, c.opt); err == nil {
			t.Errorf("NewAzure(%q, %+v) succeeded", c.ns, c.opt)
		} else if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}

func TestAzureValidatesBeforeDialling(t *testing.T) {
	a, err := NewAzure("", AzureOptions{ConnectionString: testConnStr})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.Send(ctx, "a//b", Message{}); !errors.Is(err, ErrInvalidEntity) {
		t.Errorf("Send to a bad entity = %v", err)
	}
	if _, err := a.Peek(ctx, "q", 0); err == nil {
		t.Error("Peek with max 0 succeeded")
	}
	if _, err := a.ReceiveDeadLetter(ctx, "q", -1, 0); err == nil {
		t.Error("ReceiveDeadLetter with max -1 succeeded")
	}
	if _, err := a.PurgeDeadLetter(ctx, "q/$DeadLetterQueue"); !errors.Is(err, ErrInvalidEntity) {
		t.Errorf("PurgeDeadLetter of a sub-queue path = %v", err)
	}
	if err := a.Complete(ctx, "q", "00000000-0000-0000-0000-000000000001"); !errors.Is(err, ErrLockLost) {
		t.Errorf("Complete of an unknown token = %v", err)
	}
}

func TestMapError(t *testing.T) {
	ent := entityRef{Queue: "q"}
	cases := []struct {
		err  error
		want error
	}{
		{azservicebus.ErrMessageTooLarge, ErrTooLarge},
		{&azservicebus.Error{Code: azservicebus.CodeNotFound}, ErrNotFound},
		{&azservicebus.Error{Code: azservicebus.CodeUnauthorizedAccess}, ErrForbidden},
		{&azservicebus.Error{Code: azservicebus.CodeLockLost}, ErrLockLost},
		{&azservicebus.Error{Code: azservicebus.CodeClosed}, ErrClosed},
		{fmt.Errorf("attach: %w", &amqp.Error{Condition: amqp.ErrCondNotFound, Description: "no such queue"}), ErrNotFound},
		{&amqp.Error{Condition: amqp.ErrCondUnauthorizedAccess}, ErrForbidden},
		{&amqp.Error{Condition: amqp.ErrCondMessageSizeExceeded}, ErrTooLarge},
		{&amqp.Error{Condition: "com.microsoft:message-lock-lost"}, ErrLockLost},
	}
	for _, c := range cases {
		got := mapError("send to", ent, c.err)
		if !errors.Is(got, c.want) || !strings.Contains(got.Error(), `send to "q"`) {
			t.Errorf("mapError(%v) = %v, want %v with detail", c.err, got, c.want)
		}
	}
	plain := errors.New("boom")
	got := mapError("peek", ent, plain)
	for _, s := range []error{ErrNotFound, ErrForbidden, ErrTooLarge, ErrLockLost} {
		if errors.Is(got, s) {
			t.Errorf("mapError(plain) matched %v", s)
		}
	}
	if !errors.Is(got, plain) {
		t.Errorf("mapError lost the cause: %v", got)
	}
	if mapError("x", ent, nil) != nil {
		t.Error("mapError(nil) != nil")
	}
	if !errors.Is(mapError("x", ent, context.DeadlineExceeded), context.DeadlineExceeded) {
		t.Error("mapError hides context errors")
	}
}

func TestGuard(t *testing.T) {
	v, err := guard("op", func() (int, error) { return 1, nil })
	if v != 1 || err != nil {
		t.Errorf("guard passthrough = %d, %v", v, err)
	}
	v, err = guard("op", func() (int, error) {
		var m map[string]any
		return m["x"].(int), nil
	})
	if v != 0 || !errors.Is(err, errSDKPanic) || !strings.Contains(err.Error(), "op") {
		t.Errorf("guard of a panic = %d, %v", v, err)
	}
}
