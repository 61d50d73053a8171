// Package fakemodel is a scripted model for the OpenClaw end-to-end test
// and the guide in docs/openclaw.md: an OpenAI-compatible chat completions
// server (streaming and not) whose answers follow a script of tool calls,
// so that a real agent runtime can be driven through clawea's gateways
// without a language model. It is not a language model and never pretends
// to be one: it ignores what it is told except to count tool results.
package fakemodel

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Step is one turn of the script: a tool call (the offered tool named
// Tool, else the first ending in "__"+Tool, else in "_"+Tool, as runtimes
// prefix MCP tools with their server's name), or, when Tool is empty, a
// final text answer.
type Step struct {
	Tool string         `json:"tool,omitempty"`
	Args map[string]any `json:"args,omitempty"`
	Text string         `json:"text,omitempty"`
}

// Model answers a conversation's n-th request with Script[n], where n is
// the number of tool results the request carries (after the script, a
// fixed text). It records every request so that a test can read what the
// runtime sent back to the model (the tool results, as the agent saw them).
type Model struct {
	Script []Step
	// Logf, when set, is told about each request.
	Logf func(format string, args ...any)

	mu       sync.Mutex
	requests [][]byte
	calls    map[string]string // tool call id -> tool name called
	srv      *http.Server
}

// Start serves the model on addr (host:port; "127.0.0.1:0" for a free
// port) and returns its base URL (ending in /v1).
func (m *Model) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	go m.srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/v1", nil
}

// Close stops the server.
func (m *Model) Close() error {
	if m.srv == nil {
		return nil
	}
	return m.srv.Close()
}

// CallID is the id of the tool call the model makes at step n of the
// script for tool (letters and digits only: OpenClaw drops other
// characters from tool call ids).
func CallID(n int, tool string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "call%dx", n)
	for _, r := range tool {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
}

// contentText is a message's text: a string, or the text parts of an array.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

// ServeHTTP answers POST .../chat/completions.
func (m *Model) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	m.mu.Lock()
	m.requests = append(m.requests, body)
	n := len(m.requests)
	m.mu.Unlock()
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, `{"error":{"message":"bad json"}}`, http.StatusBadRequest)
		return
	}
	results := 0
	for _, msg := range req.Messages {
		if msg.Role == "tool" {
			results++
		}
	}
	var offered []string
	for _, tl := range req.Tools {
		offered = append(offered, tl.Function.Name)
	}
	m.logf("%s fake model: request %d, %d messages, %d tool results, stream %v, tools %v", time.Now().Format("15:04:05.000"), n, len(req.Messages), results, req.Stream, offered)
	st := Step{Text: "The script is over."}
	if results < len(m.Script) {
		st = m.Script[results]
	}
	var call map[string]any
	if st.Tool != "" {
		name := pick(offered, st.Tool)
		if name == "" {
			st = Step{Text: fmt.Sprintf("FAKE-MODEL: no offered tool ends with %q (offered: %v)", st.Tool, offered)}
		} else {
			args, _ := json.Marshal(st.Args)
			if st.Args == nil {
				args = []byte("{}")
			}
			id := CallID(results, st.Tool)
			m.mu.Lock()
			if m.calls == nil {
				m.calls = map[string]string{}
			}
			m.calls[id] = name
			m.mu.Unlock()
			call = map[string]any{"index": 0, "id": id, "type": "function",
				"function": map[string]any{"name": name, "arguments": string(args)}}
		}
	}
	usage := map[string]any{"prompt_tokens": len(body) / 4, "completion_tokens": 7, "total_tokens": len(body)/4 + 7}
	id := fmt.Sprintf("chatcmpl-e2e-%d", n)
	finish := "stop"
	delta := map[string]any{"role": "assistant", "content": st.Text}
	if call != nil {
		finish = "tool_calls"
		delta = map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{call}}
	}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": delta["content"]}
		if call != nil {
			msg["tool_calls"] = delta["tool_calls"]
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(choices []any, extra map[string]any) {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": req.Model, "choices": choices}
		for k, v := range extra {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	chunk([]any{map[string]any{"index": 0, "delta": delta, "finish_reason": nil}}, nil)
	chunk([]any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": finish}}, nil)
	chunk([]any{}, map[string]any{"usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// pick is the offered tool for a step: the one named tool, else the first
// ending in "__"+tool (an MCP server's tool), else the first ending in
// "_"+tool.
func pick(offered []string, tool string) string {
	for _, suffix := range []string{"", "__", "_"} {
		for _, o := range offered {
			if suffix == "" && o == tool || suffix != "" && strings.HasSuffix(o, suffix+tool) {
				return o
			}
		}
	}
	return ""
}

// ToolResults maps each tool call id the model made to the text of the
// result the runtime sent back for it.
func (m *Model) ToolResults() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for _, body := range m.requests {
		var req chatRequest
		if json.Unmarshal(body, &req) != nil {
			continue
		}
		for _, msg := range req.Messages {
			if msg.Role == "tool" {
				out[msg.ToolCallID] = contentText(msg.Content)
			}
		}
	}
	return out
}

// Requests is every request body the model received.
func (m *Model) Requests() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.requests...)
}

// Calls maps each tool call id the model made to the tool it called.
func (m *Model) Calls() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.calls {
		out[k] = v
	}
	return out
}

func (m *Model) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}
