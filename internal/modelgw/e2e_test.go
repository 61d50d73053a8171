package modelgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/internal/client"
	"github.com/clawea/clawea/internal/jobs"
	"github.com/clawea/clawea/internal/keystore"
	"github.com/clawea/clawea/internal/localmodel"
	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/server"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/verify"
)

// testPolicy allows the local model, OpenAI's gpt-4o-mini and Claude
// models through the gateway, and nothing else.
const testPolicy = `{"policy_version":"2","policy_id":"modelgw-test","issuer_did":"did:web:test.example",
 "statements":[{"sid":"AllowModels","effect":"Allow","actions":["model:invoke"],
   "resources":["model://local/*","model://openai/gpt-4o-mini","model://anthropic/claude-*"],
   "conditions":{"Bool":{"Request:ViaGateway":"true"}}},
  {"sid":"DenyBig","effect":"Deny","actions":["model:invoke"],"resources":["model://openai/gpt-4o-mini"],
   "conditions":{"NumericGreaterThan":{"Request:Bytes":"60000"}}}]}`

type env struct {
	t        testing.TB
	dataDir  keystore.Dir
	node     *server.Node
	url      string
	admin    *client.Client
	upstream *localmodel.Server
	faults   *faults
	// bundle is the envelope of the last bundle finish checked.
	bundle json.RawMessage
}

// faults lets a test pick the upstream's behaviour per model name.
type faults struct {
	mu sync.Mutex
	m  map[string]localmodel.Fault
}

func (f *faults) set(model string, fl localmodel.Fault) {
	f.mu.Lock()
	f.m[model] = fl
	f.mu.Unlock()
}

func (f *faults) pick(r *http.Request, body []byte) localmodel.Fault {
	var req struct {
		Model string `json:"model"`
	}
	json.Unmarshal(body, &req)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[req.Model]
}

func start(t testing.TB, tweak func(*modelgw.Options)) *env {
	t.Helper()
	fl := &faults{m: map[string]localmodel.Fault{}}
	up := localmodel.New(localmodel.Options{Fault: fl.pick})
	base, err := up.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	gw := modelgw.Options{
		Providers: []modelgw.Provider{
			{Name: "local", BaseURL: base},
			{Name: "openai", BaseURL: base, APIKey: "sk-configured-in-the-gateway"},
			{Name: "anthropic", Kind: modelgw.KindAnthropic, BaseURL: base, APIKey: "sk-ant-configured"},
		},
		MaxRequestBytes: 64 << 10,
		HeaderTimeout:   2 * time.Second,
		UpstreamTimeout: 3 * time.Second,
	}
	if tweak != nil {
		tweak(&gw)
	}
	dataDir := keystore.Dir(t.TempDir())
	node, err := server.Open(context.Background(), server.Config{DataDir: dataDir, Listen: "127.0.0.1:0",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ModelGateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	url, err := node.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	admin, _, err := dataDir.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dataDir: dataDir, node: node, url: url, admin: client.New(url, admin), upstream: up, faults: fl}
}

func (e *env) publish(doc string) string {
	e.t.Helper()
	var out struct {
		Hash string `json:"policy_hash_b64u"`
	}
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/wpc", map[string]json.RawMessage{"wpc": json.RawMessage(doc)}, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Hash
}

// job opens a job for a custodial agent and returns its id and token.
func (e *env) job(policyHash string, budget *store.Budget) (string, string) {
	e.t.Helper()
	var agent struct {
		DID string `json:"did"`
	}
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/agents", map[string]string{"name": "t"}, &agent); err != nil {
		e.t.Fatal(err)
	}
	var st jobs.Started
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs", jobs.StartRequest{AgentDID: agent.DID, PolicyHash: policyHash, Budget: budget}, &st); err != nil {
		e.t.Fatal(err)
	}
	return st.Job.ID, st.Token
}

func (e *env) trust() verify.Options {
	return verify.Options{Strict: true, Config: verify.Config{GatewayReceiptSigners: []string{e.node.Models.DID()}}}
}

// checkReceipt verifies a receipt envelope on its own.
func (e *env) checkReceipt(raw []byte) *verify.Outcome {
	e.t.Helper()
	out := verify.Check(raw, verify.KindGatewayReceipt, e.trust())
	if out.Status != verify.StatusPass {
		e.t.Fatalf("receipt does not verify: %s %s\n%s", out.ReasonCode, out.Reason, raw)
	}
	return out
}

// finish finishes a job and checks its bundle in strict mode, with every
// receipt bound; it returns the verification result.
func (e *env) finish(jobID string) *verify.Result {
	e.t.Helper()
	var fin jobs.FinishResult
	if _, _, err := e.admin.Do(context.Background(), "POST", "/v1/jobs/"+jobID+"/finish", map[string]any{}, &fin); err != nil {
		e.t.Fatal(err)
	}
	b := fin.Bundles[0]
	e.bundle = b.Envelope
	opt := e.trust()
	opt.URM = b.URM
	out := verify.Check(b.Envelope, verify.KindProofBundle, opt)
	if out.Status != verify.StatusPass {
		e.t.Fatalf("bundle: %s %s", out.ReasonCode, out.Reason)
	}
	v := out.Verification
	if v.ReceiptsVerified != v.Receipts {
		e.t.Fatalf("%d of %d receipts signed and bound", v.ReceiptsVerified, v.Receipts)
	}
	return v
}

