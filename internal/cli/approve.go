package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/toolgw"
	"github.com/clawea/clawea/signer"
)

func newApproveCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approve",
		Short: "List and decide tool calls that wait for a human",
		Long: `A tool call the job's policy gates on a human (an Allow statement with
Bool Request:HasHumanApproval "true") waits as a pending approval bound to the
job, the tool, its arguments and the policy. Approvers decide with their own
key: the decision is a signature over the prepared receipt, which the tool
gateway stores as an approver co-signature (tool receipt envelope v2). The
agent's retry with the same arguments then runs once.

  clawea approve list
  clawea approve show APPROVAL
  clawea approve allow APPROVAL --key approver.key.json [--note "CHG-1234 ok"]
  clawea approve deny APPROVAL --key approver.key.json

The approver's did:key must be configured on the server (--approver or the
config file's tool_gateway.approvers). Listing needs the admin token;
deciding needs only the approver's key.`,
	}
	cmd.AddCommand(newApproveListCmd(e), newApproveShowCmd(e), newApproveDecideCmd(e, toolgw.DecisionAllow), newApproveDecideCmd(e, toolgw.DecisionDeny))
	return cmd
}

// approvalLine prints one approval for people.
func approvalLine(v toolgw.ApprovalView) string {
	var s struct {
		JobID      string         `json:"job_id"`
		Tool       string         `json:"tool"`
		Resource   string         `json:"resource"`
		Arguments  map[string]any `json:"arguments"`
		Statements []string       `json:"statements"`
	}
	json.Unmarshal(v.Summary, &s)
	return fmt.Sprintf("%s  %-8s %s  %s %s  (job %s; statements %s; expires %s)", v.ID, v.Status, s.Tool, s.Resource,
		compactArgs(s.Arguments), s.JobID, strings.Join(s.Statements, ","), v.ExpiresAt)
}

func compactArgs(m map[string]any) string {
	raw, _ := json.Marshal(m)
	if len(raw) > 160 {
		return string(raw[:157]) + "..."
	}
	return string(raw)
}

