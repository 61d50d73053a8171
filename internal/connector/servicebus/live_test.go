package servicebus

// A test against a real Service Bus namespace, run only when
// CLAWEA_TEST_SERVICEBUS_CONNECTION_STRING and CLAWEA_TEST_SERVICEBUS_QUEUE
// are set (the queue must exist and should be empty). It sends a message,
// receives it with a peek-lock and completes it. The same steps run
// against the AMQP stub broker with the contract tests.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

func TestLiveAzureServiceBus(t *testing.T) {
	cs, queue := os.Getenv("CLAWEA_TEST_SERVICEBUS_CONNECTION_STRING"), os.Getenv("CLAWEA_TEST_SERVICEBUS_QUEUE")
	if cs == "" || queue == "" {
		t.Skip("set CLAWEA_TEST_SERVICEBUS_CONNECTION_STRING and CLAWEA_TEST_SERVICEBUS_QUEUE to test against a real namespace")
	}
	bus, err := NewAzure("", AzureOptions{ConnectionString: cs})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	sendReceiveComplete(t, bus, queue)
}

func TestSendReceiveCompleteOnStub(t *testing.T) {
	sendReceiveComplete(t, stubBus(t, AzureOptions{}), "live-queue")
}

func sendReceiveComplete(t *testing.T, bus Bus, queue string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var b [8]byte
	rand.Read(b[:])
	id := "clawea-live-" + hex.EncodeToString(b[:])
	if err := bus.Send(ctx, queue, Message{MessageID: id, Body: []byte(`{"live":true}`), Properties: map[string]any{"schema_version": "3"}}); err != nil {
		t.Fatalf("send: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ms, err := bus.Receive(ctx, queue, 10, PeekLock, 5*time.Second)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range ms {
			if m.MessageID != id {
				if err := bus.Abandon(ctx, queue, m.LockToken); err != nil {
					t.Logf("abandon a stranger: %v", err)
				}
				continue
			}
			if m.Properties["schema_version"] != "3" {
				t.Errorf("properties: %v", m.Properties)
			}
			if err := bus.Complete(ctx, queue, m.LockToken); err != nil {
				t.Fatalf("complete: %v", err)
			}
			return
		}
	}
	t.Fatal("the message sent was not received within a minute")
}
