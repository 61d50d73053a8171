package toolgw_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/clawea/clawea/internal/connector"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/verify"
)

// notebook is a connector defined only here, in the test: a notebook of
// pages. It reaches the gateway through connector.Connector alone, so it
// shows what adding a connector takes (one package) and that its tools get
// the gateway's checks like the built-in ones: the policy decision on its
// resource and context keys, the signed receipt, the redaction of secrets
// it reads, the egress guard, lockdown, and codes for its failures.
type notebook struct {
	mu    sync.Mutex
	pages map[string]string
	runs  int
}

const notebookSecret = "notebook-secret-7c1d2e9f"

func (n *notebook) Names() []string { return []string{"notebook"} }

// page folds a page name to lower case; a name outside [a-z0-9-] is
// refused.
func page(s string) (string, error) {
	s = strings.ToLower(s)
	if s == "" || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return "", connector.ErrNotCanonical
	}
	return s, nil
}

func (n *notebook) Tools() []*connector.Tool {
	pPage := connector.Param{Name: "page", Type: "string", Desc: "page name; case-insensitive", Required: true}
	read := &connector.Tool{Name: "notes_read", Description: "Read a page.", Action: "notes:read", Params: []connector.Param{pPage}}
	read.Prepare = func(a *connector.Args) (*connector.Call, *connector.Error) {
		p := a.Canon("page", true, 64, "a page name: letters, digits and '-'", page)
		if a.Err() != nil {
			return nil, a.Err()
		}
		c := &connector.Call{Resource: "notes://book/" + p, Context: map[string]string{"Notes:Page": p}}
		if p == "secret" {
			c.Label = "notebook/secret"
		}
		c.Run = func(context.Context) (any, error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.runs++
			text, ok := n.pages[p]
			if !ok {
				return nil, fmt.Errorf("page %s: %w", p, connector.ErrNotFound)
			}
			if p == "secret" {
				c.SecretOut = text
			}
			return map[string]any{"page": p, "text": text}, nil
		}
		return c, nil
	}
	write := &connector.Tool{Name: "notes_write", Description: "Write a page.", Action: "notes:write", Mutating: true,
		Params: []connector.Param{pPage, {Name: "text", Type: "string", Desc: "the page's text", Required: true, Secret: true}}}
	write.Prepare = func(a *connector.Args) (*connector.Call, *connector.Error) {
		p := a.Canon("page", true, 64, "a page name: letters, digits and '-'", page)
		text := a.Str("text", true, 1024)
		if a.Err() != nil {
			return nil, a.Err()
		}
		return &connector.Call{Resource: "notes://book/" + p, Context: map[string]string{"Notes:Page": p},
			Run: func(context.Context) (any, error) {
				n.mu.Lock()
				defer n.mu.Unlock()
				n.runs++
				n.pages[p] = text
				return map[string]any{"page": p, "written": true}, nil
			}}, nil
	}
	return []*connector.Tool{read, write}
}

const notebookPolicy = `{"policy_version":"2","policy_id":"notebook","issuer_did":"did:web:test.example","statements":[
	{"sid":"Read","effect":"Allow","actions":["notes:read"],"resources":["notes://book/*"]},
	{"sid":"DenyPrivate","effect":"Deny","actions":["notes:read"],"resources":["notes://book/private"]},
	{"sid":"Drafts","effect":"Allow","actions":["notes:write"],"resources":["notes://book/draft-*"]}]}`

