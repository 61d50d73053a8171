package toolgw

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/connector/keyvault"
	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/redact"
)

// A tool is one operation agents may call: its policy action, how its
// arguments become a resource and context keys (docs/policy.md), and how
// it runs.
type tool struct {
	name        string
	description string
	action      string
	mutating    bool // a write: lockdown refuses it; it gets a side-effect record
	params      []param
	prepare     func(g *Gateway, a *args) (*call, *Error)
	// proxy is set for a tool of an upstream MCP server (upstream.go).
	proxy *proxy
}

type param struct {
	name, typ, desc string
	required        bool
	enum            []string
	secret          bool // never recorded, even hashed in the clear
}

// call is a prepared tool call.
type call struct {
	tool     *tool
	resource string
	ctx      map[string]string
	run      func(ctx context.Context) (any, error)
	// label names the secret this call reads or writes (vault/path), and
	// reveal says the value goes back to the agent in clear.
	label  string
	reveal bool
	// secretOut is set by run with the secret value the call saw.
	secretOut string
	// withheld: the call is being recorded with its arguments and result
	// withheld (recordCall's second try).
	withheld bool
	// event, when set, gives recordCall the event type and payload to
	// record instead of a plain tool_call (runtime decisions, decide.go).
	event func(toolEvent) (string, any)
	// runtime, for a runtime decision, is what its approval is bound to
	// and shows besides the arguments (decide.go).
	runtime *runtimeBinding
	// upstreamError: a proxied tool answered with isError (the receipt's
	// status is error; the agent still gets the answer).
	upstreamError bool
}

// InputSchema returns the tool's JSON Schema.
func (t *tool) InputSchema() map[string]any {
	if t.proxy != nil {
		return t.proxy.schema
	}
	props := map[string]any{}
	var req []string
	for _, p := range t.params {
		s := map[string]any{"type": p.typ, "description": p.desc}
		if len(p.enum) > 0 {
			s["enum"] = p.enum
		}
		if p.typ == "object" {
			s["additionalProperties"] = map[string]any{"type": []string{"string", "number", "boolean"}}
		}
		props[p.name] = s
		if p.required {
			req = append(req, p.name)
		}
	}
	sort.Strings(req)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		out["required"] = req
	}
	return out
}

// args is a call's validated arguments.
type args struct {
	v   canon.Value
	bad *Error
}

func badArg(format string, a ...any) *Error {
	return errf(http.StatusBadRequest, CodeInvalidArguments, format, a...)
}

func (a *args) str(name string, required bool, max int) string {
	if a.bad != nil {
		return ""
	}
	m := a.v.Get(name)
	if m == nil || m.Kind == canon.Null {
		if required {
			a.bad = badArg("argument %q is required", name)
		}
		return ""
	}
	if !m.IsString() {
		a.bad = badArg("argument %q must be a string", name)
		return ""
	}
	if len(m.Str) > max || !utf8.ValidString(m.Str) {
		a.bad = badArg("argument %q must be valid text of at most %d bytes", name, max)
		return ""
	}
	if required && m.Str == "" {
		a.bad = badArg("argument %q must not be empty", name)
	}
	return m.Str
}

func (a *args) num(name string, def, lo, hi int) int {
	if a.bad != nil {
		return def
	}
	m := a.v.Get(name)
	if m == nil || m.Kind == canon.Null {
		return def
	}
	if !m.IsInteger() || m.Num < float64(lo) || m.Num > float64(hi) {
		a.bad = badArg("argument %q must be an integer from %d to %d", name, lo, hi)
		return def
	}
	return int(m.Num)
}

