package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/token"
)

// OpenClaw's exec SecretRef provider protocol, version 1: OpenClaw writes
// {"protocolVersion":1,"provider":ALIAS,"ids":[ID,...]} on the resolver's
// stdin and reads {"protocolVersion":1,"values":{ID:VALUE},"errors":
// {ID:{"code":CODE}}} from its stdout. clawea answers ids of the form
// job/<JOB>/token with that job's token.

// Per-id and whole-request error codes of clawea secretref. NOT_FOUND and
// AMBIGUOUS_DUPLICATE_KEY are the codes OpenClaw displays; the others are
// clawea's and are carried in the same shape.
const (
	SecretRefNotFound        = "NOT_FOUND"               // no token for this job
	SecretRefAmbiguous       = "AMBIGUOUS_DUPLICATE_KEY" // two different tokens for the job
	SecretRefExpired         = "TOKEN_EXPIRED"           // the token for the job has expired
	SecretRefInactive        = "TOKEN_INACTIVE"          // the issuer says the token is not active
	SecretRefUnavailable     = "ISSUER_UNAVAILABLE"      // the issuer could not be asked
	SecretRefInvalidRequest  = "INVALID_REQUEST"         // the request is not protocol v1
	SecretRefUnsupported     = "UNSUPPORTED_PROTOCOL"    // protocolVersion is not 1
	SecretRefSourceUnsafe    = "TOKEN_SOURCE_UNSAFE"     // the token file is not private
	secretRefMaxRequestBytes = 1 << 20
	secretRefMaxIDs          = 256
)

// OpenClaw's exec id grammar; clawea serves job/<JOB>/token within it.
var (
	execIDRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,255}$`)
	jobTokenIDRe = regexp.MustCompile(`^job/([A-Za-z0-9][A-Za-z0-9._:-]{0,127})/token$`)
)

// secretRefRequest is a parsed protocol v1 request.
type secretRefRequest struct {
	Provider string
	IDs      []string
}

type secretRefError struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
}

// secretRefResponse is the protocol's answer. Error is clawea's whole-
// request error (a request it could not read); values stay empty then.
type secretRefResponse struct {
	ProtocolVersion int                       `json:"protocolVersion"`
	Values          map[string]string         `json:"values"`
	Errors          map[string]secretRefError `json:"errors,omitempty"`
	Error           *secretRefError           `json:"error,omitempty"`
}

// parseSecretRefRequest reads a protocol v1 request strictly: one JSON
// object, protocolVersion exactly 1, ids a non-empty list of at most 256
// distinct strings in OpenClaw's exec id grammar, provider a string if
// present. Unknown members are ignored (later OpenClaw versions may add
// some); anything else is an error with its code.
func parseSecretRefRequest(raw []byte) (*secretRefRequest, *secretRefError) {
	bad := func(f string, a ...any) *secretRefError {
		return &secretRefError{Code: SecretRefInvalidRequest, Message: fmt.Sprintf(f, a...)}
	}
	if len(raw) > secretRefMaxRequestBytes {
		return nil, bad("the request is larger than %d bytes", secretRefMaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, bad("the request must be one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("the request must be one JSON object, with nothing after it")
	}
	v, ok := m["protocolVersion"]
	if !ok {
		return nil, bad("protocolVersion is missing")
	}
	if string(v) != "1" {
		return nil, &secretRefError{Code: SecretRefUnsupported, Message: "only protocolVersion 1 is supported"}
	}
	req := &secretRefRequest{}
	if p, ok := m["provider"]; ok {
		if err := json.Unmarshal(p, &req.Provider); err != nil {
			return nil, bad("provider must be a string")
		}
	}
	rawIDs, ok := m["ids"]
	if !ok {
		return nil, bad("ids is missing")
	}
	if err := json.Unmarshal(rawIDs, &req.IDs); err != nil || req.IDs == nil {
		return nil, bad("ids must be a list of strings")
	}
	if len(req.IDs) == 0 || len(req.IDs) > secretRefMaxIDs {
		return nil, bad("ids must name 1 to %d ids", secretRefMaxIDs)
	}
	seen := make(map[string]bool, len(req.IDs))
	for _, id := range req.IDs {
		if !execIDRe.MatchString(id) {
			return nil, bad("an id does not match the exec id grammar")
		}
		if seen[id] {
			return nil, bad("an id is repeated")
		}
		seen[id] = true
	}
	return req, nil
}

// tokenSource is where clawea secretref finds job tokens.
type tokenSource struct {
	file   string // a private file holding one token ("" for none)
	env    string // the value of CLAWEA_TOKEN
	server string // the issuer asked whether a token is active ("" offline)
	now    func() time.Time
}

// readPrivateFile reads a token file that only its owner can read: a
// regular file (not a symlink), no group or other permission bits, at most
// 64 KiB.
func readPrivateFile(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (symlinks are refused)", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is readable or writable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	if fi.Size() > 64<<10 {
		return "", fmt.Errorf("%s is larger than 64 KiB", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The file must be the one checked, not one swapped in since.
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		return "", fmt.Errorf("%s changed while being read", path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}

// resolve answers every id of a request. An id clawea cannot answer gets
// its own error; a value is only ever a token that parses, names the job
// and has not expired (and, online, that the issuer calls active).
func (s *tokenSource) resolve(ctx context.Context, req *secretRefRequest) *secretRefResponse {
	out := &secretRefResponse{ProtocolVersion: 1, Values: map[string]string{}, Errors: map[string]secretRefError{}}
	var cands []string
	var fileErr error
	if s.file != "" {
		t, err := readPrivateFile(s.file)
		if err != nil {
			fileErr = err
		} else if t != "" {
			cands = append(cands, t)
		}
	}
	if s.env != "" {
		cands = append(cands, strings.TrimSpace(s.env))
	}
	for _, id := range req.IDs {
		m := jobTokenIDRe.FindStringSubmatch(id)
		if m == nil {
			out.Errors[id] = secretRefError{Code: SecretRefNotFound, Message: "clawea serves ids of the form job/<JOB>/token"}
			continue
		}
		if fileErr != nil {
			// A token file that is not private is never used, and not
			// silently skipped either.
			code := SecretRefSourceUnsafe
			if errors.Is(fileErr, fs.ErrNotExist) {
				code = SecretRefNotFound
			}
			out.Errors[id] = secretRefError{Code: code, Message: "the token file cannot be used: " + fileErr.Error()}
			continue
		}
		tok, e := s.pick(cands, m[1])
		if e == nil && s.server != "" {
			e = introspect(ctx, s.server, tok, m[1])
		}
		if e != nil {
			out.Errors[id] = *e
			continue
		}
		out.Values[id] = tok
	}
	if len(out.Errors) == 0 {
		out.Errors = nil
	}
	return out
}

// pick finds the one token for job among the candidates.
func (s *tokenSource) pick(cands []string, job string) (string, *secretRefError) {
	found, expired := "", false
	for _, t := range cands {
		p, err := token.Parse(t)
		if err != nil || p.Claims.MissionID != job {
			continue
		}
		if s.now().Unix() >= p.Claims.Exp {
			expired = true
			continue
		}
		if found != "" && found != t {
			return "", &secretRefError{Code: SecretRefAmbiguous, Message: "two different tokens are given for job " + job}
		}
		found = t
	}
	switch {
	case found != "":
		return found, nil
	case expired:
		return "", &secretRefError{Code: SecretRefExpired, Message: "the token for job " + job + " has expired; start a new job"}
	}
	return "", &secretRefError{Code: SecretRefNotFound, Message: "no token for job " + job + " (set CLAWEA_TOKEN or --token-file)"}
}

// introspect asks the issuer whether tok is active for job; anything but
// a clear yes is an error (fail closed).
func introspect(ctx context.Context, server, tok, job string) *secretRefError {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var out struct {
		Active    bool   `json:"active"`
		MissionID string `json:"mission_id"`
		Error     string `json:"error"`
	}
	_, _, err := call(ctx, "POST", strings.TrimRight(server, "/")+"/v1/tokens/introspect", "", map[string]string{"token": tok}, &out)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return &secretRefError{Code: SecretRefInactive, Message: "the issuer refuses the token for job " + job + " (" + ae.Code + ")"}
	}
	if err != nil {
		return &secretRefError{Code: SecretRefUnavailable, Message: "cannot ask the issuer at " + server + " whether the token is active"}
	}
	if !out.Active || out.MissionID != job {
		msg := "the issuer says the token for job " + job + " is not active"
		if out.Error != "" {
			msg += " (" + out.Error + ")"
		}
		return &secretRefError{Code: SecretRefInactive, Message: msg}
	}
	return nil
}

func newSecretRefCmd(e *env) *cobra.Command {
	var server, tokenFile string
	var offline bool
	cmd := &cobra.Command{
		Use:   "secretref [--token-file PATH] [--server URL | --offline]",
		Short: "Resolve job tokens for OpenClaw's exec SecretRef provider (JSON on stdin/stdout)",
		Long: `Act as an OpenClaw exec SecretRef provider (protocol version 1): read
{"protocolVersion":1,"provider":...,"ids":[...]} on stdin and print
{"protocolVersion":1,"values":{...},"errors":{...}} on stdout. An id of the
form job/<JOB>/token resolves to that job's token; any other id, or a job
without a usable token, gets a per-id error (NOT_FOUND, AMBIGUOUS_DUPLICATE_KEY,
TOKEN_EXPIRED, TOKEN_INACTIVE, ISSUER_UNAVAILABLE, TOKEN_SOURCE_UNSAFE).

