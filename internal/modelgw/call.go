package modelgw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/token"
)

// call is one model call in flight.
type call struct {
	g         *Gateway
	start     time.Time
	api       api
	anthropic bool // answer errors in Anthropic's shape
	prov      *Provider
	ver       *token.Verified
	pol       *compiled
	model     string
	stream    bool
	body      []byte // as forwarded
	reqHash   string
	nonce     string
	claimed   bool        // an idempotency record is ours to complete
	res       store.Usage // reserved against the job's budget
	forwarded bool        // the provider was called (the reservation is used)
	settled   bool        // the reservation was settled to the usage
	budget    budgetView
	// durationHit is set when max_stream_duration fires; cut
	// describes a stream a limit ended.
	durationHit atomic.Bool
	cut         *streamCut
	redacted    int
	receiptID   string
}

type budgetView struct {
	tokens bool // the job limits tokens
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, providerName string, a api) {
	c := &call{g: g, start: g.opt.Now(), api: a, anthropic: a == apiMessages}
	code, e := c.run(w, r, providerName)
	c.unreserve(r.Context())
	prov := "unknown"
	if c.prov != nil {
		prov = c.prov.Name
	}
	if e != nil {
		code = e.Code
		writeError(w, r, c.anthropic, e, nil)
		if c.ver != nil && e.Status != http.StatusUnauthorized {
			c.refused(r.Context(), e)
		}
	}
	g.mCalls.Inc(prov, code)
	g.mLatency.Observe(time.Since(c.start).Seconds(), prov, strconv.FormatBool(c.stream))
}