func (a *args) props(name string) map[string]any {
	if a.bad != nil {
		return nil
	}
	m := a.v.Get(name)
	if m == nil || m.Kind == canon.Null {
		return nil
	}
	if !m.IsObject() || len(m.Members) > 64 {
		a.bad = badArg("argument %q must be an object of at most 64 string, number or boolean values", name)
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
			a.bad = badArg("application property names must be 1 to 128 printable ASCII characters without spaces")
			return nil
		}
		if prev, dup := folded[strings.ToLower(mem.Key)]; dup {
			a.bad = badArg("application properties %q and %q differ only in case", prev, mem.Key)
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
			a.bad = badArg("application property %q must be a string, number or boolean", mem.Key)
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

// closed refuses arguments the tool does not take.
func (a *args) closed(t *tool) {
	if a.bad != nil {
		return
	}
	for _, m := range a.v.Members {
		known := false
		for _, p := range t.params {
			if p.name == m.Key {
				known = true
				break
			}
		}
		if !known {
			a.bad = badArg("unknown argument %q for %s", m.Key, t.name)
			return
		}
	}
}

// Connector argument checks.
//
// Azure compares vault, secret, namespace and entity names without regard
// to case. Each name is brought to its connector's canonical form
// (keyvault.Canonical*, servicebus.Canonical*) here, before anything else
// looks at it, and the argument is rewritten in place: the resource the
// policy decides on, the connector call, the context keys, the recorded
// arguments (receipts), the approval binding and the redaction label all
// see one spelling. A name outside Azure's grammar is refused with
// INVALID_ARGUMENTS (codes_canon.go) before any decision.

// canonArg reads a string argument, canonicalises it with fold and
// rewrites it in the arguments. It returns "" once a.bad is set.
func (a *args) canonArg(name string, required bool, max int, what string, fold func(string) (string, error)) string {
	raw := a.str(name, required, max)
	if a.bad != nil || raw == "" {
		return raw
	}
	c, err := fold(raw)
	if err != nil {
		a.bad = nonCanonical(name, what, raw)
		return ""
	}
	if c != raw {
		a.v.Set(name, canon.NewString(c))
	}
	return c
}

// vaultName canonicalises the "vault" argument and, unless path is set,
// finds the vault; with path set the "name" argument is canonicalised
// first, so that every malformed name is INVALID_ARGUMENTS whether or not
// the vault exists.
func (g *Gateway) vaultName(a *args, path *string) (keyvault.Client, string) {
	name := a.canonArg("vault", true, 64, "a vault name: 3-24 letters, digits and '-', starting with a letter", keyvault.CanonicalVault)
	if path != nil {
		*path = a.canonArg("name", true, 400, "a secret path: segments of letters, digits and '-' separated by '/'", keyvault.CanonicalSecretPath)
	}
	if a.bad != nil {
		return nil, ""
	}
	v := g.vaults[name]
	if v == nil {
		// A client whose Vault() is not in canonical form (a test double)
		// is still found under its canonical name.
		for k, c := range g.vaults {
			if ck, err := keyvault.CanonicalVault(k); err == nil && ck == name {
				v = c
				break
			}
		}
	}
	if v == nil {
		a.bad = errf(http.StatusNotFound, CodeUnknownVault, "no vault %q is configured here (configured: %s)", name, strings.Join(g.vaultNames(), ", "))
		return nil, ""
	}
	return v, name
}

func (g *Gateway) vault(a *args) (keyvault.Client, string, string) {
	var path string
	v, name := g.vaultName(a, &path)
	if a.bad != nil {
		return nil, "", ""
	}
	return v, name, path
}

// secretVersion canonicalises the optional "version" argument: up to 64
// letters and digits, in lower case (Key Vault version ids are hex and
// compared without regard to case).
func secretVersion(a *args) string {
	return a.canonArg("version", false, 64, "a version id: letters and digits", func(s string) (string, error) {
		for i := 0; i < len(s); i++ {
			if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return "", errNotCanonical
			}
		}
		return strings.ToLower(s), nil
	})
}

func (g *Gateway) bus(a *args) (servicebus.Bus, string, string) {
	ns := a.canonArg("namespace", true, 64, "a namespace name: 6-50 letters, digits and '-', starting with a letter", servicebus.CanonicalNamespace)
	entity := a.canonArg("entity", true, 260+len("/subscriptions/")+50,
		"a queue, a topic, or topic/subscriptions/name: segments of letters, digits, '.', '-' and '_' starting and ending with a letter or digit", servicebus.CanonicalEntity)
	if a.bad != nil {
		return nil, "", ""
	}
	b := g.buses[ns]
	if b == nil {
		for k, c := range g.buses {
			if ck, err := servicebus.CanonicalNamespace(k); err == nil && ck == ns {
				b = c
				break
			}
		}
	}
	if b == nil {
		a.bad = errf(http.StatusNotFound, CodeUnknownNamespace, "no Service Bus namespace %q is configured here (configured: %s)", ns, strings.Join(g.busNames(), ", "))
		return nil, "", ""
	}
	return b, ns, entity
}

func secretInfo(vault string, s keyvault.Secret) map[string]any {
	out := map[string]any{"vault": vault, "name": s.Path, "version": s.Version, "enabled": s.Enabled}
	if s.ContentType != "" {
		out["content_type"] = s.ContentType
	}
	if !s.Updated.IsZero() {
		out["updated"] = s.Updated.UTC().Format(time.RFC3339)
	}
	return out
}

func infos(list []keyvault.Info, withVersion bool) []any {
	out := make([]any, 0, len(list))
	for _, i := range list {
		m := map[string]any{"name": i.Path, "enabled": i.Enabled}
		if withVersion {
			m["version"] = i.Version
		}
		if !i.Updated.IsZero() {
			m["updated"] = i.Updated.UTC().Format(time.RFC3339)
		}
		out = append(out, m)
	}
	return out
}

func messages(ms []servicebus.Message) []any {
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
	pVault     = param{name: "vault", typ: "string", desc: "vault name as configured (kv://<vault>/...); case-insensitive", required: true}
	pSecret    = param{name: "name", typ: "string", desc: "secret path: segments of letters, digits and '-' separated by '/' (agent/app/db-password); case-insensitive", required: true}
	pVersion   = param{name: "version", typ: "string", desc: "a version id (default: the latest)"}
	pNamespace = param{name: "namespace", typ: "string", desc: "Service Bus namespace as configured (sb://<namespace>/...); case-insensitive", required: true}
	pEntity    = param{name: "entity", typ: "string", desc: "queue, topic, or topic/subscriptions/name; case-insensitive", required: true}
	pMax       = param{name: "max", typ: "integer", desc: "at most this many messages (1-100, default 1)"}
	pLock      = param{name: "lock_token", typ: "string", desc: "lock token of a message received in peek_lock mode", required: true}
)

// kvTool builds a Key Vault tool over one secret.
func kvTool(name, desc, action string, mutating bool, extra []param, run func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error)) *tool {
	t := &tool{name: name, description: desc, action: action, mutating: mutating, params: append([]param{pVault, pSecret}, extra...)}
	t.prepare = func(g *Gateway, a *args) (*call, *Error) {
		v, vault, path := g.vault(a)
		c := &call{tool: t, resource: "kv://" + vault + "/secrets/" + path, label: vault + "/" + path,
			ctx: map[string]string{"KeyVault:Vault": vault, "KeyVault:SecretName": path}}
		if ver := secretVersion(a); ver != "" {
			c.ctx["KeyVault:SecretVersion"] = ver
		}
		if a.bad != nil {
			return nil, a.bad
		}
		c.run = run(c, v, vault, path, a)
		return c, a.bad
	}
	return t
}

