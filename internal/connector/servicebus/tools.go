package servicebus

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/httpapi"
)

// The Service Bus tools (docs/tool-gateway.md): action servicebus:* on
// sb://<namespace>/<entity>[/$deadletterqueue], context keys ServiceBus:*
// (docs/policy.md).

// CodeUnknownNamespace refuses a namespace that is not configured (HTTP 404).
const CodeUnknownNamespace = "UNKNOWN_NAMESPACE"

// Counters and context keys of the messages a job sent, received and
// peeked, in all and in the current minute, for policies that cap the count
// or limit the rate (Tool.Counts; docs/policy.md). A receive, peek or
// dead-letter read counts the messages it asks for (max) before the
// decision and gives back those that did not come; each key holds the
// count of earlier calls, and ServiceBus:MaxMessages the call's own max.
const (
	CounterMessagesSent     = "servicebus.messages_sent"
	CounterMessagesReceived = "servicebus.messages_received"
	CounterMessagesPeeked   = "servicebus.messages_peeked"
	KeyMessagesSent         = "ServiceBus:MessagesSentInJob"
	KeyMessagesReceived     = "ServiceBus:MessagesReceivedInJob"
	KeyMessagesPeeked       = "ServiceBus:MessagesPeekedInJob"
	KeySentInMinute         = "ServiceBus:MessagesSentInMinute"
	KeyReceivedInMinute     = "ServiceBus:MessagesReceivedInMinute"
	KeyPeekedInMinute       = "ServiceBus:MessagesPeekedInMinute"
	KeyMaxMessages          = "ServiceBus:MaxMessages"
)

// counters returns a total and a per-minute counter.
func counters(name, total, perMinute string) []*connector.Counter {
	return []*connector.Counter{{Name: name, Key: total}, {Name: name + ".minute", Key: perMinute, Window: time.Minute}}
}

// countMessages makes the call count max messages (see above).
func countMessages(c *connector.Call, max int) {
	c.CountDelta = int64(max)
	c.Context[KeyMaxMessages] = strconv.Itoa(max)
}

// Tools is the Service Bus connector: the configured namespaces, known by
// their canonical names.
type Tools struct {
	buses map[string]Bus
}

// NewTools returns the connector over the buses. Two spellings of one
// namespace are one namespace, so configuring both is an error.
func NewTools(buses []Bus) (*Tools, error) {
	m, err := connector.Index(buses, Bus.Namespace, CanonicalNamespace, "namespace")
	if err != nil {
		return nil, err
	}
	return &Tools{buses: m}, nil
}

// Names are the configured namespaces' canonical names, sorted.
func (s *Tools) Names() []string { return slices.Sorted(maps.Keys(s.buses)) }

func (s *Tools) bus(a *connector.Args) (Bus, string, string) {
	ns := a.Canon("namespace", true, 64, "a namespace name: 6-50 letters, digits and '-', starting with a letter", CanonicalNamespace)
	entity := a.Canon("entity", true, 260+len("/subscriptions/")+50,
		"a queue, a topic, or topic/subscriptions/name: segments of letters, digits, '.', '-' and '_' starting and ending with a letter or digit", CanonicalEntity)
	if a.Err() != nil {
		return nil, "", ""
	}
	b := s.buses[ns]
	if b == nil {
		for n, c := range s.buses {
			if cn, err := CanonicalNamespace(n); err == nil && cn == ns {
				b = c
				break
			}
		}
	}
	if b == nil {
		a.Fail(httpapi.Errorf(http.StatusNotFound, CodeUnknownNamespace, "no Service Bus namespace %q is configured here (configured: %s)", ns, strings.Join(s.Names(), ", ")))
		return nil, "", ""
	}
	return b, ns, entity
}

