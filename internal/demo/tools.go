package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/signer"
)

// ToolCall is one tool call the demo made through the tool gateway.
type ToolCall struct {
	Tool       string `json:"tool"`
	Target     string `json:"target"`
	Outcome    string `json:"outcome"` // ok, or the refusal code
	ReceiptID  string `json:"receipt_id,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
	Output     string `json:"output,omitempty"`
}

// agentMCP is the demo agent's MCP session with the tool gateway.
type agentMCP struct {
	cs *mcp.ClientSession
}

type bearerTransport struct{ tok string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

// connectMCP connects the official MCP client over streamable HTTP, with
// the job's token on every request, as an agent runtime would.
func connectMCP(ctx context.Context, base, tok string) (*agentMCP, []string, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "clawea-demo-agent", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{tok}},
		DisableStandaloneSSE: true}, nil)
	if err != nil {
		return nil, nil, err
	}
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		cs.Close()
		return nil, nil, err
	}
	var names []string
	for _, t := range list.Tools {
		names = append(names, t.Name)
	}
	return &agentMCP{cs: cs}, names, nil
}

// call runs a tool and reads the outcome.
func (a *agentMCP) call(ctx context.Context, tool, target string, args map[string]any) (ToolCall, error) {
	tc := ToolCall{Tool: tool, Target: target}
	res, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return tc, err
	}
	if id, ok := res.Meta["clawea/receipt_id"].(string); ok {
		tc.ReceiptID = id
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if res.IsError {
		var e struct {
			Error toolgw.Error `json:"error"`
		}
		json.Unmarshal(raw, &e)
		tc.Outcome, tc.ApprovalID, tc.ReceiptID = e.Error.Code, e.Error.ApprovalID, e.Error.ReceiptID
		if len(res.Content) > 0 {
			tc.Output = res.Content[0].(*mcp.TextContent).Text
		}
		return tc, nil
	}
	tc.Outcome = "ok"
	if len(res.Content) > 0 {
		tc.Output = res.Content[0].(*mcp.TextContent).Text
	}
	return tc, nil
}

// approve decides an approval as the demo's approver: after a printed
// notice, or after asking on in when interactive.
func approve(ctx context.Context, base, admin string, approver *signer.Key, id string, interactive bool, in io.Reader, log io.Writer) (string, error) {
	api := client.New(base, admin)
	var v toolgw.ApprovalView
	if _, _, err := api.Do(ctx, "GET", "/v1/approvals/"+id, nil, &v); err != nil {
		return "", err
	}
	var s struct {
		Tool       string         `json:"tool"`
		Resource   string         `json:"resource"`
		Arguments  map[string]any `json:"arguments"`
		Statements []string       `json:"statements"`
	}
	json.Unmarshal(v.Summary, &s)
	decision := toolgw.DecisionAllow
	if interactive {
		fmt.Fprintf(log, "\n  approval %s: %s on %s (statement %s)\n  arguments %v\n  allow it as %s? [y/N] ",
			id, s.Tool, s.Resource, strings.Join(s.Statements, ","), s.Arguments, approver.DID())
		line, _ := bufio.NewReader(in).ReadString('\n')
		if !strings.EqualFold(strings.TrimSpace(line), "y") && !strings.EqualFold(strings.TrimSpace(line), "yes") {
			decision = toolgw.DecisionDeny
		}
	} else {
		fmt.Fprintf(log, "  %-12s NOTICE: the demo's approver %s now signs \"allow\" for %s on %s\n", "approver", approver.DID(), s.Tool, s.Resource)
		fmt.Fprintf(log, "  %-12s (clawea demo --interactive asks you instead; in production: clawea approve allow %s --key approver.key.json)\n", "", id)
	}
	sig, err := toolgw.SignDecision(approver, v, decision, time.Now())
	if err != nil {
		return "", err
	}
	if _, _, err := client.New(base, "").Do(ctx, "POST", "/v1/approvals/"+id+"/decision",
		toolgw.DecisionRequest{Decision: decision, CoSignature: sig, Note: "decided in clawea demo"}, nil); err != nil {
		return "", err
	}
	return decision, nil
}
