package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/registry"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/policy"
	"github.com/clawea/clawea/signer"
)

func newPolicyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Write, check, sign, publish and test Work Policy Contracts",
		Long: `Work Policy Contracts (WPC) decide what an agent may do. A v2 policy is a list
of Allow/Deny statements over actions ("keyvault:secrets.get") and resources
("kv://vault/secrets/agent/app/db") with optional conditions on context keys;
default deny, explicit Deny wins. A policy is addressed by its hash (SHA-256
of its RFC 8785 form). See docs/policy.md for the catalogue of actions,
resources and context keys.

Validation errors carry a stable code and the JSON path of the problem, e.g.
  WPC_UNKNOWN_OPERATOR at statements[2].conditions.Regex`,
	}
	cmd.AddCommand(newPolicyLintCmd(e), newPolicyHashCmd(e), newPolicySignCmd(e), newPolicyVerifyCmd(e),
		newPolicyPublishCmd(e), newPolicyGetCmd(e), newPolicyTestCmd(e), newPolicyEvalCmd(e, false), newPolicyEvalCmd(e, true),
		newPolicyChangeCmd(e, store.PolicyApprove), newPolicyChangeCmd(e, store.PolicyRetire), newPolicyChangeCmd(e, store.PolicyFreeze),
		newPolicyChangeCmd(e, store.PolicyUnfreeze), newPolicyStatusCmd(e))
	return cmd
}

// loadPolicy reads and validates a policy file, or the payload of a
// work_policy_contract envelope file.
func loadPolicy(path string) (*policy.Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if v, err := canon.Parse(data); err == nil && v.IsObject() && v.Get("envelope_type") != nil && v.Get("payload") != nil {
		return policy.FromValue(v.Get("payload").Clone())
	}
	return policy.Parse(data)
}

// lintProblems lists every problem of a policy file (or of the payload of
// a signed policy envelope); nil when the file cannot be read.
func lintProblems(path string) []*policy.Error {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if v, err := canon.Parse(data); err == nil && v.IsObject() && v.Get("envelope_type") != nil && v.Get("payload") != nil {
		data = canon.AppendCompact(nil, v.Get("payload"))
	}
	return policy.Problems(data)
}

// dirResolver resolves inherits among the policy files of a directory.
func dirResolver(dir string) policy.Resolver {
	return func(id string) (*policy.Document, error) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		sort.Strings(files)
		for _, f := range files {
			doc, err := loadPolicy(f)
			if err == nil && doc.PolicyID() == id {
				return doc, nil
			}
		}
		return nil, nil
	}
}

func policyErr(path string, err error) error {
	var pe *policy.Error
	if errors.As(err, &pe) {
		where := ""
		if pe.Path != "" {
			where = " at " + pe.Path
		}
		return fmt.Errorf("%s: %s%s: %s", path, pe.Code, where, pe.Msg)
	}
	return fmt.Errorf("%s: %v", path, err)
}

func newPolicyLintCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lint FILE",
		Short: "Validate a policy and print its hash and any warnings",
		Long: `Validate a policy file (v1 or v2): closed objects, types, limits, globs,
condition operators and values, unique statement ids. Prints the policy hash
and warnings about legal but risky rules. Exit 1 when the policy is invalid;
every problem found is listed (for a v2 policy, each top-level field and the
first problem of each statement), and --json gives them as "errors".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := loadPolicy(args[0])
			if err != nil {
				// Every problem at once, where the document can be read.
				problems := lintProblems(args[0])
				if asJSON {
					var pe *policy.Error
					out := map[string]any{"valid": false, "file": args[0], "error": err.Error()}
					if errors.As(err, &pe) {
						out["error"] = pe
					}
					if len(problems) > 0 {
						out["errors"] = problems
					}
					printJSON(e.out, out)
					return silent(ExitFail)
				}
				if len(problems) > 1 {
					for _, p := range problems[1:] {
						fmt.Fprintf(e.err, "%s\n", policyErr(args[0], p))
					}
					return withCode(ExitFail, fmt.Errorf("%w (and %d more problems above)", policyErr(args[0], problems[0]), len(problems)-1))
				}
				return withCode(ExitFail, policyErr(args[0], err))
			}
			ws := policy.Lint(doc)
			if asJSON {
				return printJSON(e.out, map[string]any{"valid": true, "file": args[0], "policy_id": doc.PolicyID(),
					"policy_version": doc.Version, "policy_hash_b64u": doc.Hash(), "warnings": nonNil(ws)})
			}
			fmt.Fprintf(e.out, "ok  %s  policy %s (v%s)  hash %s\n", args[0], doc.PolicyID(), doc.Version, doc.Hash())
			for _, w := range ws {
				fmt.Fprintf(e.out, "warning %s at %s: %s\n", w.Code, w.Path, w.Msg)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newPolicyHashCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "hash FILE",
		Short: "Print only the policy hash (policy_hash_b64u)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := loadPolicy(args[0])
			if err != nil {
				return withCode(ExitFail, policyErr(args[0], err))
			}
			fmt.Fprintln(e.out, doc.Hash())
			return nil
		},
	}
}

func newPolicySignCmd(e *env) *cobra.Command {
	var keyPath, out string
	cmd := &cobra.Command{
		Use:   "sign FILE --key KEY",
		Short: "Sign a policy as a work_policy_contract envelope",
		Long: `Sign a validated policy with an Ed25519 key file. The envelope's
