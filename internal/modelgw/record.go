package modelgw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/receipt"
)

// EventLLMCall is the event type of a model call in a job's chain;
// EventLLMRefused records a call the gateway refused.
const (
	EventLLMCall    = "llm_call"
	EventLLMRefused = "llm_call_refused"
)

// llmEvent is the payload of an llm_call event. Its hash is in the event;
// the receipt's binding names the event.
type llmEvent struct {
	ReceiptID      string `json:"receipt_id"`
	Provider       string `json:"provider"`
	Model          string `json:"model"`
	API            string `json:"api"`
	Stream         bool   `json:"stream"`
	RequestHash    string `json:"request_hash_b64u"`
	ResponseHash   string `json:"response_hash_b64u"`
	UpstreamStatus int    `json:"upstream_status"`
	Outcome        string `json:"outcome"`
	TokensInput    int64  `json:"tokens_input"`
	TokensOutput   int64  `json:"tokens_output"`
	Nonce          string `json:"nonce,omitempty"`
	Redactions     int    `json:"redactions,omitempty"`
	// A stream cut at a gateway limit: which (max_stream_duration,
	// max_stream_bytes), its value (ms or bytes), and the provider's
	// bytes relayed before the cut.
	StreamLimit    string `json:"stream_limit,omitempty"`
	StreamLimitMax int64  `json:"stream_limit_max,omitempty"`
	StreamBytes    int64  `json:"stream_bytes,omitempty"`
}

// AppendCompact writes the event payload as canon.Marshal does
// (TestLLMEventEncoding).
func (e *llmEvent) AppendCompact(b []byte) []byte {
	str := func(b []byte, k, v string) []byte {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return canon.AppendString(b, v)
	}
	num := func(b []byte, k string, v int64) []byte {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return canon.AppendNumber(b, float64(v))
	}
	b = append(b, `{"receipt_id":`...)
	b = canon.AppendString(b, e.ReceiptID)
	b = str(b, "provider", e.Provider)
	b = str(b, "model", e.Model)
	b = str(b, "api", e.API)
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, e.Stream)
	b = str(b, "request_hash_b64u", e.RequestHash)
	b = str(b, "response_hash_b64u", e.ResponseHash)
	b = num(b, "upstream_status", int64(e.UpstreamStatus))
	b = str(b, "outcome", e.Outcome)
	b = num(b, "tokens_input", e.TokensInput)
	b = num(b, "tokens_output", e.TokensOutput)
	if e.Nonce != "" {
		b = str(b, "nonce", e.Nonce)
	}
	if e.Redactions != 0 {
		b = num(b, "redactions", int64(e.Redactions))
	}
	if e.StreamLimit != "" {
		b = str(b, "stream_limit", e.StreamLimit)
	}
	if e.StreamLimitMax != 0 {
		b = num(b, "stream_limit_max", e.StreamLimitMax)
	}
	if e.StreamBytes != 0 {
		b = num(b, "stream_bytes", e.StreamBytes)
	}
	return append(b, '}')
}

// maxIdentityHashes bounds the cache of model identity hashes: model names
// come from requests, so past this many the hash is computed every time.
const maxIdentityHashes = 1024

// identityHash returns mi.Hash(), the same for every call to one provider's
// model, from a cache: computing it (JCS of the identity, then SHA-256)
// took about 14 µs of each call's critical path in a CPU profile of
// bench/modelgw.
func (g *Gateway) identityHash(mi receipt.ModelIdentity) string {
	if h, ok := g.idHashes.Load(mi); ok {
		return h.(string)
	}
	h := mi.Hash()
	if h != "" && g.idHashCount.Add(1) <= maxIdentityHashes {
		g.idHashes.Store(mi, h)
	}
	return h
}

func newReceiptID() string {
	var b [16]byte
	rand.Read(b[:])
	return "rcpt_" + hex.EncodeToString(b[:])
}