func catalog() []*tool {
	getRun := func(reveal bool) func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
		return func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
			version := secretVersion(a)
			c.reveal = reveal
			return func(ctx context.Context) (any, error) {
				s, err := v.Get(ctx, path, version)
				if err != nil {
					return nil, err
				}
				c.secretOut = s.Value
				out := secretInfo(vault, s)
				if reveal {
					out["value"] = s.Value
				} else {
					out["value"] = redact.Marker(vault + "/" + path)
				}
				return out, nil
			}
		}
	}
	tools := []*tool{
		kvTool("keyvault_get_secret", "Read a secret. The value is used by the gateway and comes back redacted as [REDACTED:<vault>/<name>]; it is also redacted from everything the job sees later.",
			"keyvault:secrets.get", false, []param{pVersion}, getRun(false)),
		kvTool("keyvault_reveal_secret", "Read a secret and return its value in clear, where the job's policy allows keyvault:secrets.reveal. Later outputs still redact it.",
			"keyvault:secrets.reveal", false, []param{pVersion}, getRun(true)),
		kvTool("keyvault_set_secret", "Write a new version of a secret.", "keyvault:secrets.set", true,
			[]param{{name: "value", typ: "string", desc: "the secret value (at most 25 KiB)", required: true, secret: true},
				{name: "content_type", typ: "string", desc: "optional content type"}},
			func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
				value := a.str("value", true, 25<<10)
				ct := a.str("content_type", false, 255)
				c.ctx["KeyVault:ValueBytes"] = strconv.Itoa(len(value))
				c.ctx["KeyVault:ContentType"] = ct
				c.secretOut = value
				return func(ctx context.Context) (any, error) {
					s, err := v.Set(ctx, path, value, ct)
					if err != nil {
						return nil, err
					}
					return secretInfo(vault, s), nil
				}
			}),
		kvTool("keyvault_delete_secret", "Delete a secret (soft delete: it can be recovered until purged).", "keyvault:secrets.delete", true, nil,
			func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					d, err := v.Delete(ctx, path)
					if err != nil {
						return nil, err
					}
					out := map[string]any{"vault": vault, "name": d.Path, "deleted": true}
					if !d.ScheduledPurgeDate.IsZero() {
						out["scheduled_purge"] = d.ScheduledPurgeDate.UTC().Format(time.RFC3339)
					}
					return out, nil
				}
			}),
		kvTool("keyvault_recover_secret", "Recover a soft-deleted secret.", "keyvault:secrets.recover", true, nil,
			func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					i, err := v.Recover(ctx, path)
					if err != nil {
						return nil, err
					}
					return map[string]any{"vault": vault, "name": i.Path, "recovered": true}, nil
				}
			}),
		kvTool("keyvault_purge_secret", "Purge a soft-deleted secret for good.", "keyvault:secrets.purge", true, nil,
			func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					if err := v.Purge(ctx, path); err != nil {
						return nil, err
					}
					return map[string]any{"vault": vault, "name": path, "purged": true}, nil
				}
			}),
		kvTool("keyvault_list_versions", "List a secret's versions (no values).", "keyvault:secrets.list_versions", false, nil,
			func(c *call, v keyvault.Client, vault, path string, a *args) func(context.Context) (any, error) {
				return func(ctx context.Context) (any, error) {
					list, err := v.ListVersions(ctx, path)
					if err != nil {
						return nil, err
					}
					return map[string]any{"vault": vault, "name": path, "versions": infos(list, true)}, nil
				}
			}),
	}
	list := &tool{name: "keyvault_list_secrets", description: "List secret names (no values).", action: "keyvault:secrets.list", params: []param{pVault}}
	list.prepare = func(g *Gateway, a *args) (*call, *Error) {
		v, vault := g.vaultName(a, nil)
		if a.bad != nil {
			return nil, a.bad
		}
		return &call{tool: list, resource: "kv://" + vault + "/secrets", ctx: map[string]string{"KeyVault:Vault": vault},
			run: func(ctx context.Context) (any, error) {
				names, err := v.ListNames(ctx)
				if err != nil {
					return nil, err
				}
				return map[string]any{"vault": vault, "secrets": infos(names, false)}, nil
			}}, nil
	}
	tools = append(tools, list)
	return append(tools, busTools()...)
}