payload_hash_b64u is the policy hash (JCS) and the signature is over its
ASCII, as the registry signs. Writes the envelope to --out or stdout.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return withCode(ExitUsage, errors.New("--key is required"))
			}
			doc, err := loadPolicy(args[0])
			if err != nil {
				return withCode(ExitFail, policyErr(args[0], err))
			}
			k, err := signer.LoadFile(keyPath)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			env, err := policy.SignEnvelope(k, doc, time.Now())
			if err != nil {
				return withCode(ExitFail, err)
			}
			data, err := env.Indented()
			if err != nil {
				return withCode(ExitFail, err)
			}
			if out == "" {
				e.out.Write(append(data, '\n'))
				return nil
			}
			if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
				return withCode(ExitUsage, err)
			}
			fmt.Fprintf(e.err, "signed %s (%s) as %s -> %s\n", doc.PolicyID(), doc.Hash(), k.DID(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "Ed25519 key file (clawea keys new)")
	cmd.Flags().StringVar(&out, "out", "", "write the envelope here instead of stdout")
	return cmd
}

type signerFlags struct {
	signers []string
	any     bool
}

func (f *signerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.signers, "signer", nil, "allowed signer did:key (repeatable; required unless --any-signer)")
	cmd.Flags().BoolVar(&f.any, "any-signer", false, "accept any did:key signer (turns the allowlist off)")
}

func (f *signerFlags) options() policy.VerifyOptions {
	return policy.VerifyOptions{Signers: f.signers, AllowAnySigner: f.any}
}

