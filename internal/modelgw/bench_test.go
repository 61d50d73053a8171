package modelgw_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/modelgw"
)

// replyTransport answers every upstream call with the same OpenAI-style
// chat completion, in memory, so that a benchmark times the gateway alone.
type replyTransport struct{ body []byte }

func (t replyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(t.body))}},
		Body:          io.NopCloser(bytes.NewReader(t.body)),
		ContentLength: int64(len(t.body)), Request: r}, nil
}

// BenchmarkServe times one non-streaming chat call through the gateway's
// handler, in process: the token and policy checks, the forwarded call to
// an in-memory upstream answering 1 KiB, the llm_call event with its
// signed receipt stored (SQLite with its event journal), and the answer.
// It is the gateway's own cost per call, without the network (bench/modelgw
// measures it end to end).
func BenchmarkServe(b *testing.B) {
	content := strings.Repeat("All payments settled; nothing to report. ", 21)
	reply := []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		content + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":140,"total_tokens":149}}`)
	e := start(b, func(o *modelgw.Options) { o.Transport = replyTransport{reply} })
	_, tok := e.job(e.publish(testPolicy), nil)
	body := []byte(chat("gpt-4o-mini"))
	h := e.node.Handler
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/v1/proxy/openai/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("HTTP %d: %s", w.Code, w.Body)
		}
	}
}