// record appends the call's llm_call event and, in the same transaction,
// its signed gateway receipt. It returns the receipt envelope (compact
// JSON) or the error to fail closed with.
func (c *call) record(ctx context.Context, o outcome) ([]byte, *Error) {
	g := c.g
	if c.receiptID == "" {
		c.receiptID = newReceiptID()
	}
	model := c.model
	if model == "" {
		model = "unknown"
	}
	outcomeCode := o.code
	if outcomeCode == "" {
		outcomeCode = "OK"
	}
	ev := llmEvent{ReceiptID: c.receiptID, Provider: c.prov.Name, Model: model, API: c.api.String(), Stream: c.stream,
		RequestHash: c.reqHash, ResponseHash: o.respHash, UpstreamStatus: o.status, Outcome: outcomeCode,
		TokensInput: o.usage.in, TokensOutput: o.usage.out, Nonce: c.nonce, Redactions: c.redacted}
	if c.cut != nil {
		ev.StreamLimit, ev.StreamLimitMax, ev.StreamBytes = c.cut.limit, c.cut.max, c.cut.bytes
	}
	latency := g.opt.Now().Sub(c.start).Milliseconds()
	var env []byte
	var signErr error
	// The provider was called: its usage replaces the reservation,
	// whether or not the receipt can be stored.
	defer c.settle(ctx, o)
	recCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := g.opt.Chain.Record(recCtx, c.ver.JobID, EventLLMCall, &ev, func(a *evidence.Appended) ([]evidence.Item, string, error) {
		span := "llm_" + a.Event.EventID
		mi := receipt.NewModelIdentity(c.prov.Name, model)
		rc := receipt.Gateway{ReceiptID: c.receiptID, GatewayID: g.did, Provider: c.prov.Name, Model: model,
			RequestHash: c.reqHash, ResponseHash: o.respHash, TokensInput: o.usage.in, TokensOutput: o.usage.out,
			LatencyMS: max(latency, 0), Timestamp: envelope.FormatTime(g.opt.Now()),
			Binding: &receipt.Binding{RunID: a.Event.RunID, EventHash: a.Event.EventHash, Nonce: c.nonce, PolicyHash: c.pol.doc.Hash(),
				TokenScopeHash: c.ver.ScopeHash, SpanID: span, ParentSpanID: a.Anchor},
			Metadata: &receipt.GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: g.identityHash(mi), Status: outcomeCode,
				ErrorCode: o.code, Streamed: c.stream, Redactions: c.redacted, Privacy: "hash_only", JobLabels: c.ver.Labels()}}
		var err error
		if env, err = rc.SignJSON(g.opt.Key); err != nil {
			signErr = err
			return nil, "", err
		}
		return []evidence.Item{{Kind: evidence.KindGatewayReceipt, ItemID: c.receiptID, JSON: env}}, span, nil
	})
	if err != nil {
		g.opt.Log.ErrorContext(ctx, "model call receipt not recorded", "job_id", c.ver.JobID, "receipt_id", c.receiptID, "err", err)
		if signErr != nil {
			return nil, errf(http.StatusInternalServerError, CodeSigningFailed, "the receipt could not be signed")
		}
		if errors.Is(err, evidence.ErrJobNotOpen) {
			return nil, errf(http.StatusConflict, CodeJobClosed, "the job closed during the call; its answer is withheld")
		}
		return nil, errf(http.StatusServiceUnavailable, CodeStoreFailed, "the receipt could not be stored; the answer is withheld")
	}
	g.mReceipts.Inc(c.prov.Name)
	return env, nil
}