// appProperties reads the application_properties argument.
func appProperties(a *connector.Args, name string) map[string]any {
	if a.Err() != nil {
		return nil
	}
	m := a.V.Get(name)
	if m == nil || m.Kind == canon.Null {
		return nil
	}
	if !m.IsObject() || len(m.Members) > 64 {
		a.Fail(connector.BadArg("argument %q must be an object of at most 64 string, number or boolean values", name))
		return nil
	}
	out := map[string]any{}
	folded := map[string]string{}
	for _, mem := range m.Members {
		// A policy tests each property by its name in lower case
		// (ServiceBus:AppProperty.<name>), so that a Deny on a name holds
		// whatever case the sender used. Names are case-sensitive on the
		// wire (AMQP): two names that differ only in case, or that hold
		// characters a reader cannot tell apart, would let the policy see
		// one property while a consumer reads another, so they are refused.
		if !propertyName(mem.Key) {
			a.Fail(connector.BadArg("application property names must be 1 to 128 printable ASCII characters without spaces"))
			return nil
		}
		if prev, dup := folded[strings.ToLower(mem.Key)]; dup {
			a.Fail(connector.BadArg("application properties %q and %q differ only in case", prev, mem.Key))
			return nil
		}
		folded[strings.ToLower(mem.Key)] = mem.Key
		switch mem.Value.Kind {
		case canon.String:
			out[mem.Key] = mem.Value.Str
		case canon.Number:
			out[mem.Key] = mem.Value.Num
		case canon.Bool:
			out[mem.Key] = mem.Value.Boolean
		default:
			a.Fail(connector.BadArg("application property %q must be a string, number or boolean", mem.Key))
			return nil
		}
	}
	return out
}

// propertyName reports whether s is an application property name clawea
// sends: 1 to 128 printable ASCII characters, no space.
func propertyName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func messages(ms []Message) []any {
	out := make([]any, 0, len(ms))
	for _, m := range ms {
		o := map[string]any{"message_id": m.MessageID, "sequence_number": m.SequenceNumber, "delivery_count": m.DeliveryCount}
		if utf8.Valid(m.Body) {
			o["body"] = string(m.Body)
		} else {
			o["body_base64"] = base64.StdEncoding.EncodeToString(m.Body)
		}
		for k, v := range map[string]string{"subject": m.Subject, "content_type": m.ContentType, "correlation_id": m.CorrelationID,
			"lock_token": m.LockToken, "dead_letter_reason": m.DeadLetterReason} {
			if v != "" {
				o[k] = v
			}
		}
		if len(m.Properties) > 0 {
			o["application_properties"] = m.Properties
		}
		if !m.LockedUntil.IsZero() {
			o["locked_until"] = m.LockedUntil.UTC().Format(time.RFC3339)
		}
		out = append(out, o)
	}
	return out
}

var (
	pNamespace = connector.Param{Name: "namespace", Type: "string", Desc: "Service Bus namespace as configured (sb://<namespace>/...); case-insensitive", Required: true}
	pEntity    = connector.Param{Name: "entity", Type: "string", Desc: "queue, topic, or topic/subscriptions/name; case-insensitive", Required: true}
	pMax       = connector.Param{Name: "max", Type: "integer", Desc: "at most this many messages (1-100, default 1)"}
	pLock      = connector.Param{Name: "lock_token", Type: "string", Desc: "lock token of a message received in peek_lock mode", Required: true}
)

// runFunc builds an entity tool's run once its bus and entity are known;
// it may read more arguments (a refusal is kept in a).
type runFunc func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error)

// entityTool builds a Service Bus tool over one entity (its dead-letter
// queue with dlq).
func (s *Tools) entityTool(name, desc, action string, mutating bool, dlq bool, extra []connector.Param, run runFunc) *connector.Tool {
	t := &connector.Tool{Name: name, Description: desc, Action: action, Mutating: mutating, Params: append([]connector.Param{pNamespace, pEntity}, extra...)}
	t.Prepare = func(a *connector.Args) (*connector.Call, *connector.Error) {
		b, ns, entity := s.bus(a)
		if a.Err() != nil {
			return nil, a.Err()
		}
		res := "sb://" + ns + "/" + entity
		if dlq {
			res += "/$deadletterqueue"
		}
		c := &connector.Call{Resource: res, Context: map[string]string{"ServiceBus:Namespace": ns, "ServiceBus:Entity": entity}}
		c.Run = run(c, b, entity, a)
		return c, a.Err()
	}
	return t
}

