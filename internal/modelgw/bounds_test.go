package modelgw_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/store"
)

// boundsPolicy allows the test's own upstreams.
const boundsPolicy = `{"policy_version":"2","policy_id":"modelgw-bounds","issuer_did":"did:web:test.example",
 "statements":[{"sid":"AllowModels","effect":"Allow","actions":["model:invoke"],
   "resources":["model://local/*","model://forever/*","model://forever-ant/*","model://gate/*"]}]}`

// foreverUpstream streams events until the gateway hangs up (or 20 s
// pass, so that it stops by itself): OpenAI chat chunks on
// /v1/chat/completions, Anthropic events on /v1/messages. It never sends
// usage or a closing event.
func foreverUpstream(t *testing.T, every time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		stop := time.After(20 * time.Second)
		anthropicAPI := strings.HasSuffix(r.URL.Path, "/messages")
		if anthropicAPI {
			fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_f\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"+
				"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		}
		for i := 0; ; i++ {
			if anthropicAPI {
				fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word%d \"}}\n\n", i)
			} else {
				fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word%d \"},\"finish_reason\":null}]}\n\n", i)
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-stop:
				return
			case <-time.After(every):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// cutStream checks what a client received from a stream the gateway cut:
// the provider's events, the error event, then the receipt trailer. The
// receipt must say STREAM_LIMIT_EXCEEDED and hash exactly the relayed
// bytes; the llm_call event must name the limit and the bytes.
func (e *env) cutStream(jobID string, got []byte, limit string) map[string]any {
	e.t.Helper()
	i := strings.LastIndex(string(got), "event: error\ndata: ")
	if i < 0 {
		e.t.Fatalf("no error event in the stream:\n%s", got)
	}
	relayed := got[:i]
	if !strings.HasSuffix(string(relayed), "\n\n") {
		e.t.Errorf("the cut is not at an event boundary: %q", relayed[max(len(relayed)-40, 0):])
	}
	var rc struct {
		Payload struct {
			ResponseHash string `json:"response_hash_b64u"`
			Metadata     struct {
				Status string `json:"clawea_status"`
				Code   string `json:"clawea_error_code"`
			} `json:"metadata"`
		} `json:"payload"`
	}
	tc := tailCapture{}
	tc.body.Write(got)
	raw := tc.trailerReceipt()
	if raw == nil {
		e.t.Fatalf("no receipt trailer:\n%s", got[i:])
	}
	e.checkReceipt(raw)
	json.Unmarshal(raw, &rc)
	if rc.Payload.Metadata.Code != modelgw.CodeStreamLimit || rc.Payload.Metadata.Status != modelgw.CodeStreamLimit {
		e.t.Errorf("receipt outcome %+v", rc.Payload.Metadata)
	}
	if rc.Payload.ResponseHash != b64u.SHA256(relayed) {
		e.t.Errorf("the receipt does not hash the %d relayed bytes", len(relayed))
	}
	var ev map[string]any
	for _, pl := range e.events(jobID) {
		if pl["_type"] == modelgw.EventLLMCall {
			ev = pl
		}
	}
	if ev["outcome"] != modelgw.CodeStreamLimit || ev["stream_limit"] != limit || ev["stream_bytes"] != float64(len(relayed)) {
		e.t.Errorf("llm_call event %v, relayed %d bytes", ev, len(relayed))
	}
	return ev
}

// TestStreamCutAtDuration: an upstream that streams forever is cut at
// max_stream_duration; the OpenAI SDK sees an error, the receipt and the
// event record the cut, and the job finishes.
func TestStreamCutAtDuration(t *testing.T) {
	up := foreverUpstream(t, 10*time.Millisecond)
	e := start(t, func(o *modelgw.Options) {
		o.Providers = append(o.Providers, modelgw.Provider{Name: "forever", BaseURL: up.URL + "/v1"})
		o.MaxStreamDuration = 400 * time.Millisecond
	})
	jobID, tok := e.job(e.publish(boundsPolicy), nil)
	var tail tailCapture
	oc := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/proxy/forever/v1/"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0),
		ooption.WithMiddleware(func(req *http.Request, next ooption.MiddlewareNext) (*http.Response, error) {
			resp, err := next(req)
			if err == nil {
				resp.Body = teeBody{resp.Body, &tail}
			}
			return resp, err
		}))
	began := time.Now()
	stream := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "endless",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("go on forever")}})
	chunks := 0
	for stream.Next() {
		chunks++
	}
	err := stream.Err()
	stream.Close()
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), modelgw.CodeStreamLimit) {
		t.Fatalf("stream error %v", err)
	}
	if chunks < 5 || took < 400*time.Millisecond || took > 10*time.Second {
		t.Errorf("%d chunks in %v", chunks, took)
	}
	tail.mu.Lock()
	got := append([]byte(nil), tail.body.Bytes()...)
	tail.mu.Unlock()
	ev := e.cutStream(jobID, got, "max_stream_duration")
	if ev["stream_limit_max"] != float64(400) {
		t.Errorf("limit recorded as %v", ev["stream_limit_max"])
	}
	e.finish(jobID)
}