// refused records a call the gateway turned down before the provider saw
// it, when the job is known.
func (c *call) refused(ctx context.Context, e *Error) {
	pl := map[string]any{"code": e.Code}
	if c.prov != nil {
		pl["provider"] = c.prov.Name
	}
	if c.model != "" {
		pl["model"] = c.model
	}
	if len(e.Statements) > 0 {
		pl["statements"] = e.Statements
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.g.opt.Chain.AppendEvent(rctx, c.ver.JobID, EventLLMRefused, pl); err != nil {
		c.g.opt.Log.DebugContext(ctx, "refusal not recorded", "job_id", c.ver.JobID, "code", e.Code, "err", err)
	}
}

// fingerprint follows the reference: b64u SHA-256 of the JSON.stringify
// of the call's provider, URL, model, forwarded body and binding inputs.
func (c *call) fingerprint(r *http.Request) string {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	type binding struct {
		RunID          *string `json:"run_id"`
		EventHash      *string `json:"event_hash_b64u"`
		PolicyHash     *string `json:"policy_hash"`
		TokenScopeHash *string `json:"token_scope_hash_b64u"`
	}
	type payment struct {
		Mode *string `json:"mode"`
	}
	v := struct {
		Provider    string  `json:"provider"`
		ProviderURL string  `json:"provider_url"`
		Model       *string `json:"model"`
		RequestBody string  `json:"request_body"`
		Binding     binding `json:"binding"`
		Payment     payment `json:"payment"`
	}{c.prov.Name, c.prov.endpoint(c.api), opt(c.model), string(c.body),
		binding{opt(r.Header.Get("X-Run-Id")), opt(r.Header.Get("X-Event-Hash")), opt(c.pol.doc.Hash()), opt(c.ver.ScopeHash)}, payment{}}
	raw, _ := canon.Marshal(v)
	return b64u.SHA256(raw)
}

// claim takes the idempotency key for this call, or answers a replay. done
// is true when the answer was written. Keys are the job's own: another
// job's use of the same key is invisible here.
func (c *call) claim(ctx context.Context, w http.ResponseWriter, r *http.Request, key string) (bool, *Error) {
	if len(key) > 256 || strings.TrimSpace(key) != key || strings.ContainsAny(key, "\r\n") {
		return false, errf(http.StatusBadRequest, CodeIdemInvalid, "X-Idempotency-Key must be 1 to 256 characters without surrounding spaces")
	}
	fp := c.fingerprint(r)
	got, claimed, err := c.g.opt.Store.ClaimCall(ctx, store.GatewayCall{Nonce: key, JobID: c.ver.JobID, Fingerprint: fp, CreatedAt: c.g.opt.Now()})
	if err != nil {
		return false, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the idempotency record is unavailable").Wrap(err)
	}
	if claimed {
		c.nonce, c.claimed = key, true
		return false, nil
	}
	switch {
	case got.Fingerprint != fp:
		return false, errf(http.StatusConflict, CodeIdemMismatch, "X-Idempotency-Key was used for a different request")
	case got.Status != store.CallDone:
		return false, errf(http.StatusConflict, CodeIdemInUse, "a call with this X-Idempotency-Key is still in flight")
	case len(got.Body) == 0:
		e := errf(http.StatusConflict, CodeIdemUnavailable, "the call with this X-Idempotency-Key completed, but its answer was not kept (too large, or it held a secret of the job); the receipt is attached")
		writeError(w, r, c.anthropic, e, got.Receipt)
		return true, nil
	}
	w.Header().Set("Content-Type", got.ContentType)
	w.Header().Set("X-Clawea-Idempotent-Replay", "true")
	w.WriteHeader(got.HTTPStatus)
	w.Write(got.Body)
	return true, nil
}

// complete stores what a claimed call answered.
func (c *call) complete(ctx context.Context, status int, ctype string, body, env []byte) {
	if !c.claimed {
		return
	}
	if c.g.opt.Evidence != nil && len(body) > 0 && c.g.opt.Evidence(c.ver.JobID, body) != nil {
		// Nothing clawea stores may hold a job secret: the answer is not
		// kept, the receipt (hashes only) is.
		body = nil
	}
	err := c.g.opt.Store.CompleteCall(context.WithoutCancel(ctx), store.GatewayCall{Nonce: c.nonce, JobID: c.ver.JobID, HTTPStatus: status, ContentType: ctype,
		Body: body, Receipt: env, UpdatedAt: c.g.opt.Now()})
	if err != nil {
		c.g.opt.Log.ErrorContext(ctx, "idempotency record not completed", "nonce", c.nonce, "err", err)
	}
}

// recoverReceipt serves GET /v1/receipt/{nonce}: the receipt of a call made
// with that idempotency key, to the job's token, or to the admin token
// for the job named by ?job_id= (keys are scoped to their job).
func (g *Gateway) recoverReceipt(w http.ResponseWriter, r *http.Request) {
	nonce := r.PathValue("nonce")
	// The one credential layer: the admin token, or a job token.
	p, e := (&httpapi.Auth{AdminToken: g.opt.AdminToken, Tokens: g.opt.Tokens}).Authenticate(r, "")
	if e != nil {
		writeError(w, r, false, e, nil)
		return
	}
	admin := p.Kind == httpapi.KindAdmin
	jobID := ""
	if !admin {
		jobID = p.Job.JobID
	} else if jobID = r.URL.Query().Get("job_id"); jobID == "" {
		writeError(w, r, false, errf(http.StatusBadRequest, CodeInvalidRequest, "idempotency keys belong to a job: name it with ?job_id="), nil)
		return
	}
	got, err := g.opt.Store.GetCall(r.Context(), jobID, nonce)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && got.JobID != jobID:
		writeError(w, r, false, errf(http.StatusNotFound, CodeReceiptNotFound, "no receipt for this nonce in this job"), nil)
		return
	case err != nil:
		writeError(w, r, false, errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the store is unavailable").Wrap(err), nil)
		return
	case got.Status != store.CallDone || len(got.Receipt) == 0:
		writeError(w, r, false, errf(http.StatusConflict, CodeReceiptPending, "the call with this nonce has not finished"), nil)
		return
	}
	out, _ := json.Marshal(map[string]any{"nonce": got.Nonce, "job_id": got.JobID, "status": got.Status, "http_status": got.HTTPStatus,
		"_receipt_envelope": json.RawMessage(got.Receipt)})
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(out, '\n'))
}
