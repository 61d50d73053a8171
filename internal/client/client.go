// Package client calls clawea's HTTP APIs: JSON in, JSON out, a bearer
// token, and error answers turned into *Error with the service's code, in
// either of the two error shapes clawea's services use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// MaxAnswer bounds how much of an answer is read.
const MaxAnswer = 64 << 20

// Client is a base URL and a token. The zero HTTP uses a client with a
// 60-second timeout.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

var defaultHTTP = &http.Client{Timeout: 60 * time.Second}

// New returns a client for base (e.g. http://127.0.0.1:8420) with token.
func New(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token}
}

// Error is an error answer of a clawea service.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// ParseError reads {"error":{"code","message"}} or {"error":CODE,"message"};
// anything else becomes HTTP_<status> with the body as the message.
func ParseError(status int, body []byte) *Error {
	e := &Error{Status: status, Code: fmt.Sprintf("HTTP_%d", status), Message: strings.TrimSpace(string(body))}
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

// Do sends body (when not nil) as JSON to path and decodes a 2xx answer
// into out (when not nil). It returns the status and the raw answer; a
// non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	url := c.Base + path
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, raw, ParseError(resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("unexpected answer from %s: %v", url, err)
		}
	}
	return resp.StatusCode, raw, nil
}
