package openclaw

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// step is one turn of the scripted model: a tool call (the tool is the
// first offered tool whose name ends with suffix), or, when suffix is
// empty, a final text answer.
type step struct {
	suffix string
	args   map[string]any
	text   string
}

// fakeModel is an OpenAI-compatible chat completions upstream that follows
// a script: its n-th answer in a conversation is script[n], where n is the
// number of tool results the request carries. It answers streaming requests
// (what OpenClaw sends) as SSE and others as one JSON object, and records
// every request so the test can read what OpenClaw sent back to the model
// (the tool results, as the agent saw them).
type fakeModel struct {
	t      testing.TB
	model  string
	script []step

	mu       sync.Mutex
	requests [][]byte
	calls    map[string]string // tool call id -> tool name called
	srv      *http.Server
}

func startFakeModel(t testing.TB, model string, script []step) (*fakeModel, string) {
	t.Helper()
	m := &fakeModel{t: t, model: model, script: script, calls: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.srv = &http.Server{Handler: http.HandlerFunc(m.serve), ReadHeaderTimeout: 10 * time.Second}
	go m.srv.Serve(ln)
	t.Cleanup(func() { m.srv.Close() })
	return m, "http://" + ln.Addr().String() + "/v1"
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

func (m *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
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
	m.t.Logf("%s fake model: request %d, %d messages, %d tool results, stream %v, tools %v", time.Now().Format("15:04:05.000"), n, len(req.Messages), results, req.Stream, offered)
	st := step{text: "The script is over."}
	if results < len(m.script) {
		st = m.script[results]
	}
	var call map[string]any
	if st.suffix != "" {
		name := ""
		for _, o := range offered {
			if o == st.suffix || strings.HasSuffix(o, "__"+st.suffix) || strings.HasSuffix(o, "_"+st.suffix) {
				name = o
				break
			}
		}
		if name == "" {
			st = step{text: fmt.Sprintf("FAKE-MODEL: no offered tool ends with %q (offered: %v)", st.suffix, offered)}
		} else {
			args, _ := json.Marshal(st.args)
			id := fmt.Sprintf("call%dx%s", results, strings.NewReplacer("-", "", ".", "", "_", "").Replace(st.suffix))
			m.mu.Lock()
			m.calls[id] = name
			m.mu.Unlock()
			call = map[string]any{"index": 0, "id": id, "type": "function",
				"function": map[string]any{"name": name, "arguments": string(args)}}
		}
	}
	usage := map[string]any{"prompt_tokens": len(body) / 4, "completion_tokens": 7, "total_tokens": len(body)/4 + 7}
	id := fmt.Sprintf("chatcmpl-e2e-%d", n)
	finish := "stop"
	delta := map[string]any{"role": "assistant", "content": st.text}
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

// toolResults maps each tool call id the model made to the text of the
// result OpenClaw sent back for it (the last request holds them all).
func (m *fakeModel) toolResults() map[string]string {
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

// allRequests is every request body the model received.
func (m *fakeModel) allRequests() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.requests...)
}