// TestStreamCutAtBytes: an upstream that streams forever is cut at
// max_stream_bytes, at the last whole event within it; the Anthropic SDK
// reads the error event.
func TestStreamCutAtBytes(t *testing.T) {
	up := foreverUpstream(t, time.Millisecond)
	const limit = 6000
	e := start(t, func(o *modelgw.Options) {
		o.Providers = append(o.Providers, modelgw.Provider{Name: "forever-ant", Kind: modelgw.KindAnthropic, BaseURL: up.URL})
		o.MaxStreamBytes = limit
	})
	jobID, tok := e.job(e.publish(boundsPolicy), nil)
	var tail tailCapture
	ac := anthropic.NewClient(aoption.WithBaseURL(e.url+"/v1/proxy/forever-ant/"), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0),
		aoption.WithMiddleware(func(req *http.Request, next aoption.MiddlewareNext) (*http.Response, error) {
			resp, err := next(req)
			if err == nil {
				resp.Body = teeBody{resp.Body, &tail}
			}
			return resp, err
		}))
	stream := ac.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{Model: "endless", MaxTokens: 100000,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("go on forever"))}})
	var acc anthropic.Message
	for stream.Next() {
		acc.Accumulate(stream.Current())
	}
	err := stream.Err()
	stream.Close()
	if err == nil || !strings.Contains(err.Error(), modelgw.CodeStreamLimit) {
		t.Fatalf("stream error %v", err)
	}
	if len(acc.Content) == 0 || !strings.HasPrefix(acc.Content[0].Text, "word0 word1 ") {
		t.Errorf("accumulated %+v", acc.Content)
	}
	tail.mu.Lock()
	got := append([]byte(nil), tail.body.Bytes()...)
	tail.mu.Unlock()
	ev := e.cutStream(jobID, got, "max_stream_bytes")
	if n := ev["stream_bytes"].(float64); n > limit || n < limit-200 {
		t.Errorf("%v bytes relayed for a limit of %d", n, limit)
	}
	e.finish(jobID)
}

// gateUpstream answers chat completions only when released, reporting as
// output the cap the gateway forwarded: every admitted call spends all it
// reserved.
type gateUpstream struct {
	arrived atomic.Int32
	release chan struct{}
	srv     *httptest.Server
}

func newGate(t *testing.T) *gateUpstream {
	g := &gateUpstream{release: make(chan struct{})}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string `json:"model"`
			Max   *int64 `json:"max_tokens"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		g.arrived.Add(1)
		select {
		case <-g.release:
		case <-time.After(10 * time.Second):
		}
		out := int64(-1)
		if req.Max != nil {
			out = *req.Max
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":%d,"total_tokens":%d}}`,
			req.Model, out, out+4)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestConcurrentTokenBudget: 16 calls at once against an output budget of
// 10 calls' worth. Calls hold their reservations until the upstream
// answers, so exactly 10 reach it and 6 are refused with
// TOKEN_BUDGET_EXCEEDED; the finished bundle's claim states every limit
// and passes strict verification.
func TestConcurrentTokenBudget(t *testing.T) {
	gate := newGate(t)
	e := start(t, func(o *modelgw.Options) {
		o.Providers = append(o.Providers, modelgw.Provider{Name: "gate", BaseURL: gate.srv.URL + "/v1"})
	})
	const perCall, calls = 5, 16
	jobID, tok := e.job(e.publish(boundsPolicy), &store.Budget{MaxRequests: 100, MaxTokensInput: 1 << 20, MaxTokensOutput: 10 * perCall})
	oc := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/proxy/gate/v1/"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	var refused atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := oc.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "m",
				MaxTokens: openai.Int(perCall), Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("count to five")}})
			if err != nil {
				refused.Add(1)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	// Release the upstream once every call was either admitted or refused.
	deadline := time.Now().Add(10 * time.Second)
	for int(gate.arrived.Load()+refused.Load()) < calls && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(gate.release)
	wg.Wait()
	if n := gate.arrived.Load(); n != 10 {
		t.Errorf("%d calls reached the provider for a budget of 10", n)
	}
	for _, err := range errs {
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Code != modelgw.CodeTokenBudget {
			t.Errorf("refusal: %v", err)
		}
	}
	// Reservations were settled: the budget is spent, a further call is refused.
	if a := e.post("/v1/proxy/gate/v1/chat/completions", bearer(tok), chat("m")); a.code != modelgw.CodeTokenBudget {
		t.Errorf("after the budget: %d %s", a.status, a.raw)
	}
	v := e.finish(jobID)
	if v.Receipts != 10 || v.RateLimitClaims != 1 {
		t.Errorf("receipts %d claims %d", v.Receipts, v.RateLimitClaims)
	}
	claim := rateLimitClaim(t, e.bundle)
	want := map[string]float64{"max_requests": 100, "observed_requests": 10, "max_tokens_output": 50, "observed_tokens_output": 50,
		"max_tokens_input": 1 << 20, "observed_tokens_input": 40}
	for k, w := range want {
		if claim[k] != w {
			t.Errorf("claim %s = %v, want %v (%v)", k, claim[k], w, claim)
		}
	}
}

