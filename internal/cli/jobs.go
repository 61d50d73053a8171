package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/issuer"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/signer"
)

func newJobCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Open, inspect, finish and export jobs",
		Long: `A job is the unit of authority and of evidence: it owns one short-lived token
pinned to one policy, collects a hash-chained event log and the receipts of
its model and tool calls, and ends as a signed proof bundle (several joined
by an aggregate bundle when longer than 1,000 events).`,
	}
	cmd.AddCommand(newJobStartCmd(e), newJobShowCmd(e), newJobListCmd(e), newJobEventsCmd(e), newJobFinishCmd(e), newJobExportCmd(e), newJobRevokeCmd(e))
	return cmd
}

func newJobStartCmd(e *env) *cobra.Command {
	var f serverFlags
	var agent, policyHash string
	var ttl time.Duration
	var labels, scopes []string
	var write, readOnly bool
	var maxReq, maxIn, maxOut int64
	cmd := &cobra.Command{
		Use:   "start --agent DID --policy HASH",
		Short: "Open a job and print its token",
		Long: `Open a job for an agent (its did:key; custodial agents come from clawea agent
create) pinned to a published policy. Prints the job id and the job's token;
the token works only for this job, only until the job finishes or the token
expires (--ttl, default 10m, at most 1h), and only if not revoked.
Labels (--label key=value, e.g. change_ticket=CHG-1234) are decided on
(Job:Label.<name>), carried in the token and recorded with the job's evidence;
a budget limits model calls and tokens. --write asks for the write scope
(tool:write, needed for mutating tools), --read-only leaves it out; by default
a job has it unless its policy has job:start statements. A read-only job gets a
short-lived write token with clawea token issue --job JOB --scope write.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if agent == "" || policyHash == "" {
				return withCode(ExitUsage, errors.New("--agent and --policy are required"))
			}
			body := map[string]any{"agent_did": agent, "policy_hash_b64u": policyHash}
			if ttl > 0 {
				body["ttl_sec"] = int64(ttl.Seconds())
			}
			if len(scopes) > 0 {
				body["scopes"] = scopes
			}
			if write && readOnly {
				return withCode(ExitUsage, errors.New("--write and --read-only exclude each other"))
			}
			if write || readOnly {
				body["write"] = write
			}
			if len(labels) > 0 {
				m := map[string]any{}
				for _, kv := range labels {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return withCode(ExitUsage, fmt.Errorf("--label %q must be key=value", kv))
					}
					m[k] = v
				}
				body["labels"] = m
			}
			if maxReq > 0 || maxIn > 0 || maxOut > 0 {
				body["budget"] = store.Budget{MaxRequests: maxReq, MaxTokensInput: maxIn, MaxTokensOutput: maxOut}
			}
			var out jobs.Started
			_, raw, err := f.adminCall(cmd.Context(), "POST", "/v1/jobs", body, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintf(e.out, "job %s\ntoken %s\n", out.Job.ID, out.Token)
			fmt.Fprintf(e.err, "token expires %s; export it for the agent: CLAWEA_TOKEN=<token>\n", out.ExpiresAt)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&agent, "agent", "", "agent did:key")
	cmd.Flags().StringVar(&policyHash, "policy", "", "policy hash (clawea policy publish)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "token lifetime (default 10m, at most 1h)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label key=value (repeatable)")
	cmd.Flags().BoolVar(&write, "write", false, "ask for the write scope (tool:write)")
	cmd.Flags().BoolVar(&readOnly, "read-only", false, "leave the write scope out")
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "token scope (repeatable; default proxy:call tool:call job:events)")
	cmd.Flags().Int64Var(&maxReq, "max-requests", 0, "budget: model calls")
	cmd.Flags().Int64Var(&maxIn, "max-tokens-input", 0, "budget: input tokens")
	cmd.Flags().Int64Var(&maxOut, "max-tokens-output", 0, "budget: output tokens")
	return cmd
}

// jobCall uses the admin token, or a job token given with --job-token /
// CLAWEA_TOKEN when set.
func jobCall(ctx context.Context, f *serverFlags, jobToken, method, path string, body, out any) (int, []byte, error) {
	if jobToken == "" {
		jobToken = os.Getenv("CLAWEA_TOKEN")
	}
	if jobToken != "" && f.token == "" {
		return call(ctx, method, strings.TrimRight(f.server, "/")+path, jobToken, body, out)
	}
	return f.adminCall(ctx, method, path, body, out)
}

func newJobShowCmd(e *env) *cobra.Command {
	var f serverFlags
	var jobToken string
	cmd := &cobra.Command{
		Use:   "show JOB",
		Short: "Show a job: status, policy, counts, bundles",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v jobs.View
			_, raw, err := jobCall(cmd.Context(), &f, jobToken, "GET", "/v1/jobs/"+args[0], nil, &v)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintf(e.out, "job      %s (%s)\nagent    %s%s\npolicy   %s\ncreated  %s\nexpires  %s\n", v.ID, v.Status, v.AgentDID,
				map[bool]string{true: " (custodial)", false: ""}[v.Custodial], v.PolicyHash, v.CreatedAt, v.ExpiresAt)
			if v.FinishedAt != "" {
				fmt.Fprintf(e.out, "finished %s\n", v.FinishedAt)
			}
			fmt.Fprintf(e.out, "events   %d\nlabels   %s\n", v.Events, v.Labels)
			for k, n := range v.Evidence {
				fmt.Fprintf(e.out, "evidence %s: %d\n", k, n)
			}
			for _, b := range v.Bundles {
				fmt.Fprintf(e.out, "bundle   %s (%s, part %d)\n", b.BundleID, b.Kind, b.Part)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&jobToken, "job-token", "", "use the job's token instead of the admin token")
	return cmd
}

func newJobListCmd(e *env) *cobra.Command {
	var f serverFlags
	var status, after string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := "?limit=" + strconv.Itoa(limit)
			if status != "" {
				q += "&status=" + status
			}
			if after != "" {
				q += "&after=" + after
			}
			var out struct {
				Jobs []map[string]any `json:"jobs"`
			}
			_, raw, err := f.adminCall(cmd.Context(), "GET", "/v1/jobs"+q, nil, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			for _, j := range out.Jobs {
				fmt.Fprintf(e.out, "%-28v %-10v %v  %v\n", j["id"], j["status"], j["created_at"], j["agent_did"])
			}
			if len(out.Jobs) == 0 {
				fmt.Fprintln(e.err, "no jobs")
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&status, "status", "", "open, finishing or finished")
	cmd.Flags().StringVar(&after, "after", "", "list jobs after this id")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

func newJobEventsCmd(e *env) *cobra.Command {
	var f serverFlags
	var jobToken, appendType, payload string
	cmd := &cobra.Command{
		Use:   "events JOB [--append TYPE --payload JSON]",
		Short: "List a job's hash-chained events, or append one",
		Long: `List a job's events (event id, type, time, hash), or with --append add one:
  clawea job events JOB --append tool_call --payload '{"tool":"storage.readonly"}'
Appending needs the admin token or the job's token (--job-token or
CLAWEA_TOKEN).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if appendType != "" {
				var pl any = map[string]any{}
				if payload != "" {
					if err := json.Unmarshal([]byte(payload), &pl); err != nil {
						return withCode(ExitUsage, fmt.Errorf("--payload: %v", err))
					}
				}
				var out map[string]any
				_, raw, err := jobCall(cmd.Context(), &f, jobToken, "POST", "/v1/jobs/"+args[0]+"/events", map[string]any{"event_type": appendType, "payload": pl}, &out)
				if err != nil {
					return failCode(err)
				}
				if f.json {
					e.out.Write(raw)
					return nil
				}
				ev := out["event"].(map[string]any)
				fmt.Fprintf(e.out, "%v %v %v\n", ev["event_id"], ev["event_type"], ev["event_hash_b64u"])
				return nil
			}
			var out struct {
				Events []map[string]any `json:"events"`
			}
			_, raw, err := jobCall(cmd.Context(), &f, jobToken, "GET", "/v1/jobs/"+args[0]+"/events", nil, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			for _, ev := range out.Events {
				fmt.Fprintf(e.out, "%v  %-12v %v  %v\n", ev["event_id"], ev["event_type"], ev["timestamp"], ev["event_hash_b64u"])
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&jobToken, "job-token", "", "use the job's token")
	cmd.Flags().StringVar(&appendType, "append", "", "append an event of this type")
	cmd.Flags().StringVar(&payload, "payload", "", "event payload (JSON)")
	return cmd
}

func newJobFinishCmd(e *env) *cobra.Command {
	var f serverFlags
	var jobToken, keyPath, out string
	cmd := &cobra.Command{
		Use:   "finish JOB [--key AGENT_KEY]",
		Short: "Finish a job: sign its proof bundle, revoke its token",
		Long: `Close a job and turn its evidence into signed proof bundles, verified in
strict mode before they are stored; the job's token is then revoked.
A custodial agent's bundle is signed by the job service. Otherwise pass the
agent's key file with --key: the server prepares the payloads, this command
signs them locally, and the key never leaves this machine.
--out DIR writes the bundles as <job>-bundle.json with <job>-urm.json.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			var res jobs.FinishResult
			status, raw, err := jobCall(ctx, &f, jobToken, "POST", "/v1/jobs/"+id+"/finish", map[string]any{}, &res)
			if err != nil {
				return failCode(err)
			}
			if status == 202 {
				if keyPath == "" {
					return withCode(ExitUsage, fmt.Errorf("job %s's agent %s is not custodial: pass its key with --key", id, res.SignBy))
				}
				k, err := signer.LoadFile(keyPath)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				if k.DID() != res.SignBy {
					return withCode(ExitUsage, fmt.Errorf("--key is %s, but the job's agent is %s", k.DID(), res.SignBy))
				}
				var signed []json.RawMessage
				for _, p := range res.Payloads {
					v, err := canon.Parse(p)
					if err != nil {
						return withCode(ExitFail, err)
					}
					env, err := envelope.Sign(k, envelope.TypeBundle, v, envelope.Options{})
					if err != nil {
						return withCode(ExitFail, err)
					}
					b, _ := env.JSON()
					signed = append(signed, b)
				}
				res = jobs.FinishResult{}
				if _, raw, err = jobCall(ctx, &f, jobToken, "POST", "/v1/jobs/"+id+"/finish", map[string]any{"signed": signed}, &res); err != nil {
					return failCode(err)
				}
			}
			if out != "" {
				if _, err := jobs.WriteBundles(out, id, res.Bundles); err != nil {
					return withCode(ExitUsage, err)
				}
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintf(e.out, "job %s finished: %d bundle(s), verification %s\n", id, len(res.Bundles), res.Verified)
			for _, b := range res.Bundles {
				fmt.Fprintf(e.out, "  %s %s\n", b.Kind, b.BundleID)
			}
			if res.Unanchored > 0 {
				fmt.Fprintf(e.out, "  %d side-effect/approval record(s) had no model-call span to anchor to and are kept in bundle metadata\n", res.Unanchored)
			}
			if res.ResultsMissing > 0 {
				fmt.Fprintf(e.err, "warning: %d runtime tool call(s) the policy allowed never reported a result (recorded as a runtime_results_missing event); the runtime or its mode may not report results (docs/decide.md)\n", res.ResultsMissing)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&jobToken, "job-token", "", "use the job's token")
	cmd.Flags().StringVar(&keyPath, "key", "", "the agent's key file, for a non-custodial agent")
	cmd.Flags().StringVar(&out, "out", "", "write the bundles into this folder")
	return cmd
}

func newJobExportCmd(e *env) *cobra.Command {
	var f serverFlags
	var out string
	cmd := &cobra.Command{
		Use:   "export JOB --out DIR",
		Short: "Write a finished job's evidence for offline audit",
		Long: `Write a finished job's evidence into a folder: the proof bundle(s) with URM and
Trust Pulse, the aggregate for long jobs, an export bundle signed by the job
service (single-bundle jobs), and trust.json naming the signers to trust.
Then, offline:
  clawea verify --strict --config DIR/trust.json DIR/<job>-bundle.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return withCode(ExitUsage, errors.New("--out is required"))
			}
			var x jobs.Export
			if _, _, err := f.adminCall(cmd.Context(), "GET", "/v1/jobs/"+args[0]+"/export", nil, &x); err != nil {
				return failCode(err)
			}
			if _, err := jobs.WriteBundles(out, args[0], x.Bundles); err != nil {
				return withCode(ExitUsage, err)
			}
			written := []string{}
			if len(x.ExportBundle) > 0 {
				pretty, err := envelope.Indent(x.ExportBundle)
				if err != nil {
					return withCode(ExitFail, err)
				}
				p := filepath.Join(out, args[0]+"-export.json")
				if err := writeFile(p, pretty); err != nil {
					return withCode(ExitUsage, err)
				}
				written = append(written, p)
			}
			var did map[string]any
			call(cmd.Context(), "GET", strings.TrimRight(f.server, "/")+"/v1/did", "", nil, &did)
			trust := map[string]any{"config_version": "1", "allowlists": map[string]any{
				"gateway_receipt_signer_dids": gatewaysOf(did),
			}}
			tb, _ := json.MarshalIndent(trust, "", "  ")
			if err := writeFile(filepath.Join(out, "trust.json"), tb); err != nil {
				return withCode(ExitUsage, err)
			}
			if f.json {
				return printJSON(e.out, map[string]any{"job_id": args[0], "dir": out, "bundles": len(x.Bundles), "export_bundle": len(x.ExportBundle) > 0})
			}
			fmt.Fprintf(e.out, "wrote %d bundle(s) for %s into %s\n", len(x.Bundles), args[0], out)
			for _, w := range written {
				fmt.Fprintf(e.out, "  %s (verify with --urm %s)\n", w, strings.TrimSuffix(w, "-export.json")+"-urm.json")
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&out, "out", "", "folder to write into")
	return cmd
}

// gatewaysOf lists the gateway signers a node's /v1/did reports.
func gatewaysOf(did map[string]any) []string {
	out := []string{}
	roles, _ := did["roles"].(map[string]any)
	for role, d := range roles {
		if strings.HasSuffix(role, "gateway") {
			out = append(out, fmt.Sprint(d))
		}
	}
	return out
}

func newAgentCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Custodial agent identities",
		Long: `An agent is a did:key. The job service can hold an agent's key (custodial,
sealed at rest) and sign its bundles at job end; otherwise the agent keeps its
own key (clawea keys new) and signs with clawea job finish --key.`,
	}
	var f serverFlags
	var name string
	create := &cobra.Command{
		Use:   "create [--name NAME]",
		Short: "Create a custodial agent and print its did:key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			_, raw, err := f.adminCall(cmd.Context(), "POST", "/v1/agents", map[string]string{"name": name}, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintln(e.out, out["did"])
			return nil
		},
	}
	f.add(create)
	create.Flags().StringVar(&name, "name", "", "a name for people")
	var lf serverFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List custodial agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Agents []map[string]any `json:"agents"`
			}
			_, raw, err := lf.adminCall(cmd.Context(), "GET", "/v1/agents", nil, &out)
			if err != nil {
				return failCode(err)
			}
			if lf.json {
				e.out.Write(raw)
				return nil
			}
			for _, a := range out.Agents {
				fmt.Fprintf(e.out, "%v  %v  %v\n", a["did"], a["name"], a["created_at"])
			}
			return nil
		},
	}
	lf.add(list)
	cmd.AddCommand(create, list)
	return cmd
}