// run handles a call. It returns an error to answer when nothing was sent
// yet, or the outcome code of a call it answered itself.
func (c *call) run(w http.ResponseWriter, r *http.Request, providerName string) (string, *Error) {
	g := c.g
	ctx := r.Context()

	// The job's token, bound to the job named by X-Run-Id if any.
	tok, e := tokenFrom(r)
	if e != nil {
		return "", e
	}
	ver, err := g.opt.Tokens.Verify(ctx, tok, token.Request{JobID: runJob(r.Header.Get("X-Run-Id")), ClientDID: r.Header.Get("X-Client-DID")})
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) {
			return "", httpapi.FromToken(te)
		}
		return "", errf(http.StatusServiceUnavailable, token.CodeStateUnavailable, "token verification is unavailable").Wrap(err)
	}
	c.ver = ver

	// The provider and the API it speaks.
	if providerName == "" {
		providerName = r.Header.Get("X-Clawea-Provider")
	}
	if providerName == "" {
		providerName = g.opt.DefaultOpenAI
		if c.api == apiMessages {
			providerName = g.opt.DefaultAnthropic
		}
	}
	p := g.providers[providerName]
	if p == nil {
		return "", errf(http.StatusBadRequest, CodeUnknownProvider, "no provider %q is configured here (configured: %s)", providerName, strings.Join(g.Providers(), ", "))
	}
	c.prov = p
	if c.api == apiAuto {
		switch {
		case p.Kind == KindAnthropic:
			c.api = apiMessages
		case strings.EqualFold(r.Header.Get("X-OpenAI-API"), "responses"):
			c.api = apiResponses
		}
	}
	c.anthropic = c.api == apiMessages || (c.api == apiAuto && p.Kind == KindAnthropic)
	if !scopeAllows(ver.Claims.Scope, p.Name) {
		return "", errf(http.StatusForbidden, token.CodeInsufficientScope, "the token's scopes do not allow model calls to %s", p.Name)
	}

	// The pinned policy: the token's pin is authoritative.
	pin := ver.Claims.PolicyHash
	if h := strings.TrimSpace(r.Header.Get("X-Policy-Hash")); h != "" {
		if pin != "" && h != pin {
			return "", errf(http.StatusForbidden, CodePolicyHashMismatch, "X-Policy-Hash differs from the policy the job's token is pinned to")
		}
		if pin == "" {
			pin = h
		}
	}
	if pin == "" {
		return "", errf(http.StatusForbidden, CodePolicyRequired, "the token pins no policy; clawea gateways serve only jobs pinned to a policy")
	}
	if c.pol, e = g.pols.get(ctx, pin); e != nil {
		return "", e
	}
	privacy := strings.TrimSpace(r.Header.Get("X-Receipt-Privacy-Mode"))
	if privacy == "" && c.pol.doc.V1 != nil {
		privacy = c.pol.doc.V1.ReceiptPrivacyMode
	}
	if privacy != "" && privacy != "hash_only" {
		return "", errf(http.StatusBadRequest, CodePrivacyUnsupported, "receipt privacy mode %q is not supported; receipts hold hashes only", privacy)
	}

	// The upstream credential: the gateway's own, or the caller's when
	// bring-your-own-key is on.
	upstreamKey := ""
	if byok := strings.TrimSpace(r.Header.Get("X-Provider-API-Key")); byok != "" {
		if !g.opt.AllowBYOK {
			return "", errf(http.StatusBadRequest, CodeBYOKDisabled, "X-Provider-API-Key is refused: this gateway holds the provider keys (bring-your-own-key is off)")
		}
		upstreamKey = byok
	} else if upstreamKey, err = g.keys.get(ctx, p.APIKey); err != nil {
		g.opt.Log.ErrorContext(ctx, "provider key unavailable", "provider", p.Name, "err", err)
		return "", errf(http.StatusServiceUnavailable, CodeProviderKeyMissing, "the key for provider %s is unavailable", p.Name)
	}

	// The body: bounded, a JSON object.
	if r.ContentLength > g.opt.MaxRequestBytes {
		return "", errf(http.StatusRequestEntityTooLarge, CodeRequestTooLarge, "the request body exceeds %d bytes", g.opt.MaxRequestBytes)
	}
	raw, err := readBody(r.Body, r.ContentLength, g.opt.MaxRequestBytes)
	if err != nil {
		return "", errf(http.StatusBadRequest, CodeInvalidRequest, "cannot read the request body").Wrap(err)
	}
	if int64(len(raw)) > g.opt.MaxRequestBytes {
		return "", errf(http.StatusRequestEntityTooLarge, CodeRequestTooLarge, "the request body exceeds %d bytes", g.opt.MaxRequestBytes)
	}
	body, err := canon.Parse(raw)
	if err != nil || !body.IsObject() {
		return "", errf(http.StatusBadRequest, CodeInvalidRequest, "the request body must be a JSON object")
	}
	if c.api == apiAuto {
		c.api = apiChat
		if body.Has("input") && !body.Has("messages") {
			c.api = apiResponses
		}
	}
	if (c.api == apiMessages) != (p.Kind == KindAnthropic) {
		return "", errf(http.StatusBadRequest, CodeProviderAPIMismatch, "provider %s (%s) does not serve the %s API", p.Name, p.Kind, c.api)
	}
	model, _ := body.StringOf("model")
	if len(model) > MaxModelNameBytes {
		// Refused before anything records it: the name goes into the
		// chain and the signed receipt, whose metadata is bounded.
		return "", errf(http.StatusBadRequest, CodeModelNameTooLong, "the model name is %d bytes; at most %d are accepted", len(model), MaxModelNameBytes)
	}
	c.model = model
	if s := body.Get("stream"); s != nil && s.Kind == canon.Bool && s.Boolean {
		c.stream = true
	}

	// The policy decides.
	if e := c.pol.enforce(p, c.model, c.stream, len(raw), ver.Claims.Sub, ver.JobID, g.opt.Now()); e != nil {
		return "", e
	}

	// Budgets: read here, reserved once the body is known.
	b, e := g.budget(ctx, ver.JobID)
	if e != nil {
		return "", e
	}
	c.budget.tokens = b.MaxTokensInput > 0 || b.MaxTokensOutput > 0

	// The body as forwarded: policy redactions, the job's secrets, usage
	// in streams, the output budget. Untouched bodies go out byte for byte.
	changed := false
	if n := c.pol.redact(&body); n > 0 {
		c.redacted += n
		changed = true
	}
	if c.stream && c.api == apiChat && p.streamUsage() {
		so := body.Get("stream_options")
		if so == nil || !so.IsObject() {
			body.Set("stream_options", canon.Value{Kind: canon.Object, Members: []canon.Member{{Key: "include_usage", Value: canon.NewBool(true)}}})
			changed = true
		} else if iu := so.Get("include_usage"); iu == nil || iu.Kind != canon.Bool || !iu.Boolean {
			so.Set("include_usage", canon.NewBool(true))
			changed = true
		}
	}
	// The reservation: one request, the body's size as input tokens, the
	// output the request may produce (capped in the body to what could
	// be reserved). Anything that stops the call before the provider is
	// called gives it back (serve); record settles it to the usage.
	if b.MaxRequests > 0 || c.budget.tokens {
		want := int64(0)
		if b.MaxTokensOutput > 0 {
			want = outputWanted(&body, c.api)
		}
		if e := c.reserve(ctx, w, b, int64(len(raw)), want); e != nil {
			return "", e
		}
		if b.MaxTokensOutput > 0 && clampOutput(&body, c.api, p, c.res.TokensOut) {
			changed = true
		}
	}
	c.body = raw
	if changed {
		c.body = canon.AppendCompact(nil, &body)
	}
	if g.opt.RedactRequest != nil {
		out, n, err := g.opt.RedactRequest(ver.JobID, c.body)
		if err != nil {
			return "", errf(http.StatusBadRequest, CodeRequestNotScannable, "the request body cannot be scanned for the job's secrets, so it is not forwarded").Wrap(err)
		}
		if n > 0 {
			c.body, c.redacted = out, c.redacted+n
		}
	}
	c.reqHash = b64u.SHA256(c.body)

	// Idempotency: a replay returns the stored answer.
	if key := r.Header.Get("X-Idempotency-Key"); key != "" {
		done, e := c.claim(ctx, w, r, key)
		if e != nil || done {
			if e == nil {
				return "REPLAYED", nil
			}
			return "", e
		}
	}

	return c.forward(w, r, upstreamKey), nil
}

