package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clawea/clawea/internal/client"
)

// serverFlags are the flags of commands that talk to a clawea server.
type serverFlags struct {
	server string
	token  string
	json   bool
}

func defaultServer() string {
	if s := os.Getenv("CLAWEA_SERVER"); s != "" {
		return s
	}
	return "http://127.0.0.1:8420"
}

func (f *serverFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", defaultServer(), "clawea server URL (env CLAWEA_SERVER)")
	cmd.Flags().StringVar(&f.token, "token", "", "admin token (default: CLAWEA_ADMIN_TOKEN or the data directory's)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
}

// call sends a JSON request with a bearer token to a full URL and decodes
// a JSON answer into out (when not nil). Non-2xx answers become
// *client.Error.
func call(ctx context.Context, method, url, bearer string, body, out any) (int, []byte, error) {
	return (&client.Client{Token: bearer, HTTP: httpClient}).Do(ctx, method, url, body, out)
}

// adminCall is call with the admin token from the flags or the environment.
func (f *serverFlags) adminCall(ctx context.Context, method, path string, body, out any) (int, []byte, error) {
	tok, err := adminToken(f.token)
	if err != nil {
		return 0, nil, err
	}
	return call(ctx, method, strings.TrimRight(f.server, "/")+path, tok, body, out)
}

// failCode maps an API error to exit codes: refusals are 1, usage and
// connectivity problems 2.
func failCode(err error) error {
	var ae *client.Error
	if errors.As(err, &ae) {
		if ae.Status >= 500 {
			return withCode(ExitUsage, ae)
		}
		return withCode(ExitFail, ae)
	}
	return withCode(ExitUsage, err)
}

// readToken reads a token argument: the value itself, "-" for stdin, or
// empty for CLAWEA_TOKEN.
func readToken(e *env, arg string) (string, error) {
	switch arg {
	case "-":
		raw, err := io.ReadAll(io.LimitReader(e.in, 64<<10))
		return strings.TrimSpace(string(raw)), err
	case "":
		if t := os.Getenv("CLAWEA_TOKEN"); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("no token: pass it as an argument, - for stdin, or set CLAWEA_TOKEN")
	}
	return strings.TrimSpace(arg), nil
}

func writeFile(path string, data []byte) error {
	return os.WriteFile(path, append(bytes.TrimRight(data, "\n"), '\n'), 0o644)
}
