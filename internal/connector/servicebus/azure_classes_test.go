package servicebus

// Error classes through the real azservicebus SDK: the sbstub broker
// refuses attaches with the condition each class stands for (or never
// answers), and the connector must wrap exactly that class's sentinel.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
)

var allClasses = []error{ErrNotFound, ErrForbidden, ErrConflict, ErrThrottled, ErrUnreachable, ErrTimeout, ErrLockLost, ErrTooLarge, ErrClosed}

// onlyClass fails unless err wraps want and no other class (want nil: no
// class at all).
func onlyClass(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, want)
		return
	}
	for _, c := range allClasses {
		if got := errors.Is(err, c); got != (c == want) {
			t.Errorf("%s: errors.Is(err, %v) = %v (want class %v); err: %v", what, c, got, want, err)
		}
	}
}

func TestAzureErrorClassesThroughStub(t *testing.T) {
	bus := stubBus(t, AzureOptions{},
		"--absent", "gone",
		"--deny", "secret",
		"--refuse", "busy=com.microsoft:server-busy",
		"--refuse", "slow=com.microsoft:timeout",
		"--refuse", "forced=amqp:connection:forced",
	)
	ctx := testContext(t)
	for _, tc := range []struct {
		entity string
		want   error
	}{
		{"gone", ErrNotFound},
		{"secret", ErrForbidden},
		{"busy", ErrThrottled},
		{"slow", ErrTimeout},
		{"forced", ErrUnreachable},
	} {
		err := bus.Send(ctx, tc.entity, Message{Body: []byte("x")})
		onlyClass(t, "send to "+tc.entity, err, tc.want)
		_, err = bus.Peek(ctx, tc.entity, 1)
		onlyClass(t, "peek "+tc.entity, err, tc.want)
		_, err = bus.Receive(ctx, tc.entity, 1, PeekLock, time.Second)
		onlyClass(t, "receive from "+tc.entity, err, tc.want)
	}
	// The bus still works for an entity without a fault.
	if err := bus.Send(ctx, "fine", Message{Body: []byte("x")}); err != nil {
		t.Fatalf("send to a healthy queue: %v", err)
	}
}

func TestAzureTimeoutAndCancelThroughStub(t *testing.T) {
	bus := stubBus(t, AzureOptions{}, "--hang", "stuck")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := bus.Send(ctx, "stuck", Message{Body: []byte("x")})
	onlyClass(t, "send with a deadline to a hung entity", err, ErrTimeout)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = bus.Peek(ctx, "stuck", 1)
	onlyClass(t, "peek cancelled by the caller", err, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled peek: %v, want context.Canceled", err)
	}
}

func TestAzureUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	bus, err := NewAzure("", AzureOptions{
		ConnectionString: "Endpoint=sb://" + addr + ";SharedAccessKeyName=x;SharedAccessKey=dGVzdA==;UseDevelopmentEmulator=true",
		Client: &azservicebus.ClientOptions{RetryOptions: azservicebus.RetryOptions{
			MaxRetries: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	ctx := testContext(t)
	err = bus.Send(ctx, "orders", Message{Body: []byte("x")})
	onlyClass(t, "send to a closed port", err, ErrUnreachable)
	_, err = bus.Peek(ctx, "orders", 1)
	onlyClass(t, "peek on a closed port", err, ErrUnreachable)
}

// TestClassOfSDKErrors maps error values of the real go-amqp and
// azservicebus packages, as the SDK delivers them, for conditions the stub
// cannot bring through the SDK on an attach: a refusal the SDK recovers by
// re-attaching (amqp:resource-locked, say) comes out of azservicebus as
// CodeConnectionLost without the condition (its Error does not unwrap), so
// conflicts are checked here, on the errors the SDK passes through as they
// are.
func TestClassOfSDKErrors(t *testing.T) {
	link := func(cond amqp.ErrCond) error {
		return &amqp.LinkError{RemoteErr: &amqp.Error{Condition: cond, Description: "d"}}
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{link(amqp.ErrCondNotFound), ErrNotFound},
		{link("com.microsoft:message-not-found"), ErrNotFound},
		{link(amqp.ErrCondUnauthorizedAccess), ErrForbidden},
		{link(amqp.ErrCondMessageSizeExceeded), ErrTooLarge},
		{link("com.microsoft:message-lock-lost"), ErrLockLost},
		{link("com.microsoft:session-lock-lost"), ErrConflict},
		{link("com.microsoft:entity-already-exists"), ErrConflict},
		{link("com.microsoft:server-busy"), ErrThrottled},
		{link("com.microsoft:timeout"), ErrTimeout},
		{&amqp.ConnError{RemoteErr: &amqp.Error{Condition: amqp.ErrCondConnectionForced}}, ErrUnreachable},
		{&amqp.ConnError{}, ErrUnreachable},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, ErrUnreachable},
		{&net.DNSError{Err: "no such host", Name: "x.servicebus.windows.net"}, ErrUnreachable},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), ErrTimeout},
		{azservicebus.ErrMessageTooLarge, ErrTooLarge},
		{context.Canceled, nil},
		{link(amqp.ErrCondInternalError), nil},
		{errors.New("something else"), nil},
	} {
		onlyClass(t, fmt.Sprintf("%T %v", tc.err, tc.err), mapError("send to", entityRef{Queue: "q"}, tc.err), tc.want)
	}
}