// Tools lists the Service Bus tools, none when no namespace is configured.
func (s *Tools) Tools() []*connector.Tool {
	if len(s.buses) == 0 {
		return nil
	}
	settle := func(name, desc, action string, do func(b Bus, ctx context.Context, entity, token, reason, desc string) error, extra ...connector.Param) *connector.Tool {
		return s.entityTool(name, desc, action, true, false, append([]connector.Param{pLock}, extra...), func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error) {
			token := a.Str("lock_token", true, 128)
			reason := a.Str("reason", false, 1024)
			description := a.Str("description", false, 1024)
			return func(ctx context.Context) (any, error) {
				if err := do(b, ctx, entity, token, reason, description); err != nil {
					return nil, err
				}
				return map[string]any{"entity": entity, "lock_token": token, "settled": strings.TrimPrefix(action, "servicebus:")}, nil
			}
		})
	}
	send := s.entityTool("servicebus_send", "Send one message.", "servicebus:send", true, false,
		[]connector.Param{{Name: "body", Type: "string", Desc: "message body (text)", Required: true},
			{Name: "subject", Type: "string", Desc: "subject (label)"},
			{Name: "content_type", Type: "string", Desc: "content type"},
			{Name: "correlation_id", Type: "string", Desc: "correlation id"},
			{Name: "message_id", Type: "string", Desc: "message id (default: random)"},
			{Name: "application_properties", Type: "object", Desc: "application properties: string, number or boolean values"}},
		func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error) {
			m := Message{Body: []byte(a.Str("body", true, 1<<20)), Subject: a.Str("subject", false, 1024),
				ContentType: a.Str("content_type", false, 255), CorrelationID: a.Str("correlation_id", false, 128),
				MessageID: a.Str("message_id", false, 128), Properties: appProperties(a, "application_properties")}
			c.Context["ServiceBus:MessageBytes"] = strconv.Itoa(len(m.Body))
			c.Context["ServiceBus:Subject"] = m.Subject
			c.Context["ServiceBus:ContentType"] = m.ContentType
			for k, v := range m.Properties {
				c.Context["ServiceBus:AppProperty."+strings.ToLower(k)] = fmt.Sprint(v) // ASCII: propertyName
			}
			return func(ctx context.Context) (any, error) {
				if err := b.Send(ctx, entity, m); err != nil {
					return nil, err
				}
				return map[string]any{"entity": entity, "sent": true, "bytes": len(m.Body)}, nil
			}
		})
	send.Counts = counters(CounterMessagesSent, KeyMessagesSent, KeySentInMinute)
	peek := s.entityTool("servicebus_peek", "Look at messages without taking them.", "servicebus:peek", false, false, []connector.Param{pMax},
		func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error) {
			max := a.Num("max", 1, 1, 100)
			countMessages(c, max)
			return func(ctx context.Context) (any, error) {
				ms, err := b.Peek(ctx, entity, max)
				if err != nil {
					return nil, err
				}
				c.CountDelta = int64(min(len(ms), max))
				return map[string]any{"entity": entity, "messages": messages(ms)}, nil
			}
		})
	peek.Counts = counters(CounterMessagesPeeked, KeyMessagesPeeked, KeyPeekedInMinute)
	receive := s.entityTool("servicebus_receive", "Receive messages: peek_lock (settle them with complete, abandon or deadletter) or receive_and_delete.",
		"servicebus:receive", false, false,
		[]connector.Param{{Name: "mode", Type: "string", Desc: "peek_lock or receive_and_delete", Required: true, Enum: []string{"peek_lock", "receive_and_delete"}},
			pMax, {Name: "wait_seconds", Type: "integer", Desc: "wait up to this many seconds for a message (0-60, default 5)"}},
		func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error) {
			mode := a.Str("mode", true, 32)
			if a.Err() == nil && mode != string(PeekLock) && mode != string(ReceiveAndDelete) {
				a.Fail(connector.BadArg("mode must be peek_lock or receive_and_delete"))
			}
			max := a.Num("max", 1, 1, 100)
			wait := time.Duration(a.Num("wait_seconds", 5, 0, 60)) * time.Second
			c.Context["ServiceBus:ReceiveMode"] = mode
			// A receive_and_delete takes the messages away: a write.
			c.Mutating = mode == string(ReceiveAndDelete)
			countMessages(c, max)
			return func(ctx context.Context) (any, error) {
				ms, err := b.Receive(ctx, entity, max, ReceiveMode(mode), wait)
				if err != nil {
					return nil, err
				}
				c.CountDelta = int64(min(len(ms), max))
				return map[string]any{"entity": entity, "mode": mode, "messages": messages(ms)}, nil
			}
		})
	receive.Counts = counters(CounterMessagesReceived, KeyMessagesReceived, KeyReceivedInMinute)
	dlqRead := s.entityTool("servicebus_deadletter_read", "Take messages from the dead-letter queue.", "servicebus:deadletter.read", true, true, []connector.Param{pMax},
		func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error) {
			max := a.Num("max", 1, 1, 100)
			countMessages(c, max)
			return func(ctx context.Context) (any, error) {
				ms, err := b.ReceiveDeadLetter(ctx, entity, max, 2*time.Second)
				if err != nil {
					return nil, err
				}
				c.CountDelta = int64(min(len(ms), max))
				return map[string]any{"entity": entity + "/$deadletterqueue", "messages": messages(ms)}, nil
			}
		})
	dlqRead.Counts = counters(CounterMessagesReceived, KeyMessagesReceived, KeyReceivedInMinute)
	return []*connector.Tool{
		send, peek, receive,
		settle("servicebus_complete", "Complete a locked message (remove it).", "servicebus:complete",
			func(b Bus, ctx context.Context, e, t, _, _ string) error { return b.Complete(ctx, e, t) }),
		settle("servicebus_abandon", "Abandon a locked message (make it available again).", "servicebus:abandon",
			func(b Bus, ctx context.Context, e, t, _, _ string) error { return b.Abandon(ctx, e, t) }),
		settle("servicebus_deadletter", "Move a locked message to the dead-letter queue.", "servicebus:deadletter",
			func(b Bus, ctx context.Context, e, t, r, d string) error {
				return b.DeadLetter(ctx, e, t, r, d)
			},
			connector.Param{Name: "reason", Type: "string", Desc: "dead-letter reason"}, connector.Param{Name: "description", Type: "string", Desc: "dead-letter description"}),
		dlqRead,
		s.entityTool("servicebus_deadletter_purge", "Delete every message of the dead-letter queue.", "servicebus:deadletter.purge", true, true, nil,
			func(c *connector.Call, b Bus, entity string, a *connector.Args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					n, err := b.PurgeDeadLetter(ctx, entity)
					if err != nil {
						return nil, err
					}
					return map[string]any{"entity": entity + "/$deadletterqueue", "purged": n}, nil
				}
			}),
	}
}

// NamespaceSAS lists the configured namespaces that authenticate with a
// namespace-level shared access key or signature, sorted: the gateway
// flags them (a startup warning and GET /healthz).
func (s *Tools) NamespaceSAS() []string {
	var out []string
	for _, n := range s.Names() {
		if HasNamespaceSAS(s.buses[n]) {
			out = append(out, n)
		}
	}
	return out
}
