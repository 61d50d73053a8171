package amqpstub

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// These tests drive the stub with the SDK directly, covering paths the
// servicebus connector does not use (batches, lock renewal, settlement
// through $management).

func client(t *testing.T) (*azservicebus.Client, context.Context) {
	t.Helper()
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c, err := azservicebus.NewClientFromConnectionString(s.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c, ctx
}

func receive(ctx context.Context, t *testing.T, r *azservicebus.Receiver, n int) []*azservicebus.ReceivedMessage {
	t.Helper()
	var got []*azservicebus.ReceivedMessage
	for tries := 0; len(got) < n && tries < 10; tries++ {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ms, err := r.ReceiveMessages(wctx, n-len(got), nil)
		cancel()
		if err != nil && ctx.Err() == nil && wctx.Err() == nil {
			t.Fatalf("ReceiveMessages: %v", err)
		}
		got = append(got, ms...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

func TestStartListens(t *testing.T) {
	s := Start(t)
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	_ = c.Close()
	if !strings.Contains(s.ConnectionString(), "UseDevelopmentEmulator=true") || !strings.Contains(s.Output(), "listening") {
		t.Errorf("connection string %q, output %q", s.ConnectionString(), s.Output())
	}
}

func TestStubBatchRenewAndManagementSettlement(t *testing.T) {
	c, ctx := client(t)
	sender, err := c.NewSender("batch", nil)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := sender.NewMessageBatch(ctx, nil)
	if err != nil {
		t.Fatalf("NewMessageBatch: %v", err)
	}
	for i := range 3 {
		id := fmt.Sprint("b", i)
		if err := batch.AddMessage(&azservicebus.Message{MessageID: &id, Body: []byte(id)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := sender.SendMessageBatch(ctx, batch, nil); err != nil {
		t.Fatalf("SendMessageBatch: %v", err)
	}
	r, err := c.NewReceiverForQueue("batch", nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := receive(ctx, t, r, 3)
	for i, m := range ms {
		if want := fmt.Sprint("b", i); m.MessageID != want || string(m.Body) != want || *m.SequenceNumber != int64(i+1) {
			t.Errorf("message %d: id %q body %q seq %d", i, m.MessageID, m.Body, *m.SequenceNumber)
		}
	}

	before := *ms[0].LockedUntil
	time.Sleep(20 * time.Millisecond)
	if err := r.RenewMessageLock(ctx, ms[0], nil); err != nil {
		t.Fatalf("RenewMessageLock: %v", err)
	}
	if !ms[0].LockedUntil.After(before) {
		t.Errorf("lock not extended: %s then %s", before, *ms[0].LockedUntil)
	}

	// A message rebuilt from its lock token alone is settled through the
	// entity's $management node (com.microsoft:update-disposition).
	for i, m := range ms {
		bare := &azservicebus.ReceivedMessage{LockToken: m.LockToken}
		var err error
		switch i {
		case 0:
			err = r.CompleteMessage(ctx, bare, nil)
		case 1:
			reason := "why"
			err = r.DeadLetterMessage(ctx, bare, &azservicebus.DeadLetterOptions{Reason: &reason})
		case 2:
			err = r.AbandonMessage(ctx, bare, nil)
		}
		if err != nil {
			t.Fatalf("settlement %d through $management: %v", i, err)
		}
	}
	if err := r.CompleteMessage(ctx, &azservicebus.ReceivedMessage{LockToken: ms[0].LockToken}, nil); err == nil {
		t.Error("settling a settled message through $management succeeded")
	}
	again := receive(ctx, t, r, 1)[0]
	if again.MessageID != "b2" || again.DeliveryCount != 2 {
		t.Errorf("abandoned message came back as %q, delivery count %d", again.MessageID, again.DeliveryCount)
	}
	dlq, err := c.NewReceiverForQueue("batch", &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	if err != nil {
		t.Fatal(err)
	}
	dead := receive(ctx, t, dlq, 1)[0]
	if dead.MessageID != "b1" || dead.DeadLetterReason == nil || *dead.DeadLetterReason != "why" ||
		dead.DeadLetterSource == nil || *dead.DeadLetterSource != "batch" {
		t.Errorf("dead letter: %+v", dead)
	}
}