// upstreamHeaders are passed from the caller to the provider.
var upstreamHeaders = []string{"Accept", "Anthropic-Version", "Anthropic-Beta", "Openai-Beta"}

// downstreamHeaders are passed from the provider to the caller.
var downstreamHeaders = []string{"Content-Type", "X-Request-Id", "Request-Id", "Openai-Processing-Ms", "Openai-Version", "Anthropic-Organization-Id",
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens"}

// forward calls the provider and answers the caller; it returns the
// outcome code.
func (c *call) forward(w http.ResponseWriter, r *http.Request, key string) string {
	g, p := c.g, c.prov
	c.forwarded = true
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The whole call is bounded: a non-streaming one by upstream_timeout,
	// a stream by max_stream_duration (relayStream reads streamCut).
	var deadline *time.Timer
	if !c.stream {
		deadline = time.AfterFunc(g.opt.UpstreamTimeout, cancel)
	} else {
		deadline = time.AfterFunc(g.opt.MaxStreamDuration, func() {
			c.durationHit.Store(true)
			cancel()
		})
	}
	defer deadline.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint(c.api), bytes.NewReader(c.body))
	if err != nil {
		return c.fail(w, r, errf(http.StatusInternalServerError, CodeUpstreamUnreachable, "the provider is unreachable").Wrap(err), outcome{})
	}
	req.ContentLength = int64(len(c.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clawea-model-gateway")
	for _, h := range upstreamHeaders {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	switch p.Kind {
	case KindAnthropic:
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		if req.Header.Get("Anthropic-Version") == "" {
			req.Header.Set("Anthropic-Version", "2023-06-01")
		}
	case KindAzure:
		if key != "" {
			req.Header.Set("Api-Key", key)
		}
	default:
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return c.fail(w, r, c.transportError(r, err, deadline), outcome{})
	}
	defer resp.Body.Close()
	if c.stream && resp.StatusCode/100 == 2 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return c.relayStream(w, r, resp, cancel)
	}
	return c.relayWhole(w, r, resp, deadline)
}

// transportError classifies a failure to get or read an answer.
func (c *call) transportError(r *http.Request, err error, deadline *time.Timer) *Error {
	var ne net.Error
	switch {
	case r.Context().Err() != nil:
		return errf(499, CodeClientDisconnected, "the client went away before the provider answered")
	case deadline != nil && !deadline.Stop(), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errf(http.StatusGatewayTimeout, CodeUpstreamTimeout, "provider %s did not answer in time", c.prov.Name)
	}
	return errf(http.StatusBadGateway, CodeUpstreamUnreachable, "provider %s is unreachable", c.prov.Name).Wrap(err)
}

// outcome is what a finished call reports into its receipt.
type outcome struct {
	status   int    // the provider's HTTP status (0: none)
	code     string // clawea's outcome code ("" for a plain success)
	respHash string
	usage    usage
}

// fail answers a call that reached (or tried to reach) the provider with
// an error, recording a receipt for the attempt.
func (c *call) fail(w http.ResponseWriter, r *http.Request, e *Error, o outcome) string {
	o.code = e.Code
	if o.respHash == "" {
		o.respHash = b64u.SHA256(nil)
	}
	env, re := c.record(r.Context(), o)
	if re != nil {
		e = re
	}
	if e.Code == CodeClientDisconnected {
		c.complete(r.Context(), 499, "", nil, env)
		return e.Code
	}
	var buf bytes.Buffer
	rec := &captureWriter{ResponseWriter: w, buf: &buf, limit: c.g.opt.MaxStoredResponse}
	writeError(rec, r, c.anthropic, e, env)
	c.complete(r.Context(), e.Status, "application/json", rec.kept(), env)
	return e.Code
}

// relayWhole answers a non-streaming call: the provider's JSON with the
// signed receipt added as _receipt_envelope.
func (c *call) relayWhole(w http.ResponseWriter, r *http.Request, resp *http.Response, deadline *time.Timer) string {
	g := c.g
	raw, err := readBody(resp.Body, resp.ContentLength, g.opt.MaxResponseBytes)
	o := outcome{status: resp.StatusCode, respHash: b64u.SHA256(raw)}
	if err != nil {
		return c.fail(w, r, c.transportError(r, err, deadline), o)
	}
	if int64(len(raw)) > g.opt.MaxResponseBytes {
		return c.fail(w, r, errf(http.StatusBadGateway, CodeUpstreamTooLarge, "provider %s answered more than %d bytes", c.prov.Name, g.opt.MaxResponseBytes), o)
	}
	// Only the members that may carry usage are parsed.
	parts, isObject := canon.Members(raw, "usage", "response", "message")
	if isObject {
		o.usage.readMembers(parts)
	}
	switch {
	case resp.StatusCode >= 500 && !isObject:
		return c.fail(w, r, errf(http.StatusBadGateway, CodeUpstreamError, "provider %s answered %d", c.prov.Name, resp.StatusCode), o)
	case !isObject:
		return c.fail(w, r, errf(http.StatusBadGateway, CodeUpstreamMalformed, "provider %s answered %d with a body that is not a JSON object", c.prov.Name, resp.StatusCode), o)
	case resp.StatusCode >= 500:
		o.code = CodeUpstreamError
	case resp.StatusCode >= 400:
		o.code = "UPSTREAM_REJECTED"
	}
	env, e := c.record(r.Context(), o)
	if e != nil {
		// Fail closed: an answer without its stored receipt is withheld.
		writeError(w, r, c.anthropic, e, nil)
		c.complete(r.Context(), e.Status, "application/json", nil, nil)
		return e.Code
	}
	out := withReceipt(raw, env)
	h := w.Header()
	for _, k := range downstreamHeaders {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	h.Set("X-Clawea-Receipt-Id", c.receiptID)
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
	kept := out
	if len(kept) > g.opt.MaxStoredResponse {
		kept = nil
	}
	c.complete(r.Context(), resp.StatusCode, "application/json", kept, env)
	if o.code == "" {
		return "OK"
	}
	return o.code
}

// readBody reads a body of at most limit bytes, plus one byte more if
// there is more (the caller tells the difference). A declared length sizes
// the buffer up to 64 KiB, so that a whole small body is read without
// growing it and a false one costs no more than that.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	size := int64(512)
	if length >= 0 {
		size = min(length, limit, 64<<10) + 1 // +1: room to see the end
	}
	b := make([]byte, 0, size)
	lr := io.LimitedReader{R: r, N: limit + 1}
	for {
		if lr.N == 0 {
			return b, nil // limit+1 bytes: too long, however long
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// withReceipt adds "_receipt_envelope": env as the last member of a JSON
// object, leaving the provider's bytes as they were.
func withReceipt(obj, env []byte) []byte {
	t := bytes.TrimRight(obj, " \t\r\n")
	inner := bytes.TrimSpace(t[1 : len(t)-1])
	out := make([]byte, 0, len(t)+len(env)+24)
	out = append(out, t[:len(t)-1]...)
	if len(inner) > 0 {
		out = append(out, ',')
	}
	out = append(out, `"_receipt_envelope":`...)
	out = append(out, env...)
	return append(out, '}')
}

// relayStream passes a server-sent event stream through as it arrives,
// hashing it and reading usage, then records the receipt and ends the
// stream with the reference's trailer comment.
func (c *call) relayStream(w http.ResponseWriter, r *http.Request, resp *http.Response, cancel context.CancelFunc) string {
	g := c.g
	h := w.Header()
	for _, k := range downstreamHeaders {
		if v := resp.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	w.WriteHeader(resp.StatusCode)
	rc.Flush()
	sum := sha256.New()
	var sc sseScanner
	var kept bytes.Buffer
	keep := true
	idle := time.AfterFunc(g.opt.StreamIdleTimeout, cancel)
	defer idle.Stop()
	buf := make([]byte, 32<<10)
	var readErr, writeErr error
	var tail sseTail   // where the relayed bytes end
	overBytes := false // the stream reached max_stream_bytes
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			idle.Reset(g.opt.StreamIdleTimeout)
			chunk := buf[:n]
			if left := g.opt.MaxStreamBytes - tail.total; int64(n) > left {
				// Only whole events within the limit are relayed.
				chunk = chunk[:max(tail.eventEnd(chunk[:left]), 0)]
				overBytes = true
			}
			if len(chunk) > 0 {
				sum.Write(chunk)
				sc.feed(chunk)
				tail.add(chunk)
				if keep {
					if kept.Len()+len(chunk) > g.opt.MaxStoredResponse {
						keep = false
						kept = bytes.Buffer{}
					} else {
						kept.Write(chunk)
					}
				}
				if writeErr == nil {
					if _, writeErr = w.Write(chunk); writeErr == nil {
						writeErr = rc.Flush()
					}
					if writeErr != nil {
						cancel() // nobody is listening: stop the provider too
					}
				}
			}
			if overBytes {
				cancel()
				break
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	o := outcome{status: resp.StatusCode, respHash: hashOf(sum), usage: sc.u}
	switch {
	case writeErr != nil || r.Context().Err() != nil:
		o.code = CodeClientDisconnected
	case overBytes:
		o.code, c.cut = CodeStreamLimit, &streamCut{limit: "max_stream_bytes", max: g.opt.MaxStreamBytes, bytes: tail.total}
	case readErr != nil && c.durationHit.Load():
		o.code, c.cut = CodeStreamLimit, &streamCut{limit: "max_stream_duration", max: g.opt.MaxStreamDuration.Milliseconds(), bytes: tail.total}
	case readErr != nil && !idle.Stop():
		o.code = CodeUpstreamTimeout
	case readErr != nil:
		o.code = CodeUpstreamAborted
	}
	env, e := c.record(context.WithoutCancel(r.Context()), o)
	var trailer []byte
	if !tail.lineEnded() {
		trailer = append(trailer, '\n')
	}
	if c.cut != nil {
		// The client learns why the stream stops, as an error event its
		// SDK reads (after ending an event the provider left open).
		if !tail.boundary() {
			trailer = append(trailer, '\n')
		}
		trailer = c.cut.appendEvent(trailer)
	}
	if e != nil {
		trailer = append(trailer, ":clawea_error="+e.Code+"\n\n"...)
		o.code = e.Code
	} else {
		trailer = append(trailer, ":clawproxy_receipt_envelope_b64u="...)
		trailer = append(trailer, b64u.Encode(env)...)
		trailer = append(trailer, "\n\n"...)
	}
	if writeErr == nil && r.Context().Err() == nil {
		if _, err := w.Write(trailer); err == nil {
			rc.Flush()
		}
	}
	if keep {
		kept.Write(trailer)
	}
	var stored []byte
	if keep {
		stored = kept.Bytes()
	}
	c.complete(context.WithoutCancel(r.Context()), resp.StatusCode, resp.Header.Get("Content-Type"), stored, env)
	if o.code == "" {
		return "OK"
	}
	return o.code
}

func hashOf(h hash.Hash) string {
	var d [32]byte
	return b64u.Encode(h.Sum(d[:0]))
}

// captureWriter keeps a copy of what is written, up to a limit.
type captureWriter struct {
	http.ResponseWriter
	buf   *bytes.Buffer
	limit int
	over  bool
}

func (cw *captureWriter) Write(p []byte) (int, error) {
	if !cw.over {
		if cw.buf.Len()+len(p) > cw.limit {
			cw.over = true
		} else {
			cw.buf.Write(p)
		}
	}
	return cw.ResponseWriter.Write(p)
}

func (cw *captureWriter) kept() []byte {
	if cw.over {
		return nil
	}
	return cw.buf.Bytes()
}
