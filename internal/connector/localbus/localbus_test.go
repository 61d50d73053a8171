package localbus_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/connector/localbus"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func open(t *testing.T) (*localbus.Bus, *clock) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	return localbus.New(st, "sb-local", localbus.Options{LockDuration: 30 * time.Second, Now: clk.now}), clk
}

func TestSendPeekReceiveComplete(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t)
	if b.Namespace() != "sb-local" {
		t.Errorf("namespace %q", b.Namespace())
	}
	m := servicebus.Message{Subject: "order", ContentType: "application/json", CorrelationID: "c-1", Body: []byte(`{"n":1}`),
		Properties: map[string]any{"schema_version": "3", "n": 2.0, "ok": true}}
	if err := b.Send(ctx, "orders", m); err != nil {
		t.Fatal(err)
	}
	b.Send(ctx, "other", servicebus.Message{Body: []byte("elsewhere")})
	peek, err := b.Peek(ctx, "orders", 10)
	if err != nil || len(peek) != 1 || peek[0].MessageID == "" || peek[0].LockToken != "" || peek[0].Properties["ok"] != true {
		t.Fatalf("peek: %+v %v", peek, err)
	}
	got, err := b.Receive(ctx, "orders", 10, servicebus.PeekLock, 0)
	if err != nil || len(got) != 1 || got[0].LockToken == "" || got[0].DeliveryCount != 1 || string(got[0].Body) != `{"n":1}` ||
		got[0].Subject != "order" || got[0].CorrelationID != "c-1" || got[0].Properties["schema_version"] != "3" {
		t.Fatalf("receive: %+v %v", got, err)
	}
	if again, _ := b.Receive(ctx, "orders", 10, servicebus.PeekLock, 0); len(again) != 0 {
		t.Errorf("a locked message was handed out twice: %+v", again)
	}
	if err := b.Complete(ctx, "orders", got[0].LockToken); err != nil {
		t.Fatal(err)
	}
	if err := b.Complete(ctx, "orders", got[0].LockToken); !errors.Is(err, servicebus.ErrLockLost) {
		t.Errorf("completing twice: %v", err)
	}
	if peek, _ := b.Peek(ctx, "orders", 10); len(peek) != 0 {
		t.Errorf("completed message still there: %+v", peek)
	}
}

func TestAbandonAndLockExpiry(t *testing.T) {
	ctx := context.Background()
	b, clk := open(t)
	b.Send(ctx, "q", servicebus.Message{Body: []byte("x")})
	m1, _ := b.Receive(ctx, "q", 1, servicebus.PeekLock, 0)
	if err := b.Abandon(ctx, "q", m1[0].LockToken); err != nil {
		t.Fatal(err)
	}
	m2, _ := b.Receive(ctx, "q", 1, servicebus.PeekLock, 0)
	if len(m2) != 1 || m2[0].DeliveryCount != 2 || m2[0].LockToken == m1[0].LockToken {
		t.Fatalf("after abandon: %+v", m2)
	}
	clk.advance(31 * time.Second) // the lock lapses
	m3, _ := b.Receive(ctx, "q", 1, servicebus.PeekLock, 0)
	if len(m3) != 1 || m3[0].DeliveryCount != 3 {
		t.Fatalf("after lock expiry: %+v", m3)
	}
	if err := b.Complete(ctx, "q", m2[0].LockToken); !errors.Is(err, servicebus.ErrLockLost) {
		t.Errorf("settling with a lapsed lock: %v", err)
	}
}

func TestDeadLetterReadAndPurge(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t)
	for i := 0; i < 3; i++ {
		b.Send(ctx, "q", servicebus.Message{Body: []byte("bad")})
	}
	ms, _ := b.Receive(ctx, "q", 3, servicebus.PeekLock, 0)
	for _, m := range ms {
		if err := b.DeadLetter(ctx, "q", m.LockToken, "unparsable", "not JSON"); err != nil {
			t.Fatal(err)
		}
	}
	dead, err := b.ReceiveDeadLetter(ctx, "q", 1, 0)
	if err != nil || len(dead) != 1 || dead[0].DeadLetterReason != "unparsable" {
		t.Fatalf("dead-letter read: %+v %v", dead, err)
	}
	if n, err := b.PurgeDeadLetter(ctx, "q"); err != nil || n != 2 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if dead, _ := b.ReceiveDeadLetter(ctx, "q", 10, 0); len(dead) != 0 {
		t.Errorf("after purge: %+v", dead)
	}
}

func TestReceiveAndDeleteAndWaiting(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t)
	start := time.Now()
	if ms, err := b.Receive(ctx, "q", 1, servicebus.ReceiveAndDelete, 120*time.Millisecond); err != nil || len(ms) != 0 {
		t.Fatalf("empty receive: %+v %v", ms, err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Error("an empty receive did not wait")
	}
	go func() {
		time.Sleep(60 * time.Millisecond)
		b.Send(ctx, "q", servicebus.Message{Body: []byte("late")})
	}()
	ms, err := b.Receive(ctx, "q", 5, servicebus.ReceiveAndDelete, 5*time.Second)
	if err != nil || len(ms) != 1 || ms[0].LockToken != "" || string(ms[0].Body) != "late" {
		t.Fatalf("waiting receive: %+v %v", ms, err)
	}
	if peek, _ := b.Peek(ctx, "q", 10); len(peek) != 0 {
		t.Errorf("received-and-deleted message still there: %+v", peek)
	}
	if _, err := b.Receive(ctx, "q", 1, "sideways", 0); err == nil {
		t.Error("an unknown receive mode was accepted")
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	b, _ := open(t)
	if err := b.Send(ctx, "q", servicebus.Message{Body: []byte(strings.Repeat("x", localbus.MaxMessageBytes+1))}); !errors.Is(err, servicebus.ErrTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	if err := b.Send(ctx, "", servicebus.Message{Body: []byte("x")}); !errors.Is(err, servicebus.ErrInvalidEntity) {
		t.Errorf("no entity: %v", err)
	}
	if err := b.Send(ctx, "q", servicebus.Message{Body: []byte("x"), Properties: map[string]any{"f": func() {}}}); err == nil {
		t.Error("an unencodable property was accepted")
	}
	if ms, _ := b.Peek(ctx, "q", 10); len(ms) != 0 {
		t.Errorf("a refused send left a message: %+v", ms)
	}
}

// TestNamesFoldLikeServiceBus: as on Service Bus, entity and namespace
// names are case-insensitive, so two spellings reach one queue; names
// outside the grammar are refused.
func TestNamesFoldLikeServiceBus(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := localbus.New(st, "SB-Local", localbus.Options{})
	if b.Namespace() != "sb-local" {
		t.Errorf("namespace %q", b.Namespace())
	}
	if err := b.Send(ctx, "Orders-PROD", servicebus.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if ms, err := b.Peek(ctx, "orders-prod", 10); err != nil || len(ms) != 1 {
		t.Fatalf("peek under another case: %v %d", err, len(ms))
	}
	for _, bad := range []string{"orders-prod ", "orders%2Dprod", "orders-prod\x00", "orders\u200b-prod", "ｏrders-prod", "a/../orders-prod"} {
		if err := b.Send(ctx, bad, servicebus.Message{Body: []byte("x")}); !errors.Is(err, servicebus.ErrInvalidEntity) {
			t.Errorf("Send(%q): %v", bad, err)
		}
		if _, err := b.Peek(ctx, bad, 1); !errors.Is(err, servicebus.ErrInvalidEntity) {
			t.Errorf("Peek(%q): %v", bad, err)
		}
	}
}
