package jobs

import (
	"context"
	"encoding/json"

	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/store"
	"github.com/clawea/clawea/receipt"
	"github.com/clawea/clawea/verify"
)

// UnanchoredRoot is the root a bundle's metadata.clawea_unanchored entry
// names for the records that travel beside it (bundle.UnanchoredRoot).
func UnanchoredRoot(records [][]byte) (string, error) { return bundle.UnanchoredRoot(records) }

// segmentRecords are a segment's side-effect and human-approval records,
// split by whether the segment's bundle can list them.
type segmentRecords struct {
	sideEffects []receipt.SideEffect
	approvals   []receipt.HumanApproval
	unanchored  [][]byte // as stored, in store order
}

// splitRecords sorts a segment's side-effect and human-approval records
// into those anchored to a span declared by one of the segment's gateway
// receipts (the reference's causal rule, verify step 27: a binding's
// tool_span_id, parent_span_id or span_id names a declared span) and the
// rest. The bundle lists the first; the second travel beside it.
func splitRecords(items []store.JobItem) (segmentRecords, error) {
	var out segmentRecords
	spans := map[string]bool{}
	for _, it := range items {
		if it.Kind != evidence.KindGatewayReceipt {
			continue
		}
		var r struct {
			Payload struct {
				Binding *receipt.Binding `json:"binding"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(it.JSON, &r); err != nil {
			return out, jerr(500, "EVIDENCE_CORRUPTED", "%s %s is corrupted", it.Kind, it.ItemID).Wrap(err)
		}
		if b := r.Payload.Binding; b != nil && b.SpanID != "" {
			spans[b.SpanID] = true
		}
	}
	anchored := func(b *receipt.Binding) bool {
		return b != nil && (b.ToolSpanID != "" && spans[b.ToolSpanID] || b.ParentSpanID != "" && spans[b.ParentSpanID] ||
			b.SpanID != "" && spans[b.SpanID])
	}
	for _, it := range items {
		switch it.Kind {
		case evidence.KindSideEffect:
			var se receipt.SideEffect
			if err := json.Unmarshal(it.JSON, &se); err != nil {
				return out, jerr(500, "EVIDENCE_CORRUPTED", "%s %s is corrupted", it.Kind, it.ItemID).Wrap(err)
			}
			if anchored(se.Binding) {
				out.sideEffects = append(out.sideEffects, se)
			} else {
				out.unanchored = append(out.unanchored, it.JSON)
			}
		case evidence.KindHumanApproval:
			var ha receipt.HumanApproval
			if err := json.Unmarshal(it.JSON, &ha); err != nil {
				return out, jerr(500, "EVIDENCE_CORRUPTED", "%s %s is corrupted", it.Kind, it.ItemID).Wrap(err)
			}
			if anchored(ha.Binding) {
				out.approvals = append(out.approvals, ha)
			} else {
				out.unanchored = append(out.unanchored, it.JSON)
			}
		}
	}
	return out, nil
}

// checkLimits refuses, before anything is signed, a payload over one of
// the verifier's per-bundle limits (verify step 12 and the schema's list
// caps), naming the limit: a finish must never sign a bundle its own
// strict check would refuse. The chain's segment size and the fixed-size
// metadata keep every job within them; this says which one broke if that
// ever stops being true (BUNDLE_LIMIT_EXCEEDED).
func checkLimits(p *bundle.Payload, raw []byte, seg int) error {
	lists := []struct {
		what string
		n    int
		max  int
	}{
		{"event_chain", len(p.EventChain), verify.MaxEvents},
		{"receipts", len(p.Receipts), verify.MaxReceipts},
		{"tool_receipts", len(p.ToolReceipts), maxListItems},
		{"side_effect_receipts", len(p.SideEffects), maxListItems},
		{"human_approval_receipts", len(p.HumanApprovals), maxListItems},
		{"rate_limit_claims", len(p.RateLimitClaims), maxRateLimitClaims},
	}
	for _, l := range lists {
		if l.n > l.max {
			return jerr(500, "BUNDLE_LIMIT_EXCEEDED", "segment %d: %s has %d entries, the verifier allows %d", seg, l.what, l.n, l.max)
		}
	}
	v, err := canon.Parse(raw)
	if err != nil {
		return err
	}
	if md := v.Get("metadata"); md != nil {
		if n := len(canon.AppendCompact(nil, md)); n > verify.MaxMetadata {
			return jerr(500, "BUNDLE_LIMIT_EXCEEDED", "segment %d: metadata is %d bytes, the verifier allows %d", seg, n, verify.MaxMetadata)
		}
	}
	for i, r := range p.Receipts {
		if md := r.Payload.Get("metadata"); md != nil {
			if n := len(canon.AppendCompact(nil, md)); n > verify.MaxMetadata {
				return jerr(500, "BUNDLE_LIMIT_EXCEEDED", "segment %d: receipts[%d].payload.metadata is %d bytes, the verifier allows %d", seg, i, n, verify.MaxMetadata)
			}
		}
	}
	return nil
}

// The verifier's schema caps on a proof bundle's record lists
// (verify/schemas.go).
const (
	maxListItems       = 1000
	maxRateLimitClaims = 256
)

// rawList turns stored records into the answer's form.
func rawList(records [][]byte) []json.RawMessage {
	if len(records) == 0 {
		return nil
	}
	out := make([]json.RawMessage, len(records))
	for i, r := range records {
		out[i] = r
	}
	return out
}

// unanchoredBySegment reads a job's stored evidence back and returns, per
// segment, the records its bundle could not list.
func (s *Service) unanchoredBySegment(ctx context.Context, jobID string) (map[int][][]byte, error) {
	items, err := s.st.ListItems(ctx, jobID)
	if err != nil {
		return nil, jerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	bySeg := map[int][]store.JobItem{}
	for _, it := range items {
		bySeg[it.Segment] = append(bySeg[it.Segment], it)
	}
	out := map[int][][]byte{}
	for seg, its := range bySeg {
		rs, err := splitRecords(its)
		if err != nil {
			return nil, err
		}
		if len(rs.unanchored) > 0 {
			out[seg] = rs.unanchored
		}
	}
	return out, nil
}