func TestConnectorThroughTheInterface(t *testing.T) {
	nb := &notebook{pages: map[string]string{"intro": "hello", "private": "keep out", "secret": notebookSecret}}
	e := startWith(t, toolgw.Options{Connectors: []connector.Connector{nb}}, []string{"sb-orders"})
	jobID, tok := e.job(e.publish([]byte(notebookPolicy)))
	ctx := context.Background()
	j, ae := e.node.Tools.Authorize(ctx, tok)
	if ae != nil {
		t.Fatal(ae)
	}

	// Listed after the built-in tools, with the schema built from Params.
	var names []string
	for _, ti := range e.node.Tools.Tools(nil) {
		names = append(names, ti.Name)
	}
	if i := slices.Index(names, "notes_read"); i < 0 || names[len(names)-1] != "notes_write" || !slices.Contains(names[:i], "servicebus_send") {
		t.Fatalf("tools: %v", names)
	}
	for _, ti := range e.node.Tools.Tools(j) {
		if strings.HasPrefix(ti.Name, "servicebus_") {
			t.Errorf("%s is listed to a job whose policy never allows it", ti.Name)
		}
		if ti.Name == "notes_write" {
			raw, _ := json.Marshal(ti.InputSchema)
			if string(raw) != `{"additionalProperties":false,"properties":{"page":{"description":"page name; case-insensitive","type":"string"},"text":{"description":"the page's text","type":"string"}},"required":["page","text"],"type":"object"}` || !ti.Mutating {
				t.Errorf("notes_write: %s %v", raw, ti.Mutating)
			}
		}
	}

	callTool := func(name, args string) (*toolgw.Result, *toolgw.Error) {
		return e.node.Tools.Call(ctx, j, name, []byte(args))
	}
	// Argument checks: unknown arguments and names outside the grammar are
	// refused before any decision, and nothing runs.
	for _, args := range []string{`{"page":"intro","x":1}`, `{"page":"in tro"}`, `{}`, `{"page":7}`} {
		if _, ce := callTool("notes_read", args); ce == nil || ce.Code != toolgw.CodeInvalidArguments || ce.ReceiptID != "" {
			t.Errorf("%s: %v", args, ce)
		}
	}
	// Allowed, with the page name canonicalised for the decision and the
	// receipt.
	res, ce := callTool("notes_read", `{"page":"INTRO"}`)
	if ce != nil || !strings.Contains(string(res.Output), `"text":"hello"`) || res.ReceiptID == "" {
		t.Fatalf("read intro: %v %+v", ce, res)
	}
	allowedID := res.ReceiptID
	// Denied by the policy on the connector's resource: a coded refusal
	// with its statement and a receipt; the connector never ran.
	runs := nb.runs
	_, ce = callTool("notes_read", `{"page":"Private"}`)
	if ce == nil || ce.Code != toolgw.CodePolicyDenied || !slices.Contains(ce.Statements, "DenyPrivate") || ce.ReceiptID == "" {
		t.Fatalf("read private: %v", ce)
	}
	deniedID := ce.ReceiptID
	if _, ce = callTool("notes_write", `{"page":"final","text":"x"}`); ce == nil || ce.Code != toolgw.CodePolicyDenied {
		t.Fatalf("write outside drafts: %v", ce)
	}
	if nb.runs != runs {
		t.Fatal("a denied call reached the connector")
	}
	// A failure class of the connector package gets its code.
	nb.mu.Lock()
	delete(nb.pages, "intro")
	nb.mu.Unlock()
	if _, ce = callTool("notes_read", `{"page":"intro"}`); ce == nil || ce.Code != toolgw.CodeNotFound || ce.ReceiptID == "" {
		t.Fatalf("missing page: %v", ce)
	}
	// A secret the connector read is redacted from later answers, and the
	// egress guard refuses to write it out through the connector.
	res, ce = callTool("notes_read", `{"page":"secret"}`)
	if ce != nil {
		t.Fatal(ce)
	}
	if strings.Contains(string(res.Output), notebookSecret) || !strings.Contains(string(res.Output), "[REDACTED:notebook/secret]") {
		t.Fatalf("secret page: %s", res.Output)
	}
	if _, ce = callTool("notes_write", `{"page":"draft-1","text":"`+notebookSecret+`"}`); ce == nil || ce.Code != toolgw.CodeEgressSecret {
		t.Fatalf("egress: %v", ce)
	}
	// A write leaves a side-effect record; its secret argument is recorded
	// as [SECRET].
	res, ce = callTool("notes_write", `{"page":"Draft-1","text":"my draft"}`)
	if ce != nil || nb.pages["draft-1"] != "my draft" {
		t.Fatalf("write draft: %v", ce)
	}
	writeID := res.ReceiptID
	// Lockdown refuses the connector's writes too.
	if _, err := e.node.Tools.SetLockdown(ctx, true, "test", "connector test"); err != nil {
		t.Fatal(err)
	}
	if _, ce = callTool("notes_write", `{"page":"draft-2","text":"x"}`); ce == nil || ce.Code != toolgw.CodeLockdown {
		t.Fatalf("lockdown: %v", ce)
	}
	e.node.Tools.SetLockdown(ctx, false, "test", "connector test")

	// The receipts are signed, bound to the job, and record the canonical
	// resource and arguments.
	items, err := e.node.Store.ListItems(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	// Stored item kinds (named literally: the kinds' package is moving).
	const kindToolReceipt, kindSideEffect = "tool_receipt", "side_effect"
	found := map[string]receipt.ToolV2{}
	sideEffects := 0
	for _, it := range items {
		if it.Kind == kindSideEffect {
			sideEffects++
		}
		if it.Kind != kindToolReceipt {
			continue
		}
		if out := verify.Check(it.JSON, verify.KindToolReceipt, verify.Options{}); out.Status != verify.StatusPass {
			t.Errorf("receipt %s: %s %s", it.ItemID, out.ReasonCode, out.Reason)
		}
		var env struct {
			Payload receipt.ToolV2 `json:"payload"`
		}
		json.Unmarshal(it.JSON, &env)
		found[it.ItemID] = env.Payload
		if strings.Contains(string(it.JSON), notebookSecret) {
			t.Errorf("receipt %s holds the secret", it.ItemID)
		}
	}
	for id, want := range map[string]string{allowedID: receipt.StatusSuccess, deniedID: receipt.StatusError, writeID: receipt.StatusSuccess} {
		r, ok := found[id]
		if !ok || r.ResultStatus != want || !strings.HasPrefix(r.ToolName, "notes_") {
			t.Errorf("receipt %s: %+v (want %s)", id, r, want)
		}
	}
	args, _ := json.Marshal(found[allowedID].ArgsDisclosure)
	if !strings.Contains(string(args), `"intro"`) || strings.Contains(string(args), "INTRO") {
		t.Errorf("allowed call's arguments: %s", args)
	}
	args, _ = json.Marshal(found[writeID].ArgsDisclosure)
	if !strings.Contains(string(args), "[SECRET]") || strings.Contains(string(args), "my draft") {
		t.Errorf("write's arguments: %s", args)
	}
	if sideEffects != 1 {
		t.Errorf("%d side-effect records, want 1 (the draft write)", sideEffects)
	}
	_, v := e.finish(jobID)
	if v.ToolReceipts < 6 {
		t.Errorf("bundle: %+v", v)
	}
}

// TestConnectorMistakesFailClosed: a connector whose tools clash with
// another's, or that prepares a call with nothing to decide on, is refused.
func TestConnectorMistakesFailClosed(t *testing.T) {
	dup := &connector.Tool{Name: "notes_read", Action: "notes:read", Prepare: func(*connector.Args) (*connector.Call, *connector.Error) { return nil, nil }}
	if err := openNode(t, &notebook{}, fixed{dup}); err == nil || !strings.Contains(err.Error(), "toolgw: tool notes_read is defined twice") {
		t.Errorf("a clash: %v", err)
	}
	if err := openNode(t, fixed{{Name: "x"}}); err == nil || !strings.Contains(err.Error(), "toolgw: a connector defines a tool without") {
		t.Errorf("a tool without an action or a prepare step: %v", err)
	}
	empty := &connector.Tool{Name: "empty", Action: "notes:read", Prepare: func(*connector.Args) (*connector.Call, *connector.Error) {
		return &connector.Call{Run: func(context.Context) (any, error) { return nil, errors.New("ran") }}, nil
	}}
	e := startWith(t, toolgw.Options{Connectors: []connector.Connector{fixed{empty}}}, []string{"sb-orders"})
	_, tok := e.job(e.publish([]byte(`{"policy_version":"2","policy_id":"any","issuer_did":"did:web:test.example","statements":[
		{"sid":"All","effect":"Allow","actions":["notes:read"],"resources":["*"]}]}`)))
	j, ae := e.node.Tools.Authorize(context.Background(), tok)
	if ae != nil {
		t.Fatal(ae)
	}
	if _, ce := e.node.Tools.Call(context.Background(), j, "empty", nil); ce == nil || ce.Code != toolgw.CodeConnectorError {
		t.Errorf("a call without a resource: %v", ce)
	}
}

// openNode opens (and closes) a node whose tool gateway has the connectors.
func openNode(t *testing.T, conns ...connector.Connector) error {
	node, err := server.Open(context.Background(), server.Config{DataDir: keystore.Dir(t.TempDir()), Listen: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ToolGateway: toolgw.Options{Connectors: conns}, LocalBuses: []string{"sb-orders"}})
	if err == nil {
		node.Close()
	}
	return err
}

type fixed []*connector.Tool

func (f fixed) Tools() []*connector.Tool { return f }
func (f fixed) Names() []string          { return nil }
