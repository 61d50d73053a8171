package receipt

import (
	"sort"

	"github.com/clawea/clawea/canon"
)

// The gateway signs one receipt per model call; these encoders write a
// gateway receipt payload directly, byte for byte what canon.Marshal writes
// for it (TestGatewayEncoderMatchesMarshal), without reflection.

type jw struct{ b []byte }

func (w *jw) key(sep byte, k string) {
	w.b = append(w.b, sep, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) str(sep byte, k, v string) {
	w.key(sep, k)
	w.b = canon.AppendString(w.b, v)
}

func (w *jw) num(sep byte, k string, v float64) {
	w.key(sep, k)
	w.b = canon.AppendNumber(w.b, v)
}

func (w *jw) optStr(k, v string) {
	if v != "" {
		w.str(',', k, v)
	}
}

// appendCompact writes g as canon.Marshal(g) does.
func (g *Gateway) appendCompact(b []byte) []byte {
	w := &jw{b: b}
	w.str('{', "receipt_version", g.Version)
	w.str(',', "receipt_id", g.ReceiptID)
	w.str(',', "gateway_id", g.GatewayID)
	w.str(',', "provider", g.Provider)
	w.str(',', "model", g.Model)
	w.str(',', "request_hash_b64u", g.RequestHash)
	w.str(',', "response_hash_b64u", g.ResponseHash)
	w.num(',', "tokens_input", float64(g.TokensInput))
	w.num(',', "tokens_output", float64(g.TokensOutput))
	w.num(',', "latency_ms", float64(g.LatencyMS))
	w.str(',', "timestamp", g.Timestamp)
	if b := g.Binding; b != nil {
		w.key(',', "binding")
		w.b = append(w.b, '{')
		n := len(w.b)
		w.optStr("run_id", b.RunID)
		w.optStr("event_hash_b64u", b.EventHash)
		w.optStr("nonce", b.Nonce)
		w.optStr("policy_hash", b.PolicyHash)
		w.optStr("token_scope_hash_b64u", b.TokenScopeHash)
		w.optStr("span_id", b.SpanID)
		w.optStr("parent_span_id", b.ParentSpanID)
		w.optStr("tool_span_id", b.ToolSpanID)
		w.optStr("phase", b.Phase)
		if b.AttributionConfidence != nil {
			w.num(',', "attribution_confidence", *b.AttributionConfidence)
		}
		w.b = closeObject(w.b, n)
	}
	if m := g.Metadata; m != nil {
		w.key(',', "metadata")
		w.b = append(w.b, '{')
		n := len(w.b)
		if mi := m.ModelIdentity; mi != nil {
			w.key(',', "model_identity")
			w.str('{', "model_identity_version", mi.Version)
			w.str(',', "tier", mi.Tier)
			w.key(',', "model")
			w.str('{', "provider", mi.Model.Provider)
			w.str(',', "name", mi.Model.Name)
			w.b = append(w.b, '}', '}')
		}
		w.optStr("model_identity_hash_b64u", m.ModelIdentityHash)
		w.optStr("clawea_status", m.Status)
		w.optStr("clawea_error_code", m.ErrorCode)
		if m.Streamed {
			w.key(',', "clawea_streamed")
			w.b = append(w.b, "true"...)
		}
		if m.Redactions != 0 {
			w.num(',', "clawea_redactions", float64(m.Redactions))
		}
		w.optStr("receipt_privacy_mode", m.Privacy)
		if len(m.JobLabels) > 0 {
			names := make([]string, 0, len(m.JobLabels))
			for k := range m.JobLabels {
				names = append(names, k)
			}
			sort.Strings(names)
			w.key(',', "clawea_job_labels")
			w.b = append(w.b, '{')
			ln := len(w.b)
			for _, k := range names {
				w.str(',', k, m.JobLabels[k])
			}
			w.b = closeObject(w.b, ln)
		}
		w.b = closeObject(w.b, n)
	}
	return append(w.b, '}')
}

// closeObject ends an object opened at start-1 whose members were written
// each with a leading comma: the first comma is dropped.
func closeObject(b []byte, start int) []byte {
	if len(b) > start && b[start] == ',' {
		b = append(b[:start], b[start+1:]...)
	}
	return append(b, '}')
}