// tailCapture keeps what a streaming response carried after the client's
// SDK stopped reading (the receipt trailer comes after OpenAI's [DONE]).
type tailCapture struct {
	mu   sync.Mutex
	body bytes.Buffer
}

type teeBody struct {
	io.ReadCloser
	c *tailCapture
}

func (b teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.mu.Lock()
	b.c.body.Write(p[:n])
	b.c.mu.Unlock()
	return n, err
}

func (b teeBody) Close() error {
	rest, _ := io.ReadAll(b.ReadCloser)
	b.c.mu.Lock()
	b.c.body.Write(rest)
	b.c.mu.Unlock()
	return b.ReadCloser.Close()
}

func (c *tailCapture) trailerReceipt() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range strings.Split(c.body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, ":clawproxy_receipt_envelope_b64u="); ok {
			raw, err := b64u.Decode(v)
			if err == nil {
				return raw
			}
		}
	}
	return nil
}

func TestOpenAISDK(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	var tail tailCapture
	oc := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0),
		ooption.WithMiddleware(func(req *http.Request, next ooption.MiddlewareNext) (*http.Response, error) {
			resp, err := next(req)
			if err == nil {
				resp.Body = teeBody{resp.Body, &tail}
			}
			return resp, err
		}))
	ctx := context.Background()

	// Non-streaming: the answer carries its receipt.
	comp, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Summarise yesterday's failed payments please")}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(comp.Choices[0].Message.Content, "(local test model)") {
		t.Errorf("reply: %q", comp.Choices[0].Message.Content)
	}
	var withReceipt struct {
		Receipt json.RawMessage `json:"_receipt_envelope"`
	}
	json.Unmarshal([]byte(comp.RawJSON()), &withReceipt)
	e.checkReceipt(withReceipt.Receipt)
	var rc struct {
		Payload struct {
			Model   string `json:"model"`
			In      int64  `json:"tokens_input"`
			Out     int64  `json:"tokens_output"`
			Binding struct {
				RunID string `json:"run_id"`
			} `json:"binding"`
		} `json:"payload"`
	}
	json.Unmarshal(withReceipt.Receipt, &rc)
	if rc.Payload.In != comp.Usage.PromptTokens || rc.Payload.Out != comp.Usage.CompletionTokens || rc.Payload.In == 0 || rc.Payload.Binding.RunID != jobID {
		t.Errorf("receipt usage %d/%d, provider %d/%d, run %s", rc.Payload.In, rc.Payload.Out, comp.Usage.PromptTokens, comp.Usage.CompletionTokens, rc.Payload.Binding.RunID)
	}
	// The provider saw the gateway's key, never the job token.
	if got := e.upstream.Last().Header.Get("Authorization"); got != "Bearer sk-configured-in-the-gateway" {
		t.Errorf("upstream Authorization %q", got)
	}

	// Streaming: passes through, usage arrives, the trailer holds the receipt.
	stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Stream this please")}})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if !strings.HasPrefix(acc.Choices[0].Message.Content, "(local test model)") || acc.Usage.PromptTokens == 0 {
		t.Errorf("streamed: %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
	}
	streamed := tail.trailerReceipt()
	if streamed == nil {
		t.Fatalf("no receipt trailer in the stream:\n%s", tail.body.String())
	}
	e.checkReceipt(streamed)
	json.Unmarshal(streamed, &rc)
	if rc.Payload.In != acc.Usage.PromptTokens || rc.Payload.Out != acc.Usage.CompletionTokens {
		t.Errorf("streamed receipt usage %d/%d, provider %d/%d", rc.Payload.In, rc.Payload.Out, acc.Usage.PromptTokens, acc.Usage.CompletionTokens)
	}

	// The Responses API, and a provider chosen by path.
	local := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/proxy/local/v1/"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
	resp, err := local.Responses.New(ctx, responsesParams("What is in the queue?"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.OutputText(), "local test model") || resp.Usage.InputTokens == 0 {
		t.Errorf("responses: %q %+v", resp.OutputText(), resp.Usage)
	}
	v := e.finish(jobID)
	if v.Receipts != 3 {
		t.Errorf("bundle holds %d receipts, want 3", v.Receipts)
	}
}

func TestAnthropicSDK(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	ac := anthropic.NewClient(aoption.WithBaseURL(e.url+"/"), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0))
	ctx := context.Background()
	params := anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Draft a ticket for the payments team"))}}
	msg, err := ac.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text == "" || msg.Usage.InputTokens == 0 {
		t.Errorf("message: %+v", msg)
	}
	var withReceipt struct {
		Receipt json.RawMessage `json:"_receipt_envelope"`
	}
	json.Unmarshal([]byte(msg.RawJSON()), &withReceipt)
	e.checkReceipt(withReceipt.Receipt)
	if got := e.upstream.Last().Header.Get("X-Api-Key"); got != "sk-ant-configured" {
		t.Errorf("upstream x-api-key %q", got)
	}

	stream := ac.Messages.NewStreaming(ctx, params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Content[0].Text == "" || acc.Usage.OutputTokens == 0 || acc.Usage.InputTokens == 0 {
		t.Errorf("streamed message: %+v", acc)
	}
	v := e.finish(jobID)
	if v.Receipts != 2 {
		t.Errorf("bundle holds %d receipts, want 2", v.Receipts)
	}
}

func responsesParams(input string) responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "clawea-local-test-model", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(input)}}
}
