package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
)

func newJobRevokeCmd(e *env) *cobra.Command {
	var f serverFlags
	var reason, note string
	cmd := &cobra.Command{
		Use:   "revoke JOB --reason WHY",
		Short: "Stop a job now: record why, revoke its token, and finish it (admin)",
		Long: `Revoke a job's authority at once:
  1. an operator_revoke event is appended to the job's evidence chain with the
     reason (and --note, e.g. who you are; the server records the admin
     credential beside the revocation);
  2. the job's token is revoked (every gateway refuses it within a second;
     the revocation records the admin credential as revoked_by);
  3. the job is finished: closed to new events, its proof bundles signed
     (a custodial agent's) or awaiting the agent's signature (clawea job
     finish JOB --key ...); every token of a finished job is refused.
A job already finished only has its token revoked again (idempotent).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			if strings.TrimSpace(reason) == "" {
				return withCode(ExitUsage, errors.New("--reason is required: it is recorded"))
			}
			var job jobs.View
			if _, _, err := f.adminCall(ctx, "GET", "/v1/jobs/"+url.PathEscape(id), nil, &job); err != nil {
				return failCode(err)
			}
			result := map[string]any{"job_id": job.ID, "status_before": job.Status}
			if job.Status == "open" {
				var ev map[string]any
				_, _, err := f.adminCall(ctx, "POST", "/v1/jobs/"+url.PathEscape(id)+"/events", map[string]any{"event_type": "operator_revoke",
					"payload": map[string]any{"reason": reason, "note": note, "token_hash": job.TokenHash}}, &ev)
				if err != nil {
					return failCode(fmt.Errorf("recording the revocation in the job: %w", err))
				}
				result["event_seq"] = ev["seq"]
			}
			var rev map[string]any
			if _, _, err := f.adminCall(ctx, "POST", "/v1/tokens/revoke", map[string]any{"token_hash": job.TokenHash, "reason": "job revoked: " + reason}, &rev); err != nil {
				return failCode(fmt.Errorf("revoking the job's token: %w", err))
			}
			result["token"] = rev
			if job.Status == "open" {
				var fin jobs.FinishResult
				status, _, err := f.adminCall(ctx, "POST", "/v1/jobs/"+url.PathEscape(id)+"/finish", map[string]any{}, &fin)
				var ae *client.Error
				switch {
				case err != nil && errors.As(err, &ae):
					result["finish_error"] = ae.Code
				case err != nil:
					return failCode(err)
				case status == 202:
					result["finish"] = "awaiting_signature"
				default:
					result["finish"] = "finished"
					result["bundles"] = len(fin.Bundles)
				}
			}
			if f.json {
				b, _ := json.Marshal(result)
				e.out.Write(append(b, '\n'))
				return nil
			}
			fmt.Fprintf(e.out, "job %s: token %v (%v)\n", id, rev["status"], job.TokenHash)
			if s, ok := result["event_seq"]; ok {
				fmt.Fprintf(e.out, "  operator_revoke recorded as event #%v\n", s)
			}
			switch result["finish"] {
			case "finished":
				fmt.Fprintf(e.out, "  finished: %v bundle(s)\n", result["bundles"])
			case "awaiting_signature":
				fmt.Fprintf(e.out, "  closed; its bundles await the agent's signature: clawea job finish %s --key AGENT_KEY\n", id)
			case nil:
				if c, ok := result["finish_error"]; ok {
					fmt.Fprintf(e.out, "  finish refused: %v\n", c)
				} else {
					fmt.Fprintf(e.out, "  was already %s\n", job.Status)
				}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the job and the revocation)")
	cmd.Flags().StringVar(&note, "note", os.Getenv("USER"), "a note kept in the job's event (e.g. who you are); the revocation records the admin credential")
	return cmd
}