func newPolicyVerifyCmd(e *env) *cobra.Command {
	var sf signerFlags
	var wantHash string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify a signed work_policy_contract envelope",
		Long: `Verify a work_policy_contract envelope in the order gateways use: shape, hash
(the envelope's own, or --hash), JCS recompute, signer allowlist, did:key
signer, signature. The signer allowlist is required (--signer, repeatable);
--any-signer turns it off explicitly. Exit 1 when verification fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			v, err := canon.Parse(data)
			if err != nil {
				return withCode(ExitFail, fmt.Errorf("%s: not JSON: %v", args[0], err))
			}
			h := wantHash
			if h == "" {
				h, _ = v.StringOf("payload_hash_b64u")
			}
			doc, err := policy.VerifyEnvelope(&v, h, sf.options())
			if err != nil {
				code := registry.ErrCode(err)
				if asJSON {
					printJSON(e.out, map[string]any{"valid": false, "code": code, "error": err.Error()})
					return silent(ExitFail)
				}
				return withCode(ExitFail, err)
			}
			signerDID, _ := v.StringOf("signer_did")
			if asJSON {
				return printJSON(e.out, map[string]any{"valid": true, "policy_hash_b64u": doc.Hash(), "policy_id": doc.PolicyID(), "signer_did": signerDID})
			}
			fmt.Fprintf(e.out, "ok  policy %s  hash %s  signed by %s\n", doc.PolicyID(), doc.Hash(), signerDID)
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&wantHash, "hash", "", "expected policy hash (default: the envelope's)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func adminToken(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if t := os.Getenv("CLAWEA_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	data, err := os.ReadFile(keystore.Default().TokenPath())
	if err != nil {
		return "", fmt.Errorf("no admin token: pass --token, set CLAWEA_ADMIN_TOKEN, or run on the server's host (%s)", keystore.Default().TokenPath())
	}
	return strings.TrimSpace(string(data)), nil
}

func newPolicyPublishCmd(e *env) *cobra.Command {
	var server, token, supersedes string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "publish FILE --server URL [--supersedes HASH]",
		Short: "Publish a policy to a registry and print its hash",
		Long: `Validate a policy locally, then publish it to the registry, which signs it with
its key. Publishing is idempotent: the same policy returns the same hash and
the first envelope. The admin token comes from --token, CLAWEA_ADMIN_TOKEN,
or the server's data directory.

--supersedes HASH declares that this policy replaces a published one: the
registry retires HASH (recorded in the lifecycle log with the publishing
credential), and every running job pinned to it is refused at its next call
(POLICY_RETIRED). See clawea policy status.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := loadPolicy(args[0]); err != nil {
				return withCode(ExitFail, policyErr(args[0], err))
			}
			data, _ := os.ReadFile(args[0])
			tok, err := adminToken(token)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			c, err := registry.NewClient(server, registry.ClientOptions{AllowAnySigner: true})
			if err != nil {
				return withCode(ExitUsage, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			res, err := c.PublishSuperseding(ctx, data, tok, supersedes)
			if err != nil {
				return withCode(ExitFail, err)
			}
			if asJSON {
				out := map[string]any{"policy_hash_b64u": res.PolicyHash, "existed": res.Existed, "envelope": res.Envelope}
				if len(res.Lifecycle) > 0 {
					out["lifecycle"] = res.Lifecycle
				}
				return printJSON(e.out, out)
			}
			if supersedes != "" {
				fmt.Fprintf(e.err, "%s retired: superseded by this policy\n", supersedes)
			}
			fmt.Fprintln(e.out, res.PolicyHash)
			if res.Existed {
				fmt.Fprintln(e.err, "already published (unchanged)")
			} else {
				fmt.Fprintln(e.err, "published")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", defaultServer(), "registry base URL (env CLAWEA_SERVER)")
	cmd.Flags().StringVar(&token, "token", "", "admin token (default: CLAWEA_ADMIN_TOKEN or the data directory's)")
	cmd.Flags().StringVar(&supersedes, "supersedes", "", "hash of a published policy this one replaces (it is retired)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func newPolicyGetCmd(e *env) *cobra.Command {
	var server, out string
	var sf signerFlags
	var envelopeOut bool
	cmd := &cobra.Command{
		Use:   "get HASH --server URL",
		Short: "Fetch a policy by hash and verify it",
		Long: `Fetch a policy from the registry by its hash and verify it exactly as a
gateway does (hash, JCS recompute, signer allowlist, signature). Prints the
policy, or the signed envelope with --envelope. With no --signer the
registry's own signer (from GET /v1/wpc) is not trusted implicitly: pass
--signer DID, or --any-signer to turn the allowlist off.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := registry.NewClient(server, registry.ClientOptions{Signers: sf.signers, AllowAnySigner: sf.any})
			if err != nil {
				return withCode(ExitUsage, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			doc, err := c.Fetch(ctx, args[0])
			if err != nil {
				return withCode(ExitFail, err)
			}
			var data []byte
			if envelopeOut {
				data, err = fetchEnvelope(ctx, server, args[0])
				if err != nil {
					return withCode(ExitFail, err)
				}
			} else {
				data = canon.AppendIndent(nil, &doc.Value, "  ")
			}
			if out != "" {
				return os.WriteFile(out, append(data, '\n'), 0o644)
			}
			e.out.Write(append(data, '\n'))
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", defaultServer(), "registry base URL (env CLAWEA_SERVER)")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	cmd.Flags().BoolVar(&envelopeOut, "envelope", false, "print the signed envelope instead of the policy")
	sf.add(cmd)
	return cmd
}

func fetchEnvelope(ctx context.Context, server, hash string) ([]byte, error) {
	resp, body, err := httpGet(ctx, strings.TrimRight(server, "/")+"/v1/wpc/"+hash)
	if err != nil {
		return nil, err
	}
	if resp != 200 {
		return nil, fmt.Errorf("registry answered %d", resp)
	}
	v, err := canon.Parse(body)
	if err != nil || v.Get("envelope") == nil {
		return nil, errors.New("registry response has no envelope")
	}
	return envelope.Indent(canon.AppendCompact(nil, v.Get("envelope")))
}

func newPolicyTestCmd(e *env) *cobra.Command {
	var policyDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "test FILE CASES",
		Short: "Run a policy's decision table",
		Long: `Evaluate every case of a case file against a policy and compare the decision
(and, when a case lists them, the deciding statements). A case file is
  {"cases":[{"name":..., "action":..., "resource":..., "context":{...},
             "expect":"allow|deny|needs_approval", "statements":[...]}]}
Parent policies named by inherits are looked up by policy_id among the JSON
files of --policy-dir (default: FILE's folder). Exit 1 when a case fails.`,
		Example: `  clawea policy test examples/policies/kv-boundary.wpc.json examples/policies/kv-boundary.cases.json`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := compileFile(args[0], policyDir)
			if err != nil {
				return withCode(ExitFail, err)
			}
			cf, err := policy.LoadCases(args[1])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			results := policy.RunCases(p, cf)
			failed := 0
			for _, r := range results {
				if !r.Passed {
					failed++
				}
			}
			if asJSON {
				printJSON(e.out, map[string]any{"policy_hash_b64u": p.Hash(), "passed": len(results) - failed, "failed": failed, "results": results})
			} else {
				for _, r := range results {
					mark := "ok  "
					if !r.Passed {
						mark = "FAIL"
					}
					fmt.Fprintf(e.out, "%s %-48s %-15s %s\n", mark, r.Case.Name, r.Got, strings.Join(r.Statements, ","))
					if !r.Passed {
						fmt.Fprintf(e.out, "     %s\n", r.Problem)
					}
				}
				fmt.Fprintf(e.out, "%d passed, %d failed\n", len(results)-failed, failed)
			}
			if failed > 0 {
				return silent(ExitFail)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policyDir, "policy-dir", "", "folder of parent policies for inherits (default: FILE's folder)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func compileFile(path, policyDir string) (*policy.Policy, error) {
	doc, err := loadPolicy(path)
	if err != nil {
		return nil, policyErr(path, err)
	}
	if policyDir == "" {
		policyDir = filepath.Dir(path)
	}
	p, err := policy.Compile(doc, dirResolver(policyDir))
	if err != nil {
		return nil, policyErr(path, err)
	}
	return p, nil
}

func newPolicyEvalCmd(e *env, explain bool) *cobra.Command {
	var file, action, resource, policyDir string
	var ctxPairs []string
	var asJSON bool
	use, short := "eval", "Decide one request: allow, deny or needs_approval"
	long := `Evaluate one request against a policy. --context KEY=VALUE (repeatable) sets
context keys such as Request:HasHumanApproval=true or
ServiceBus:MessageBytes=2048. With --json prints
  {"decision": "allow"|"deny"|"needs_approval", "statements": [...], "reason": "..."}
Exit 0 whatever the decision; 2 on bad input.`
	if explain {
		use, short = "explain", "Show how every statement matched or missed a request"
		long = `Evaluate one request and print a readable account of every statement (parents
first): whether its action and resource match, each condition with the
context value it saw, and the decision. Same inputs as policy eval.`
	}
	cmd := &cobra.Command{
		Use:   use + " --policy FILE --action A --resource R [--context KEY=VALUE]...",
		Short: short,
		Long:  long,
		Example: `  clawea policy ` + use + ` --policy examples/policies/kv-boundary.wpc.json \
    --action keyvault:secrets.set --resource kv://kv-prod-finance-001/secrets/agent/app/x`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" || action == "" || resource == "" {
				return withCode(ExitUsage, errors.New("--policy, --action and --resource are required"))
			}
			p, err := compileFile(file, policyDir)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			ctx := policy.MapContext{}
			for _, kv := range ctxPairs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return withCode(ExitUsage, fmt.Errorf("--context %q must be KEY=VALUE", kv))
				}
				ctx[k] = v
			}
			req := &policy.Request{Action: action, Resource: resource, Context: ctx}
			if explain {
				x := p.Explain(req)
				if asJSON {
					return printJSON(e.out, map[string]any{"decision": x.Decision.Effect, "statements": nonNil(x.Decision.Statements()),
						"reason": x.Decision.Reason, "trace": x.Statements})
				}
				fmt.Fprint(e.out, x.Text())
				return nil
			}
			var d policy.Decision
			p.Evaluate(req, &d)
			if asJSON {
				return printJSON(e.out, struct {
					Decision   policy.Effect `json:"decision"`
					Statements []string      `json:"statements"`
					Reason     string        `json:"reason"`
					PolicyHash string        `json:"policy_hash_b64u"`
				}{d.Effect, nonNil(d.Statements()), d.Reason, p.Hash()})
			}
			fmt.Fprintf(e.out, "%s\n  reason: %s\n", d.Effect, d.Reason)
			if len(d.Statements()) > 0 {
				fmt.Fprintf(e.out, "  statements: %s\n", strings.Join(d.Statements(), ", "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&file, "policy", "", "policy file (or signed envelope)")
	fl.StringVar(&action, "action", "", "action, e.g. keyvault:secrets.get")
	fl.StringVar(&resource, "resource", "", "resource, e.g. kv://vault/secrets/agent/app/db")
	fl.StringArrayVar(&ctxPairs, "context", nil, "context KEY=VALUE (repeatable)")
	fl.StringVar(&policyDir, "policy-dir", "", "folder of parent policies for inherits (default: the policy's folder)")
	fl.BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}
