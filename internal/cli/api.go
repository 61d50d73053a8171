package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
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

// apiError is an error answer of any clawea service, in either of the two
// error shapes ({"error":{"code","message"}} or {"error":CODE,"message"}).
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

func parseAPIError(status int, body []byte) *apiError {
	e := &apiError{Status: status, Code: "HTTP_" + fmt.Sprint(status), Message: strings.TrimSpace(string(body))}
	var nested struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &nested) == nil && nested.Error.Code != "" {
		e.Code, e.Message = nested.Error.Code, nested.Error.Message
		return e
	}
	var flat struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &flat) == nil && flat.Error != "" {
		e.Code, e.Message = flat.Error, flat.Message
	}
	return e
}

// call sends a JSON request with a bearer token and decodes a JSON answer
// into out (when not nil). Non-2xx answers become *apiError.
func call(ctx context.Context, method, url, bearer string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, raw, parseAPIError(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("unexpected answer from %s: %v", url, err)
		}
	}
	return resp.StatusCode, raw, nil
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
	if ae, ok := err.(*apiError); ok {
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