func rateLimitClaim(t *testing.T, envelope []byte) map[string]any {
	t.Helper()
	var b struct {
		Payload struct {
			Claims   []map[string]any `json:"rate_limit_claims"`
			Metadata struct {
				Labels map[string]any `json:"labels"`
			} `json:"metadata"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(envelope, &b); err != nil || len(b.Payload.Claims) != 1 {
		t.Fatalf("bundle claims: %v %s", err, envelope)
	}
	if o := b.Payload.Metadata.Labels["budget_overrun"]; o != nil {
		t.Errorf("budget overrun recorded: %v", o)
	}
	return b.Payload.Claims[0]
}

// TestInputBudgetReservation: a call reserves its body's size as input
// tokens; one that does not fit in what is left is refused before the
// provider is called, and reservations of calls that never reach the
// provider (a replay) are given back.
func TestInputBudgetReservation(t *testing.T) {
	e := start(t, nil)
	body := chat("clawea-local-test-model")
	jobID, tok := e.job(e.publish(boundsPolicy), &store.Budget{MaxRequests: 2, MaxTokensInput: int64(len(body)) + 10})
	h := bearer(tok)
	h["X-Idempotency-Key"] = "k1"
	if a := e.post("/v1/proxy/local/v1/chat/completions", h, body); a.status != 200 {
		t.Fatalf("first: %d %s", a.status, a.raw)
	}
	for range 3 { // replays reserve and give back
		if a := e.post("/v1/proxy/local/v1/chat/completions", h, body); a.status != 200 || a.header.Get("X-Clawea-Idempotent-Replay") != "true" {
			t.Fatalf("replay: %d %s", a.status, a.raw)
		}
	}
	before := e.upstream.Requests()
	// The local model counted 2 input tokens: len(body)+8 are left.
	if a := e.post("/v1/proxy/local/v1/chat/completions", bearer(tok), body+strings.Repeat(" ", 20)); a.code != modelgw.CodeTokenBudget || a.status != 429 {
		t.Errorf("a body larger than what is left: %d %s", a.status, a.raw)
	}
	if a := e.post("/v1/proxy/local/v1/chat/completions", bearer(tok), body); a.status != 200 {
		t.Errorf("a body that fits: %d %s", a.status, a.raw)
	}
	if e.upstream.Requests() != before+1 {
		t.Errorf("the provider saw %d calls", e.upstream.Requests()-before)
	}
	e.finish(jobID)
	claim := rateLimitClaim(t, e.bundle)
	if claim["max_tokens_input"] != float64(len(body)+10) || claim["observed_tokens_input"] != float64(4) || claim["observed_requests"] != float64(2) {
		t.Errorf("claim %v", claim)
	}
}

// TestModelNameBounded: a model name over MaxModelNameBytes, allowed by
// the policy's wildcard, is refused before anything records it; one at
// the bound goes through and its job finishes.
func TestModelNameBounded(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(boundsPolicy), nil)
	oc := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/proxy/local/v1/"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	for _, n := range []int{20000, modelgw.MaxModelNameBytes + 1} {
		_, err := oc.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: strings.Repeat("m", n),
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
		var ae *openai.Error
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Code != modelgw.CodeModelNameTooLong {
			t.Errorf("%d-byte model: %v", n, err)
		}
	}
	if e.upstream.Requests() != 0 {
		t.Errorf("the provider was called")
	}
	// Neither the chain nor any receipt holds the long name.
	for _, pl := range e.events(jobID) {
		raw, _ := json.Marshal(pl)
		if len(raw) > 1024 || pl["_type"] == modelgw.EventLLMCall {
			t.Errorf("recorded: %.200s", raw)
		}
	}
	if _, err := oc.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: strings.Repeat("m", modelgw.MaxModelNameBytes),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
	e.finish(jobID)
}
