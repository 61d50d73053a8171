package modelgw

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/store"
)

// A job's budget is held by reservations: before the provider is called,
// a call reserves one request, its body's size in bytes as input tokens
// (a byte-level tokenizer makes at most one token of each byte of text),
// and the output it may produce: the request's own cap when it names one,
// else all that is left, and the body is capped to what was reserved.
// The reservation is one atomic addition to the job's usage counters,
// refused when it does not fit (REQUEST_BUDGET_EXCEEDED,
// TOKEN_BUDGET_EXCEEDED), so calls in flight together never promise more
// than the budget. A call that stops before the provider is called gives
// its reservation back; a call that reached the provider settles it to
// the usage the provider reported (record).

// maxReserveTries bounds the retries of a reservation whose counters moved
// between reading and adding (each retry means another call reserved).
const maxReserveTries = 16

// outputFields are the request members that cap a call's output, per
// API, and the one added when none is there.
func outputFields(a api, p *Provider) (fields []string, add string) {
	switch {
	case a == apiResponses:
		return []string{"max_output_tokens"}, "max_output_tokens"
	case a == apiMessages:
		return []string{"max_tokens"}, "max_tokens"
	case p != nil && p.Name != "openai" && p.Kind != KindAzure:
		return []string{"max_completion_tokens", "max_tokens"}, "max_tokens" // what OpenAI-compatible servers know
	}
	return []string{"max_completion_tokens", "max_tokens"}, "max_completion_tokens"
}

// tokenCount reads a positive whole number of tokens; anything else a
// provider might read as "no cap" (0, -1, null, a string) is not one.
func tokenCount(v *canon.Value) (int64, bool) {
	if !v.IsNumber() || v.Num < 1 || v.Num > 1e15 || v.Num != math.Trunc(v.Num) {
		return 0, false
	}
	return int64(v.Num), true
}

// outputWanted is the output a request asks for at most: the largest cap
// it names (a provider may read either member), or 0 when it names none
// or one that is not a positive whole number (then all that is left is
// reserved and the cap is written).
func outputWanted(body *canon.Value, a api) int64 {
	fields, _ := outputFields(a, nil)
	want := int64(0)
	for _, f := range fields {
		m := body.Get(f)
		if m == nil {
			continue
		}
		n, ok := tokenCount(m)
		if !ok {
			return 0
		}
		want = max(want, n)
	}
	return want
}

// clampOutput caps the request's output at limit in every member the API
// reads, replacing any that is not a positive whole number at most limit,
// and adds the cap when the request names none.
func clampOutput(body *canon.Value, a api, p *Provider, limit int64) bool {
	fields, add := outputFields(a, p)
	changed, named := false, false
	for _, f := range fields {
		m := body.Get(f)
		if m == nil {
			continue
		}
		named = true
		if n, ok := tokenCount(m); ok && n <= limit {
			continue
		}
		body.Set(f, canon.NewNumber(float64(limit)))
		changed = true
	}
	if !named {
		body.Set(add, canon.NewNumber(float64(limit)))
		changed = true
	}
	return changed
}

// reserve takes the call's share of the job's budget: one request, size
// input tokens, and want output tokens (0: all that is left), lowered to
// what is left. It sets c.res or returns the refusal.
func (c *call) reserve(ctx context.Context, w http.ResponseWriter, b store.Budget, size, want int64) *Error {
	limit := store.Usage{Requests: b.MaxRequests, TokensIn: b.MaxTokensInput, TokensOut: b.MaxTokensOutput}
	var d store.Usage
	if limit.Requests > 0 {
		d.Requests = 1
	}
	if limit.TokensIn > 0 {
		d.TokensIn = size
	}
	if limit.TokensOut > 0 {
		d.TokensOut = limit.TokensOut
		if want > 0 && want < d.TokensOut {
			d.TokensOut = want
		}
	}
	for range maxReserveTries {
		// On ErrLimit, u is the usage the addition was refused against.
		u, err := c.g.opt.Store.AddUsage(ctx, c.ver.JobID, d, limit)
		if err == nil {
			c.res = d
			return nil
		}
		if !errors.Is(err, store.ErrLimit) {
			return errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "usage counters are unavailable").Wrap(err)
		}
		switch {
		case limit.Requests > 0 && u.Requests+1 > limit.Requests:
			w.Header().Set("X-RateLimit-Limit", strconv.FormatInt(limit.Requests, 10))
			w.Header().Set("X-RateLimit-Remaining", "0")
			return errf(http.StatusTooManyRequests, CodeRequestBudget, "the job used its %d model calls", limit.Requests)
		case limit.TokensIn > 0 && u.TokensIn+d.TokensIn > limit.TokensIn:
			return errf(http.StatusTooManyRequests, CodeTokenBudget, "the job has %d of its %d input tokens left (calls in flight hold theirs); a call reserves its body's size, %d bytes, as input tokens",
				max(limit.TokensIn-u.TokensIn, 0), limit.TokensIn, d.TokensIn)
		case limit.TokensOut > 0 && u.TokensOut >= limit.TokensOut:
			return errf(http.StatusTooManyRequests, CodeTokenBudget, "the job has used or reserved its %d output tokens", limit.TokensOut)
		case limit.TokensOut > 0 && u.TokensOut+d.TokensOut > limit.TokensOut:
			d.TokensOut = limit.TokensOut - u.TokensOut
		}
	}
	return errf(http.StatusServiceUnavailable, CodeStoreUnavailable, "the job's usage counters changed %d times while reserving; try again", maxReserveTries)
}

// unreserve gives back the reservation of a call that never reached the
// provider.
func (c *call) unreserve(ctx context.Context) {
	if c.res == (store.Usage{}) || c.forwarded {
		return
	}
	d := store.Usage{Requests: -c.res.Requests, TokensIn: -c.res.TokensIn, TokensOut: -c.res.TokensOut}
	c.res = store.Usage{}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.g.opt.Store.AddUsage(ctx, c.ver.JobID, d, store.Usage{}); err != nil {
		c.g.opt.Log.ErrorContext(ctx, "budget reservation not released", "job_id", c.ver.JobID, "err", err)
	}
}

// settle replaces the call's token reservation by its usage: what the
// provider reported, or, for a 2xx answer that was cut short or reported
// none (the provider may have produced more than it said), the larger of
// that and the reservation. The request stays counted.
func (c *call) settle(ctx context.Context, o outcome) {
	if c.settled || !c.budget.tokens {
		return
	}
	c.settled = true
	in, out := o.usage.in, o.usage.out
	if o.status/100 == 2 && (o.code != "" || !o.usage.seen) {
		in, out = max(in, c.res.TokensIn), max(out, c.res.TokensOut)
	}
	d := store.Usage{TokensIn: in - c.res.TokensIn, TokensOut: out - c.res.TokensOut}
	if d == (store.Usage{}) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.g.opt.Store.AddUsage(ctx, c.ver.JobID, d, store.Usage{}); err != nil {
		c.g.opt.Log.ErrorContext(ctx, "token usage not counted", "job_id", c.ver.JobID, "err", err)
	}
}