func newApproveListCmd(e *env) *cobra.Command {
	var f serverFlags
	var status string
	cmd := &cobra.Command{
		Use:   "list [--status pending]",
		Short: "List approvals (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Approvals []toolgw.ApprovalView `json:"approvals"`
			}
			_, raw, err := f.adminCall(cmd.Context(), "GET", "/v1/approvals?status="+status, nil, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			for _, v := range out.Approvals {
				fmt.Fprintln(e.out, approvalLine(v))
			}
			if len(out.Approvals) == 0 {
				fmt.Fprintf(e.err, "no %s approvals\n", strings.TrimSpace(status+" "))
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&status, "status", "pending", "pending, allowed, denied, expired, used, or empty for all")
	return cmd
}

func newApproveShowCmd(e *env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "show APPROVAL",
		Short: "Show one approval: the call, the policy statements, the payloads to sign",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v toolgw.ApprovalView
			_, raw, err := f.adminCall(cmd.Context(), "GET", "/v1/approvals/"+args[0], nil, &v)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintln(e.out, approvalLine(v))
			fmt.Fprintf(e.out, "allow signs %s\ndeny  signs %s\n", v.AllowHash, v.DenyHash)
			if v.Approver != "" {
				fmt.Fprintf(e.out, "decided by %s at %s\n", v.Approver, v.DecidedAt)
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newApproveDecideCmd(e *env, decision string) *cobra.Command {
	var f serverFlags
	var keyPath, note string
	cmd := &cobra.Command{
		Use:   decision + " APPROVAL --key APPROVER_KEY",
		Short: map[string]string{toolgw.DecisionAllow: "Allow a waiting tool call, signed with your approver key", toolgw.DecisionDeny: "Deny a waiting tool call, signed with your approver key"}[decision],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return withCode(ExitUsage, errors.New("--key is required: your approver key file (clawea keys new --out approver.key.json)"))
			}
			k, err := signer.LoadFile(keyPath)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			// The approval is read with the admin token when there is one, so
			// that the approver sees what they sign.
			var v toolgw.ApprovalView
			if _, _, err := f.adminCall(cmd.Context(), "GET", "/v1/approvals/"+args[0], nil, &v); err != nil {
				return failCode(err)
			}
			fmt.Fprintln(e.err, approvalLine(v))
			sig, err := toolgw.SignDecision(k, v, decision, time.Now())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var out toolgw.ApprovalView
			_, raw, err := call(cmd.Context(), "POST", strings.TrimRight(f.server, "/")+"/v1/approvals/"+args[0]+"/decision", "",
				toolgw.DecisionRequest{Decision: decision, CoSignature: sig, Note: note}, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintf(e.out, "%s %s: %s, signed by %s\n", args[0], decision, out.Status, k.DID())
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&keyPath, "key", os.Getenv("CLAWEA_APPROVER_KEY"), "approver key file (env CLAWEA_APPROVER_KEY)")
	cmd.Flags().StringVar(&note, "note", "", "a note kept with the decision")
	return cmd
}

func newLockdownCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lockdown on|off|status",
		Short: "Refuse every mutating tool at once (admin; every change is recorded)",
		Long: `The lockdown switch makes every tool gateway sharing the store refuse every
mutating tool (writes, deletes, sends, settlements) with LOCKDOWN_ACTIVE within
a quarter of a second; reads go on. Each change is kept in the lockdown log with
who, when and why.

  clawea lockdown on --reason "incident 42"
  clawea lockdown off --reason "resolved"
  clawea lockdown status`,
	}
	shorts := map[string]string{
		"on":     "Turn the lockdown on: every mutating tool is refused (--reason required)",
		"off":    "Turn the lockdown off (--reason required)",
		"status": "Show whether the lockdown is on, and the recent changes",
	}
	for _, sub := range []string{"on", "off", "status"} {
		var f serverFlags
		var reason, by string
		c := &cobra.Command{
			Use:   sub,
			Short: shorts[sub],
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				var out struct {
					On      bool             `json:"on"`
					Current map[string]any   `json:"current"`
					Log     []map[string]any `json:"log"`
				}
				var raw []byte
				var err error
				if sub == "status" {
					_, raw, err = f.adminCall(cmd.Context(), "GET", "/v1/lockdown", nil, &out)
				} else {
					if strings.TrimSpace(reason) == "" {
						return withCode(ExitUsage, errors.New("--reason is required: it is recorded"))
					}
					_, raw, err = f.adminCall(cmd.Context(), "POST", "/v1/lockdown", map[string]any{"on": sub == "on", "reason": reason, "by": by}, &out)
				}
				if err != nil {
					return failCode(err)
				}
				if f.json {
					e.out.Write(raw)
					return nil
				}
				state := "off"
				if out.On {
					state = "ON: every mutating tool is refused"
				}
				fmt.Fprintf(e.out, "lockdown %s\n", state)
				for _, l := range out.Log {
					fmt.Fprintf(e.out, "  #%v %v on=%v by %v: %v\n", l["seq"], l["at"], l["on"], l["by"], l["reason"])
				}
				return nil
			},
		}
		f.add(c)
		if sub != "status" {
			c.Flags().StringVar(&reason, "reason", "", "why (recorded)")
			c.Flags().StringVar(&by, "by", os.Getenv("USER"), "a note kept beside the reason (the recorded actor is the admin token used)")
		}
		cmd.AddCommand(c)
	}
	return cmd
}

func newMCPCmd(e *env) *cobra.Command {
	var server, tok string
	cmd := &cobra.Command{
		Use:   "mcp --token TOKEN",
		Short: "Serve the tool gateway over MCP stdio, for runtimes that launch tools as processes",
		Long: `Speak MCP on stdin/stdout and pass every tools/list and tools/call to the tool
gateway's JSON API with the job's token, so that the policy checks, approvals,
receipts and redaction are the gateway's. Configure it as a stdio MCP server,
for example in OpenClaw:

  mcp: { servers: { clawea: { command: "clawea", args: ["mcp", "--server", "http://127.0.0.1:8420"],
                              env: { CLAWEA_TOKEN: "<the job's token>" } } } }`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tok == "" {
				tok = os.Getenv("CLAWEA_TOKEN")
			}
			if tok == "" {
				return withCode(ExitUsage, errors.New("--token or CLAWEA_TOKEN is required: the job's token"))
			}
			err := toolgw.Stdio(cmd.Context(), server, tok, os.Stdin, nopCloser{os.Stdout})
			var ce *client.Error
			if errors.As(err, &ce) {
				return failCode(ce)
			}
			if err != nil && cmd.Context().Err() == nil {
				return withCode(ExitFail, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", defaultServer(), "clawea server URL (env CLAWEA_SERVER)")
	cmd.Flags().StringVar(&tok, "token", "", "the job's token (env CLAWEA_TOKEN)")
	return cmd
}

type nopCloser struct{ *os.File }

func (nopCloser) Close() error { return nil }
