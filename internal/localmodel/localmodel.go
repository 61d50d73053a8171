// Package localmodel is clawea's local test model: an HTTP server that
// speaks the OpenAI (chat completions and responses) and Anthropic
// (messages) wire formats, streaming and not, and answers every request
// with a short deterministic reply that says it comes from a local test
// model. It is the upstream of the demo and of the gateway's tests; it is
// not a language model and never pretends to be one.
//
// Token counts are words (whitespace-separated) of the input messages and
// of the reply, reported in each API's usage fields. Faults can be injected
// for tests.
package localmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ModelName is the model the demo asks for.
const ModelName = "clawea-local-test-model"

// Fault tells the server to misbehave for one request.
type Fault struct {
	// Status answers with this HTTP status and a JSON error body.
	Status int
	// Malformed answers 200 with a body that is not JSON.
	Malformed bool
	// Hang waits until the client goes away (or the server closes).
	Hang bool
	// ChunkDelay waits this long before each streamed chunk.
	ChunkDelay time.Duration
	// DropAfter ends a stream abruptly after this many chunks (> 0).
	DropAfter int
}

// Options configure a Server.
type Options struct {
	// Fault, when set, chooses a fault per request (zero Fault: none).
	Fault func(r *http.Request, body []byte) Fault
	// Reply overrides the reply text.
	Reply func(lastUserText string) string
}

// Server is a local test model.
type Server struct {
	opt      Options
	requests atomic.Int64
	mu       sync.Mutex
	last     Request
	hs       *http.Server
	ln       net.Listener
	done     chan struct{}
}

// Request is what the server last received (for tests).
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// New returns a server; Handler serves it, or Start listens on loopback.
func New(opt Options) *Server { return &Server{opt: opt, done: make(chan struct{})} }

// Start listens on 127.0.0.1 on a free port and returns the base URL
// (with /v1 appended, as OpenAI-style base URLs are written).
func (s *Server) Start() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.ln = ln
	s.hs = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln)
	return "http://" + ln.Addr().String() + "/v1", nil
}

// Close stops a started server and releases hanging requests.
func (s *Server) Close() error {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	if s.hs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.hs.Shutdown(ctx)
}

// Requests counts the requests served.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Last returns the last request received.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/v1/chat/completions", "/chat/completions", "/openai/deployments/{d}/chat/completions"} {
		mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, chatAPI) })
	}
	for _, p := range []string{"/v1/responses", "/responses"} {
		mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, responsesAPI) })
	}
	for _, p := range []string{"/v1/messages", "/messages"} {
		mux.HandleFunc("POST "+p, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, messagesAPI) })
	}
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"object": "list", "data": []any{map[string]any{"id": ModelName, "object": "model", "created": 0, "owned_by": "clawea-local"}}})
	})
	return mux
}

type api int

const (
	chatAPI api = iota
	responsesAPI
	messagesAPI
)

type request struct {
	Model         string          `json:"model"`
	Stream        bool            `json:"stream"`
	Messages      []message       `json:"messages"`
	Input         json.RawMessage `json:"input"`
	System        json.RawMessage `json:"system"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// text flattens a content value: a string, or a list of parts with text.
func text(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Text    string          `json:"text"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
			if len(p.Content) > 0 {
				b.WriteString(" " + text(p.Content))
			}
			b.WriteByte(' ')
		}
		return b.String()
	}
	return ""
}