The token comes from CLAWEA_TOKEN (pass it to the provider with passEnv; it
then lives only in process memory) or from --token-file / CLAWEA_TOKEN_FILE,
a regular file of mode 0600 (symlinks and shared files are refused). A token
is returned only if it names the job and has not expired, and, unless
--offline, only if the issuer (--server) says it is active. A request that
is not protocol v1 is answered with an "error" object and exit code 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tokenFile == "" {
				tokenFile = os.Getenv("CLAWEA_TOKEN_FILE")
			}
			src := &tokenSource{file: tokenFile, env: os.Getenv("CLAWEA_TOKEN"), server: server, now: time.Now}
			if offline {
				src.server = ""
			}
			raw, err := io.ReadAll(io.LimitReader(e.in, secretRefMaxRequestBytes+1))
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("secretref: cannot read stdin: %v", err))
			}
			req, perr := parseSecretRefRequest(raw)
			if perr != nil {
				printSecretRef(e.out, &secretRefResponse{ProtocolVersion: 1, Values: map[string]string{}, Error: perr})
				return withCode(ExitUsage, fmt.Errorf("secretref: %s: %s", perr.Code, perr.Message))
			}
			return printSecretRef(e.out, src.resolve(cmd.Context(), req))
		},
	}
	cmd.Flags().StringVar(&server, "server", defaultServer(), "clawea server asked whether a token is active (env CLAWEA_SERVER)")
	cmd.Flags().BoolVar(&offline, "offline", false, "do not ask the server (expiry and job are still checked)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "a private (0600) file holding the job's token (env CLAWEA_TOKEN_FILE)")
	return cmd
}

func printSecretRef(w io.Writer, r *secretRefResponse) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	_, err = w.Write(append(raw, '\n'))
	return err
}
