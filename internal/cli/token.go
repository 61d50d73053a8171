package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/didkey"
	"github.com/clawea/clawea/token"
)

func newTokenCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, inspect, verify, revoke and introspect scoped tokens (CST)",
		Long: `Scoped tokens (CST) are short-lived EdDSA JWTs for one job: sub is the agent's
did:key, mission_id the job, policy_hash_b64u the pinned policy, and
token_scope_hash_b64u binds the claims. Gateways refuse a token used for another
job, after its job finished, or after it was revoked.`,
	}
	cmd.AddCommand(newTokenIssueCmd(e), newTokenInspectCmd(e), newTokenVerifyCmd(e), newTokenRevokeCmd(e),
		newTokenIntrospectCmd(e), newTokenScopeHashCmd(e))
	return cmd
}

func newTokenIssueCmd(e *env) *cobra.Command {
	var f serverFlags
	var sub, mission, policyHash, job, approvedBy, reason string
	var aud, scopes []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "issue --sub DID --scope SCOPE [--scope ...] | --job JOB --scope write [--ttl 5m]",
		Short: "Mint a token (admin), or a job's write token; job tokens come from clawea job start",
		Long: `Mint a token with the issuer's rules (at most 64 scopes of up to 128
characters, no wildcards, TTL default 600 s and at most 3600 s). Tokens for
gateways come from clawea job start, which also records the job; a token
minted here for a mission_id that names no job is refused by the gateways.

With --job JOB --scope write, mint the job's separate write token (scopes
tool:call and tool:write, the job's labels): bound to the job and its policy,
living --ttl (default 5m) and never past the job's token. When the policy
governs token:issue it decides; if it requires approval, --approved-by names
the approving operator (recorded in the job's write_token_issued event).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if job != "" {
				if len(scopes) != 1 || scopes[0] != "write" || sub != "" || mission != "" || policyHash != "" || len(aud) > 0 {
					return withCode(ExitUsage, errors.New("--job takes --scope write and --ttl only (the job gives the rest)"))
				}
				body := map[string]any{"scope": "write"}
				if ttl > 0 {
					body["ttl_sec"] = int64(ttl.Seconds())
				}
				if approvedBy != "" {
					body["approved_by"], body["reason"] = approvedBy, reason
				}
				var out struct {
					Token     string `json:"token"`
					TokenHash string `json:"token_hash"`
					ExpiresAt string `json:"expires_at"`
				}
				_, raw, err := f.adminCall(cmd.Context(), "POST", "/v1/jobs/"+job+"/tokens", body, &out)
				if err != nil {
					return failCode(err)
				}
				if f.json {
					e.out.Write(raw)
					return nil
				}
				fmt.Fprintln(e.out, out.Token)
				fmt.Fprintf(e.err, "write token for job %s, token_hash %s, expires %s\n", job, out.TokenHash, out.ExpiresAt)
				return nil
			}
			if approvedBy != "" {
				return withCode(ExitUsage, errors.New("--approved-by goes with --job"))
			}
			body := map[string]any{"sub": sub, "scope": scopes}
			if len(aud) > 0 {
				body["aud"] = aud
			}
			if ttl > 0 {
				body["ttl_sec"] = ttl.Seconds()
			}
			if mission != "" {
				body["mission_id"] = mission
			}
			if policyHash != "" {
				body["policy_hash_b64u"] = policyHash
			}
			var out map[string]any
			_, raw, err := f.adminCall(cmd.Context(), "POST", "/v1/tokens/issue", body, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintln(e.out, out["token"])
			fmt.Fprintf(e.err, "token_hash %v, kid %v, expires %s\n", out["token_hash"], out["kid"], time.Unix(int64(out["exp"].(float64)), 0).UTC().Format(time.RFC3339))
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&sub, "sub", "", "subject (the agent's did:key)")
	cmd.Flags().StringArrayVar(&aud, "aud", nil, "audience (repeatable; default clawea)")
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "scope (repeatable)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "lifetime (default 10m, at most 1h)")
	cmd.Flags().StringVar(&mission, "mission-id", "", "mission_id (a job id)")
	cmd.Flags().StringVar(&policyHash, "policy-hash", "", "pinned policy hash")
	cmd.Flags().StringVar(&job, "job", "", "mint this job's write token (with --scope write)")
	cmd.Flags().StringVar(&approvedBy, "approved-by", "", "approving operator, when the policy gates token:issue on approval")
	cmd.Flags().StringVar(&reason, "reason", "", "approval reason (with --approved-by)")
	return cmd
}

func newTokenInspectCmd(e *env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect [TOKEN|-]",
		Short: "Decode a token offline (no signature check)",
		Long: `Decode a token's header and claims without checking its signature, and report
whether its token_scope_hash_b64u matches the claims and whether it has
expired. Use token verify or token introspect to check it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) > 0 {
				arg = args[0]
			}
			tok, err := readToken(e, arg)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			p, err := token.Parse(tok)
			if err != nil {
				return withCode(ExitFail, err)
			}
			now := time.Now()
			info := map[string]any{"header": p.Header, "claims": p.Claims, "token_hash": token.Hash(tok),
				"scope_hash_ok": p.Claims.TokenScopeHash == p.Claims.ScopeHash(), "expired": now.Unix() >= p.Claims.Exp,
				"expires_at": time.Unix(p.Claims.Exp, 0).UTC().Format(time.RFC3339), "signature_checked": false}
			if asJSON {
				return printJSON(e.out, info)
			}
			c := p.Claims
			fmt.Fprintf(e.out, "kid         %s\nsub         %s\naud         %s\nscope       %s\njob         %s\npolicy      %s\n",
				p.Header.Kid, c.Sub, strings.Join(c.Aud.Values, ", "), strings.Join(c.Scope, " "), c.MissionID, c.PolicyHash)
			fmt.Fprintf(e.out, "issued      %s\nexpires     %s (expired: %v)\njti         %s\nscope hash  %s (matches claims: %v)\ntoken_hash  %s\n",
				time.Unix(c.Iat, 0).UTC().Format(time.RFC3339), info["expires_at"], info["expired"], c.JTI, c.TokenScopeHash, info["scope_hash_ok"], info["token_hash"])
			fmt.Fprintln(e.out, "(signature not checked: use clawea token verify or introspect)")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// jwksState is a token.State built from a JWKS document: keys only, no