func newKeysRotateCmd(e *env) *cobra.Command {
	var dataDir, db string
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate [--overlap 1h]",
		Short: "Rotate the token issuer's key, keeping the old one valid for an overlap",
		Long: `Make a new active issuer key in the data directory and publish it; the previous
key keeps verifying tokens until the overlap ends (default 1h, the longest a
token lives), then every gateway refuses it with TOKEN_KID_EXPIRED. A running
server picks the new key up on its next issue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := keystore.Dir(dataDir)
			if db == "" {
				db = "sqlite:" + filepath.Join(dataDir, "clawea.db")
			}
			st, err := store.Open(cmd.Context(), db)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer st.Close()
			oldKid, newKid, err := issuer.Rotate(cmd.Context(), dir, st, overlap, time.Now())
			if err != nil {
				return withCode(ExitFail, err)
			}
			fmt.Fprintf(e.out, "issuer key rotated: %s is active; %s verifies until %s\n", newKid, oldKid,
				time.Now().Add(overlap).UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", string(keystore.Default()), "data directory")
	cmd.Flags().StringVar(&db, "db", "", "store DSN (default: SQLite in the data directory)")
	cmd.Flags().DurationVar(&overlap, "overlap", time.Hour, "how long the old key stays valid")
	return cmd
}

func newKeysRevokeCmd(e *env) *cobra.Command {
	var dataDir, db string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke KID",
		Short: "End a token issuer key at once (a compromised key)",
		Long: `End the issuer key KID now. Every token it signed is refused with
TOKEN_KID_EXPIRED at every gateway sharing the store within a second,
including tokens a gateway has already verified and cached. When KID is the
data directory's active key, a new active key is made first (a rotation
without overlap) and the issuer signs with it from its next issue. A revoked
key is never made active again: an issuer that still holds it in its key
file refuses to issue (ISSUER_KEY_RETIRED) until clawea keys rotate.
Key ids are listed by GET /v1/jwks and in each token's header.`,
		Example: `  clawea keys revoke 3f9a0c1d2b4e5f60
  clawea keys revoke 3f9a0c1d2b4e5f60 --db postgres://... --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := keystore.Dir(dataDir)
			if db == "" {
				db = "sqlite:" + filepath.Join(dataDir, "clawea.db")
			}
			st, err := store.Open(cmd.Context(), db)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer st.Close()
			now := time.Now()
			newKid, err := issuer.RevokeKey(cmd.Context(), dir, st, args[0], now)
			if err != nil {
				return withCode(ExitFail, err)
			}
			if asJSON {
				return printJSON(e.out, map[string]any{"revoked_kid": args[0], "not_after": now.UTC().Format(time.RFC3339Nano), "new_active_kid": newKid})
			}
			fmt.Fprintf(e.out, "issuer key %s revoked at %s\n", args[0], now.UTC().Format(time.RFC3339))
			if newKid != "" {
				fmt.Fprintf(e.out, "it was the active key: %s is active now\n", newKid)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", string(keystore.Default()), "data directory")
	cmd.Flags().StringVar(&db, "db", "", "store DSN (default: SQLite in the data directory)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}