// sbTool builds a Service Bus tool over one entity.
func sbTool(name, desc, action string, mutating bool, dlq bool, extra []param, run func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error)) *tool {
	t := &tool{name: name, description: desc, action: action, mutating: mutating, params: append([]param{pNamespace, pEntity}, extra...)}
	t.prepare = func(g *Gateway, a *args) (*call, *Error) {
		b, ns, entity := g.bus(a)
		if a.bad != nil {
			return nil, a.bad
		}
		res := "sb://" + ns + "/" + entity
		if dlq {
			res += "/$deadletterqueue"
		}
		c := &call{tool: t, resource: res, ctx: map[string]string{"ServiceBus:Namespace": ns, "ServiceBus:Entity": entity}}
		c.run = run(c, b, entity, a)
		return c, a.bad
	}
	return t
}

func busTools() []*tool {
	settle := func(name, desc, action string, do func(b servicebus.Bus, ctx context.Context, entity, token, reason, desc string) error, extra ...param) *tool {
		return sbTool(name, desc, action, true, false, append([]param{pLock}, extra...), func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error) {
			token := a.str("lock_token", true, 128)
			reason := a.str("reason", false, 1024)
			description := a.str("description", false, 1024)
			return func(ctx context.Context) (any, error) {
				if err := do(b, ctx, entity, token, reason, description); err != nil {
					return nil, err
				}
				return map[string]any{"entity": entity, "lock_token": token, "settled": strings.TrimPrefix(action, "servicebus:")}, nil
			}
		})
	}
	return []*tool{
		sbTool("servicebus_send", "Send one message.", "servicebus:send", true, false,
			[]param{{name: "body", typ: "string", desc: "message body (text)", required: true},
				{name: "subject", typ: "string", desc: "subject (label)"},
				{name: "content_type", typ: "string", desc: "content type"},
				{name: "correlation_id", typ: "string", desc: "correlation id"},
				{name: "message_id", typ: "string", desc: "message id (default: random)"},
				{name: "application_properties", typ: "object", desc: "application properties: string, number or boolean values"}},
			func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error) {
				m := servicebus.Message{Body: []byte(a.str("body", true, 1<<20)), Subject: a.str("subject", false, 1024),
					ContentType: a.str("content_type", false, 255), CorrelationID: a.str("correlation_id", false, 128),
					MessageID: a.str("message_id", false, 128), Properties: a.props("application_properties")}
				c.ctx["ServiceBus:MessageBytes"] = strconv.Itoa(len(m.Body))
				c.ctx["ServiceBus:Subject"] = m.Subject
				c.ctx["ServiceBus:ContentType"] = m.ContentType
				for k, v := range m.Properties {
					c.ctx["ServiceBus:AppProperty."+strings.ToLower(k)] = fmt.Sprint(v) // ASCII: propertyName
				}
				return func(ctx context.Context) (any, error) {
					if err := b.Send(ctx, entity, m); err != nil {
						return nil, err
					}
					return map[string]any{"entity": entity, "sent": true, "bytes": len(m.Body)}, nil
				}
			}),
		sbTool("servicebus_peek", "Look at messages without taking them.", "servicebus:peek", false, false, []param{pMax},
			func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error) {
				max := a.num("max", 1, 1, 100)
				return func(ctx context.Context) (any, error) {
					ms, err := b.Peek(ctx, entity, max)
					if err != nil {
						return nil, err
					}
					return map[string]any{"entity": entity, "messages": messages(ms)}, nil
				}
			}),
		sbTool("servicebus_receive", "Receive messages: peek_lock (settle them with complete, abandon or deadletter) or receive_and_delete.",
			"servicebus:receive", false, false,
			[]param{{name: "mode", typ: "string", desc: "peek_lock or receive_and_delete", required: true, enum: []string{"peek_lock", "receive_and_delete"}},
				pMax, {name: "wait_seconds", typ: "integer", desc: "wait up to this many seconds for a message (0-60, default 5)"}},
			func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error) {
				mode := a.str("mode", true, 32)
				if a.bad == nil && mode != string(servicebus.PeekLock) && mode != string(servicebus.ReceiveAndDelete) {
					a.bad = badArg("mode must be peek_lock or receive_and_delete")
				}
				max := a.num("max", 1, 1, 100)
				wait := time.Duration(a.num("wait_seconds", 5, 0, 60)) * time.Second
				c.ctx["ServiceBus:ReceiveMode"] = mode
				return func(ctx context.Context) (any, error) {
					ms, err := b.Receive(ctx, entity, max, servicebus.ReceiveMode(mode), wait)
					if err != nil {
						return nil, err
					}
					return map[string]any{"entity": entity, "mode": mode, "messages": messages(ms)}, nil
				}
			}),
		settle("servicebus_complete", "Complete a locked message (remove it).", "servicebus:complete",
			func(b servicebus.Bus, ctx context.Context, e, t, _, _ string) error { return b.Complete(ctx, e, t) }),
		settle("servicebus_abandon", "Abandon a locked message (make it available again).", "servicebus:abandon",
			func(b servicebus.Bus, ctx context.Context, e, t, _, _ string) error { return b.Abandon(ctx, e, t) }),
		settle("servicebus_deadletter", "Move a locked message to the dead-letter queue.", "servicebus:deadletter",
			func(b servicebus.Bus, ctx context.Context, e, t, r, d string) error {
				return b.DeadLetter(ctx, e, t, r, d)
			},
			param{name: "reason", typ: "string", desc: "dead-letter reason"}, param{name: "description", typ: "string", desc: "dead-letter description"}),
		sbTool("servicebus_deadletter_read", "Take messages from the dead-letter queue.", "servicebus:deadletter.read", true, true, []param{pMax},
			func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error) {
				max := a.num("max", 1, 1, 100)
				return func(ctx context.Context) (any, error) {
					ms, err := b.ReceiveDeadLetter(ctx, entity, max, 2*time.Second)
					if err != nil {
						return nil, err
					}
					return map[string]any{"entity": entity + "/$deadletterqueue", "messages": messages(ms)}, nil
				}
			}),
		sbTool("servicebus_deadletter_purge", "Delete every message of the dead-letter queue.", "servicebus:deadletter.purge", true, true, nil,
			func(c *call, b servicebus.Bus, entity string, a *args) func(context.Context) (any, error) {
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