// revocations and no jobs (for offline verification).
type jwksState struct{ keys []token.IssuerKey }

func (s *jwksState) IssuerKey(kid string) (token.IssuerKey, bool) {
	for _, k := range s.keys {
		if k.Kid == kid {
			return k, true
		}
	}
	return token.IssuerKey{}, false
}
func (s *jwksState) IssuerKeys() []token.IssuerKey { return s.keys }
func (s *jwksState) Revoked(string) (string, bool) { return "", false }
func (s *jwksState) Job(context.Context, string) (token.JobInfo, bool, error) {
	return token.JobInfo{}, false, nil
}

func loadJWKS(ctx context.Context, src string) (*jwksState, error) {
	var raw []byte
	var err error
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		var status int
		status, raw, err = httpGet(ctx, strings.TrimRight(src, "/")+"/v1/jwks")
		if err == nil && status != 200 {
			err = fmt.Errorf("JWKS answered %d", status)
		}
	} else {
		raw, err = os.ReadFile(src)
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Keys []struct {
			Kid      string `json:"kid"`
			X        string `json:"x"`
			NotAfter int64  `json:"not_after_unix"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("JWKS: %v", err)
	}
	st := &jwksState{}
	for _, k := range doc.Keys {
		pub, err := b64u.Decode(k.X)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %s: %v", k.Kid, err)
		}
		ik := token.IssuerKey{Kid: k.Kid, Key: didkey.NewKey(pub)}
		if k.NotAfter > 0 {
			ik.NotAfter = time.Unix(k.NotAfter, 0)
		}
		st.keys = append(st.keys, ik)
	}
	return st, nil
}

func newTokenVerifyCmd(e *env) *cobra.Command {
	var jwks string
	var aud []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [TOKEN|-] --jwks URL|FILE",
		Short: "Verify a token's signature, expiry and scope hash against the issuer's keys",
		Long: `Verify a token with the issuer's published keys (a server URL, whose /v1/jwks is
fetched, or a saved JWKS file): structure, claims, audience (--aud), expiry,
key id and signature, scope hash. Revocation and job state live on the
server: use token introspect for those. Exit 1 when the token is refused.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) > 0 {
				arg = args[0]
			}
			tok, err := readToken(e, arg)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			st, err := loadJWKS(cmd.Context(), jwks)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			ver, err := token.NewVerifier(st, token.Options{Audiences: aud, CacheSize: -1}).Verify(cmd.Context(), tok, token.Request{})
			var te *token.Error
			if err != nil && !(errors.As(err, &te) && te.Code == token.CodeJobMismatch) {
				if asJSON {
					printJSON(e.out, map[string]any{"valid": false, "code": codeOf(err), "error": err.Error()})
					return silent(ExitFail)
				}
				return withCode(ExitFail, err)
			}
			p, _ := token.Parse(tok)
			if asJSON {
				return printJSON(e.out, map[string]any{"valid": true, "kid": p.Header.Kid, "sub": p.Claims.Sub, "job_id": p.Claims.MissionID,
					"token_hash": token.Hash(tok), "checked": "signature, expiry, claims, scope hash (not revocation or job state)"})
			}
			_ = ver
			fmt.Fprintf(e.out, "ok  signed by kid %s for %s (job %s); revocation and job state not checked offline\n", p.Header.Kid, p.Claims.Sub, p.Claims.MissionID)
			return nil
		},
	}
	cmd.Flags().StringVar(&jwks, "jwks", defaultServer(), "issuer URL or JWKS file")
	cmd.Flags().StringArrayVar(&aud, "aud", nil, "accepted audience (repeatable; default: any)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func codeOf(err error) string {
	var te *token.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return ""
}