func words(s string) int64 { return int64(len(strings.Fields(s))) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request, which api) {
	s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.last = Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.mu.Unlock()
	var f Fault
	if s.opt.Fault != nil {
		f = s.opt.Fault(r, body)
	}
	switch {
	case f.Hang:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	case f.Status != 0:
		writeJSON(w, f.Status, map[string]any{"error": map[string]any{"message": "local test model: injected fault", "type": "server_error", "code": "injected_fault"}})
		return
	case f.Malformed:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": "broken", "choices": [`)
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "invalid JSON body", "type": "invalid_request_error"}})
		return
	}
	var in int64
	last := ""
	for _, m := range req.Messages {
		t := text(m.Content)
		in += words(t)
		if m.Role == "user" {
			last = t
		}
	}
	if len(req.Input) > 0 {
		var msgs []message
		if json.Unmarshal(req.Input, &msgs) == nil && len(msgs) > 0 {
			for _, m := range msgs {
				t := text(m.Content)
				in += words(t)
				last = t
			}
		} else {
			last = text(req.Input)
			in += words(last)
		}
	}
	in += words(text(req.System))
	reply := fmt.Sprintf("(local test model) You sent %d words; the last message had %d.", in, words(last))
	if s.opt.Reply != nil {
		reply = s.opt.Reply(last)
	}
	model := req.Model
	if model == "" {
		model = ModelName
	}
	out := words(reply)
	if !req.Stream {
		switch which {
		case chatAPI:
			writeJSON(w, 200, chatCompletion(model, reply, in, out))
		case responsesAPI:
			writeJSON(w, 200, response(model, reply, in, out))
		case messagesAPI:
			writeJSON(w, 200, anthropicMessage(model, reply, in, out))
		}
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	chunks := strings.SplitAfter(reply, " ")
	n := 0
	send := func(event string, v any) bool {
		if f.DropAfter > 0 && n >= f.DropAfter {
			return false
		}
		if f.ChunkDelay > 0 {
			select {
			case <-time.After(f.ChunkDelay):
			case <-r.Context().Done():
				return false
			case <-s.done:
				return false
			}
		}
		n++
		raw, _ := json.Marshal(v)
		if event != "" {
			fmt.Fprintf(w, "event: %s\n", event)
		}
		fmt.Fprintf(w, "data: %s\n\n", raw)
		w.(http.Flusher).Flush()
		return true
	}
	drop := func() {
		// End the response without the protocol's closing events.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	}
	switch which {
	case chatAPI:
		id := "chatcmpl-local"
		chunk := func(delta map[string]any, finish any) map[string]any {
			return map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		}
		if !send("", chunk(map[string]any{"role": "assistant", "content": ""}, nil)) {
			drop()
			return
		}
		for _, c := range chunks {
			if !send("", chunk(map[string]any{"content": c}, nil)) {
				drop()
				return
			}
		}
		if !send("", chunk(map[string]any{}, "stop")) {
			drop()
			return
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			if !send("", map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model, "choices": []any{},
				"usage": map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out}}) {
				drop()
				return
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	case responsesAPI:
		seq := 0
		ev := func(typ string, v map[string]any) bool {
			v["type"], v["sequence_number"] = typ, seq
			seq++
			return send(typ, v)
		}
		resp := response(model, "", 0, 0)
		resp["status"] = "in_progress"
		delete(resp, "usage")
		if !ev("response.created", map[string]any{"response": resp}) {
			drop()
			return
		}
		for _, c := range chunks {
			if !ev("response.output_text.delta", map[string]any{"item_id": "msg_local", "output_index": 0, "content_index": 0, "delta": c}) {
				drop()
				return
			}
		}
		if !ev("response.completed", map[string]any{"response": response(model, reply, in, out)}) {
			drop()
			return
		}
	case messagesAPI:
		start := anthropicMessage(model, "", in, 1)
		start["content"] = []any{}
		start["stop_reason"] = nil
		steps := []struct {
			event string
			v     any
		}{
			{"message_start", map[string]any{"type": "message_start", "message": start}},
			{"content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}},
			{"ping", map[string]any{"type": "ping"}},
		}
		for _, c := range chunks {
			steps = append(steps, struct {
				event string
				v     any
			}{"content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": c}}})
		}
		steps = append(steps, []struct {
			event string
			v     any
		}{
			{"content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}},
			{"message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": out}}},
			{"message_stop", map[string]any{"type": "message_stop"}},
		}...)
		for _, st := range steps {
			if !send(st.event, st.v) {
				drop()
				return
			}
		}
	}
}

func chatCompletion(model, reply string, in, out int64) map[string]any {
	return map[string]any{"id": "chatcmpl-local", "object": "chat.completion", "created": 1700000000, "model": model,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": reply, "refusal": nil},
			"logprobs": nil, "finish_reason": "stop"}},
		"usage":              map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out},
		"system_fingerprint": "clawea-local"}
}

func response(model, reply string, in, out int64) map[string]any {
	return map[string]any{"id": "resp_local", "object": "response", "created_at": 1700000000, "status": "completed", "model": model,
		"output": []any{map[string]any{"type": "message", "id": "msg_local", "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": reply, "annotations": []any{}}}}},
		"parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{}, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"usage": map[string]any{"input_tokens": in, "output_tokens": out, "total_tokens": in + out,
			"input_tokens_details": map[string]any{"cached_tokens": 0}, "output_tokens_details": map[string]any{"reasoning_tokens": 0}}}
}

func anthropicMessage(model, reply string, in, out int64) map[string]any {
	return map[string]any{"id": "msg_local", "type": "message", "role": "assistant", "model": model,
		"content":     []any{map[string]any{"type": "text", "text": reply}},
		"stop_reason": "end_turn", "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": in, "output_tokens": out}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
