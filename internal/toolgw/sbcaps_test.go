package toolgw_test

// Issue #18 (P9 item 4): Service Bus rate limits over time and caps on
// receives and peeks, in policy, alongside the send cap.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/connector/servicebus/amqpstub"
	"github.com/clawea/clawea/internal/toolgw"
)

const capsPolicy = `{
  "policy_version": "2", "policy_id": "sb-caps", "issuer_did": "did:web:security.example.com",
  "statements": [
    {"sid": "SendRate", "effect": "Allow", "actions": ["servicebus:send"], "resources": ["sb://sb-orders/*"],
     "conditions": {"NumericLessThan": {"ServiceBus:MessagesSentInMinute": "3"}}},
    {"sid": "PeekCap", "effect": "Allow", "actions": ["servicebus:peek"], "resources": ["sb://sb-orders/*"],
     "conditions": {"NumericLessThan": {"ServiceBus:MessagesPeekedInJob": "4", "ServiceBus:MaxMessages": "3"}}},
    {"sid": "ReceiveCap", "effect": "Allow", "actions": ["servicebus:receive"], "resources": ["sb://sb-orders/*"],
     "conditions": {"NumericLessThan": {"ServiceBus:MessagesReceivedInJob": "2"}}}
  ]}`

func TestServiceBusCapsAndRateInPolicy(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(capsPolicy)))
	send := func() string {
		code, _ := e.jsonCall(t, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "q", "body": "m"})
		return code
	}
	// Three sends a minute.
	for i := 0; i < 3; i++ {
		if code := send(); code != "" {
			t.Fatalf("send %d: %s", i, code)
		}
	}
	if code := send(); code != "POLICY_DENIED" {
		t.Fatalf("4th send in a minute: %q", code)
	}
	e.clock.advance(time.Minute)
	if code := send(); code != "" {
		t.Fatalf("send in the next minute: %s", code)
	}
	// Four messages are queued. A peek asks for at most 2 (MaxMessages < 3).
	peek := func(max int) string {
		code, _ := e.jsonCall(t, tok, "servicebus_peek", map[string]any{"namespace": "sb-orders", "entity": "q", "max": max})
		return code
	}
	if code := peek(3); code != "POLICY_DENIED" {
		t.Fatalf("peek of 3: %q", code)
	}
	// A peek of an empty queue counts nothing: what did not come back is
	// given back.
	if code, _ := e.jsonCall(t, tok, "servicebus_peek", map[string]any{"namespace": "sb-orders", "entity": "empty", "max": 2}); code != "" {
		t.Fatalf("peek of an empty queue: %s", code)
	}
	if code := peek(2); code != "" {
		t.Fatalf("peek 1: %s", code)
	}
	if code := peek(2); code != "" {
		t.Fatalf("peek 2 (2 peeked before): %s", code)
	}
	if code := peek(1); code != "POLICY_DENIED" {
		t.Fatalf("peek after 4 peeked: %q", code)
	}
	// Receives: two messages in the job.
	recv := func() string {
		code, _ := e.jsonCall(t, tok, "servicebus_receive", map[string]any{"namespace": "sb-orders", "entity": "q", "mode": "receive_and_delete", "wait_seconds": 0})
		return code
	}
	for i := 0; i < 2; i++ {
		if code := recv(); code != "" {
			t.Fatalf("receive %d: %s", i, code)
		}
	}
	if code := recv(); code != "POLICY_DENIED" {
		t.Fatalf("3rd receive: %q", code)
	}
	e.finish(jobID)
}

// A namespace allowed to use a namespace-level SAS is flagged: a startup
// warning and GET /healthz's warnings.
func TestNamespaceSASFlagged(t *testing.T) {
	stub := amqpstub.Start(t)
	bus, err := servicebus.NewAzure("", servicebus.AzureOptions{ConnectionString: stub.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	e := startWith(t, toolgw.Options{Buses: []servicebus.Bus{servicebus.Named(bus, "sb-stub")}}, nil)
	resp, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Warnings []string `json:"warnings"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	if len(h.Warnings) != 1 || !strings.Contains(h.Warnings[0], "NAMESPACE_SAS") || !strings.Contains(h.Warnings[0], "sb-stub") {
		t.Fatalf("healthz warnings: %v", h.Warnings)
	}
	if !strings.Contains(e.logs.String(), "NAMESPACE_SAS") {
		t.Fatal("no startup warning")
	}
}

// The receive cap through the real azservicebus client against the AMQP
// stub broker: messages that did not come are given back, the cap counts
// those that did.
func TestServiceBusReceiveCapOverAMQP(t *testing.T) {
	stub := amqpstub.Start(t)
	bus, err := servicebus.NewAzure("", servicebus.AzureOptions{ConnectionString: stub.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	e := startWith(t, toolgw.Options{Buses: []servicebus.Bus{servicebus.Named(bus, "sb-orders")}}, nil)
	jobID, tok := e.job(e.publish([]byte(capsPolicy)))
	for i := 0; i < 2; i++ {
		if code, msg := e.jsonCall(t, tok, "servicebus_send", map[string]any{"namespace": "sb-orders", "entity": "amqpq", "body": "m"}); code != "" {
			t.Fatalf("send %d: %s %s", i, code, msg)
		}
	}
	recv := func(entity string, max int) string {
		code, _ := e.jsonCall(t, tok, "servicebus_receive", map[string]any{"namespace": "sb-orders", "entity": entity, "mode": "receive_and_delete", "max": max, "wait_seconds": 1})
		return code
	}
	// An empty queue: nothing received, nothing counted.
	if code := recv("emptyq", 5); code != "" {
		t.Fatalf("receive on an empty queue: %s", code)
	}
	if code := recv("amqpq", 1); code != "" {
		t.Fatalf("receive 1: %s", code)
	}
	if code := recv("amqpq", 1); code != "" {
		t.Fatalf("receive 2 (1 received before): %s", code)
	}
	if code := recv("amqpq", 1); code != "POLICY_DENIED" {
		t.Fatalf("receive after 2 received: %q", code)
	}
	e.finish(jobID)
}