func newTokenRevokeCmd(e *env) *cobra.Command {
	var f serverFlags
	var hash, reason string
	cmd := &cobra.Command{
		Use:   "revoke [TOKEN|-] [--hash TOKEN_HASH]",
		Short: "Revoke a token (admin); every gateway refuses it within a second",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if reason != "" {
				body["reason"] = reason
			}
			if hash != "" {
				body["token_hash"] = hash
			} else {
				arg := ""
				if len(args) > 0 {
					arg = args[0]
				}
				tok, err := readToken(e, arg)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				body["token"] = tok
			}
			var out map[string]any
			_, raw, err := f.adminCall(cmd.Context(), "POST", "/v1/tokens/revoke", body, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
				return nil
			}
			fmt.Fprintf(e.out, "%v %v\n", out["status"], out["token_hash"])
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&hash, "hash", "", "token_hash (64 hex) instead of the token")
	cmd.Flags().StringVar(&reason, "reason", "", "reason (recorded)")
	return cmd
}

func newTokenIntrospectCmd(e *env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "introspect [TOKEN|-]",
		Short: "Ask the issuer whether a token is active (revocation included)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) > 0 {
				arg = args[0]
			}
			tok, err := readToken(e, arg)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var out map[string]any
			_, raw, err := call(cmd.Context(), "POST", strings.TrimRight(f.server, "/")+"/v1/tokens/introspect", "", map[string]string{"token": tok}, &out)
			if err != nil {
				return failCode(err)
			}
			if f.json {
				e.out.Write(raw)
			} else if out["active"] == true {
				fmt.Fprintf(e.out, "active  sub %v  job %v  expires %v\n", out["sub"], out["mission_id"], out["exp"])
			} else {
				fmt.Fprintf(e.out, "inactive  %v: %v\n", out["error"], out["message"])
			}
			if out["active"] != true {
				return silent(ExitFail)
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newTokenScopeHashCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "scope-hash FILE",
		Short: "Print only the token_scope_hash_b64u of the claims in FILE",
		Long: `Compute token_scope_hash_b64u (PROTOCOL.md §3.3) of a JSON object of claims:
SHA-256 of the RFC 8785 form of the normalised subset (aud and scope trimmed,
de-duplicated and sorted). Claims outside the subset, such as iat, exp, jti,
nonce, token_lane and token_scope_hash_b64u, are ignored. FILE may be -.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(e, args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			// Claims outside the hash are dropped first, so that their shape
			// (an iat with a fraction, say) does not matter.
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s: claims must be a JSON object: %v", args[0], err))
			}
			for _, k := range []string{"iat", "exp", "jti", "nonce", "token_lane", "token_scope_hash_b64u"} {
				delete(m, k)
			}
			data, _ = json.Marshal(m)
			var c token.Claims
			if err := json.Unmarshal(data, &c); err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s: claims: %v", args[0], err))
			}
			if c.Sub == "" || len(c.Scope) == 0 {
				return withCode(ExitUsage, fmt.Errorf("%s: claims need sub and scope", args[0]))
			}
			fmt.Fprintln(e.out, c.ScopeHash())
			return nil
		},
	}
}
