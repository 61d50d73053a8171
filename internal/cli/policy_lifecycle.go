package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
)

var policyChangeHelp = map[string][2]string{
	store.PolicyApprove: {"approve HASH --key OPERATOR_KEY",
		`Approve a published policy hash, signed with your operator key. Where the
deployment requires approval (clawea serve's default, policy.require_approval),
a job starts only on an approved hash (else POLICY_NOT_APPROVED). The signed
statement is stored with the change and exported by clawea policy status.`},
	store.PolicyRetire: {"retire HASH --key OPERATOR_KEY [--superseded-by NEW]",
		`Retire a policy hash, signed with your operator key. Retirement is final:
no job starts on the hash again, and every running job pinned to it is refused
at its next call on any route of either gateway (POLICY_RETIRED), at every
instance sharing the store within one second. The change is appended to the
event chain of each such job (policy_retired), so it shows in their bundles.`},
	store.PolicyFreeze: {"freeze HASH... --key OPERATOR_KEY",
		`Freeze the deployment to the listed policy hashes, signed with your operator
key: no job starts on another hash, and running jobs pinned to another hash are
refused at their next call (POLICY_NOT_IN_FREEZE; a policy_frozen event is
appended to their chains). A new freeze replaces the previous one.`},
	store.PolicyUnfreeze: {"unfreeze --key OPERATOR_KEY",
		`End the deployment freeze, signed with your operator key.`},
}

func newPolicyChangeCmd(e *env, action string) *cobra.Command {
	var f serverFlags
	var keyPath, reason, supersededBy string
	help := policyChangeHelp[action]
	cmd := &cobra.Command{
		Use:   help[0],
		Short: strings.SplitN(help[1], "\n", 2)[0],
		Long: help[1] + `

The operator's did:key must be configured on the server (--policy-operator or
the config file's policy.operators). The statement is signed with --key
(env CLAWEA_OPERATOR_KEY); no admin token is needed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch action {
			case store.PolicyApprove, store.PolicyRetire:
				return cobra.ExactArgs(1)(cmd, args)
			case store.PolicyFreeze:
				return cobra.MinimumNArgs(1)(cmd, args)
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return withCode(ExitUsage, errors.New("--key is required: your operator key file (clawea keys new --out operator.key.json)"))
			}
			k, err := signer.LoadFile(keyPath)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			for _, h := range args {
				if !policy.IsPolicyHash(h) {
					return withCode(ExitUsage, fmt.Errorf("%q is not a policy hash (43 base64url characters)", h))
				}
			}
			st := registry.Statement{Action: action, Reason: reason}
			switch action {
			case store.PolicyApprove, store.PolicyRetire:
				st.PolicyHash = args[0]
			case store.PolicyFreeze:
				st.Hashes = args
			}
			if supersededBy != "" {
				if action != store.PolicyRetire || !policy.IsPolicyHash(supersededBy) {
					return withCode(ExitUsage, errors.New("--superseded-by takes a policy hash, on retire only"))
				}
				st.SupersededBy = supersededBy
			}
			signed, err := registry.SignStatement(k, st, time.Now())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var out struct {
				Change registry.ChangeView `json:"change"`
				Status registry.StatusView `json:"status"`
			}
			_, raw, err := call(cmd.Context(), "POST", strings.TrimRight(f.server, "/")+"/v1/policy-lifecycle", "", signed, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			touched := 0
			if out.Status.JobsTouched != nil {
				touched = *out.Status.JobsTouched
			}
			switch action {
			case store.PolicyFreeze:
				fmt.Fprintf(e.out, "frozen to %d hash(es) by %s (change %d); %d running job(s) refused\n", len(args), k.DID(), out.Change.Seq, touched)
			case store.PolicyUnfreeze:
				fmt.Fprintf(e.out, "unfrozen by %s (change %d)\n", k.DID(), out.Change.Seq)
			case store.PolicyRetire:
				fmt.Fprintf(e.out, "%s retired by %s (change %d); %d running job(s) refused\n", args[0], k.DID(), out.Change.Seq, touched)
			default:
				fmt.Fprintf(e.out, "%s approved by %s (change %d)\n", args[0], k.DID(), out.Change.Seq)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&keyPath, "key", os.Getenv("CLAWEA_OPERATOR_KEY"), "operator key file (env CLAWEA_OPERATOR_KEY)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the signed change)")
	if action == store.PolicyRetire {
		cmd.Flags().StringVar(&supersededBy, "superseded-by", "", "the policy hash that replaces this one")
	}
	return cmd
}

func newPolicyStatusCmd(e *env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "status [HASH]",
		Short: "Show a policy hash's lifecycle, or the freeze and the whole lifecycle log",
		Long: `With HASH: its state (published, approved, retired), whether a job may start
on it here, the deployment freeze, and every change naming it with the
operator's signed statement. Without: the freeze, the operators, and the whole
lifecycle log. --json prints the server's answer (the export of the signed
statements). Reading it takes the admin token (the log holds the operators'
signed statements).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				var out struct {
					RequireApproval bool                  `json:"require_approval"`
					Freeze          registry.FreezeView   `json:"freeze"`
					Changes         []registry.ChangeView `json:"changes"`
					Operators       []string              `json:"operators"`
				}
				_, raw, err := f.adminCall(cmd.Context(), "GET", "/v1/policy-lifecycle", nil, &out)
				if err != nil {
					return failCode(err)
				}
				if f.json {
					e.out.Write(raw)
					return nil
				}
				fmt.Fprintf(e.out, "approval required: %v\noperators: %s\n", out.RequireApproval, strings.Join(out.Operators, ", "))
				if out.Freeze.On {
					fmt.Fprintf(e.out, "frozen to: %s\n", strings.Join(out.Freeze.Hashes, ", "))
				} else {
					fmt.Fprintln(e.out, "frozen: no")
				}
				for _, c := range out.Changes {
					fmt.Fprintln(e.out, changeLine(c))
				}
				return nil
			}
			if !policy.IsPolicyHash(args[0]) {
				return withCode(ExitUsage, fmt.Errorf("%q is not a policy hash (43 base64url characters)", args[0]))
			}
			var v registry.StatusView
			_, raw, err := f.adminCall(cmd.Context(), "GET", "/v1/policy-lifecycle/"+url.PathEscape(args[0]), nil, &v)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintf(e.out, "%s  %s (published: %v)\n", v.PolicyHash, v.Status, v.Published)
			if v.SupersededBy != "" {
				fmt.Fprintf(e.out, "superseded by %s\n", v.SupersededBy)
			}
			fmt.Fprintf(e.out, "approval required: %v; can start jobs: %v; freeze: %v\n", v.RequireApproval, v.CanStartJobs, v.Freeze.On)
			for _, c := range v.Changes {
				fmt.Fprintln(e.out, changeLine(c))
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func changeLine(c registry.ChangeView) string {
	what := c.PolicyHash
	if len(c.Hashes) > 0 {
		if what != "" {
			what += " -> "
		}
		what += strings.Join(c.Hashes, ",")
	}
	signed := "unsigned"
	if c.Signature != "" {
		signed = "signed"
	}
	line := fmt.Sprintf("#%d %s  %-9s %s  by %s (%s)", c.Seq, c.At, c.Action, what, c.Actor, signed)
	if c.Reason != "" {
		line += "  reason: " + c.Reason
	}
	return line
}
