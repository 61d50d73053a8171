package verify

import (
	"github.com/clawea/clawea/canon"
)

var spanKeys = [...][2]string{{"span_id", "spanId"}, {"parent_span_id", "parentSpanId"}, {"tool_span_id", "toolSpanId"}, {"attribution_confidence", "attributionConfidence"}}

// causalBinding is a gateway receipt binding after snake/camel merging.
type causalBinding struct {
	span, parent, tool string
	confidence         *float64
	phase              string
}

// normalizeBinding merges snake_case and camelCase keys (snake wins, a
// disagreement is a conflict).
func normalizeBinding(b *canon.Value) (causalBinding, string) {
	var out causalBinding
	for _, pair := range spanKeys {
		snake, camel := b.Get(pair[0]), b.Get(pair[1])
		v := snake
		if v == nil {
			v = camel
		} else if camel != nil && !sameJSON(snake, camel) {
			return out, CausalBindingFieldConflict
		}
		if v == nil {
			continue
		}
		if pair[0] == "attribution_confidence" {
			if !v.IsNumber() {
				return out, CausalBindingNormalization
			}
			f := v.Num
			out.confidence = &f
			continue
		}
		if !v.IsString() || v.Str == "" {
			return out, CausalBindingNormalization
		}
		switch pair[0] {
		case "span_id":
			out.span = v.Str
		case "parent_span_id":
			out.parent = v.Str
		case "tool_span_id":
			out.tool = v.Str
		}
	}
	out.phase = str0(b, "phase")
	return out, ""
}

func isCausal(b *canon.Value) bool {
	if !b.IsObject() {
		return false
	}
	for _, pair := range spanKeys {
		if b.Get(pair[0]) != nil || b.Get(pair[1]) != nil {
			return true
		}
	}
	return b.Get("phase") != nil
}

// checkCausal runs step 27 in enforce mode: the causal graph declared by
// gateway receipt bindings, and the anchoring of side-effect and
// human-approval receipts to it.
func checkCausal(payload *canon.Value, res *Result) *Result {
	receipts := payload.Get("receipts")
	declared := map[string]int{} // span id -> receipt index
	parents := map[string]string{}
	byID := map[string]*canon.Value{}
	var causal []int
	if receipts.IsArray() {
		for i := range receipts.Items {
			if p := receipts.Items[i].Get("payload"); p.IsObject() && isCausal(p.Get("binding")) {
				causal = append(causal, i)
			}
		}
	}
	// A replayed receipt id matters only when one of the two receipts is
	// causal, so bundles without causal bindings skip the index.
	if len(causal) > 0 {
		for i := range receipts.Items {
			p := receipts.Items[i].Get("payload")
			if !p.IsObject() {
				continue
			}
			if id, ok := p.StringOf("receipt_id"); ok {
				if prev, dup := byID[id]; dup && !sameJSON(prev, p) {
					if isCausal(p.Get("binding")) || isCausal(prev.Get("binding")) {
						return fail(CausalReceiptReplayDetected, "receipt_id "+quote(id)+" appears twice with different content")
					}
				}
				byID[id] = p
			}
		}
	}
	nodes := []string{}
	for _, i := range causal {
		env := &receipts.Items[i]
		p := env.Get("payload")
		cb, code := normalizeBinding(p.Get("binding"))
		if code != "" {
			return fail(code, "receipts["+itoa(i)+"].binding has conflicting or malformed span fields")
		}
		ts, ok1 := parseLenientDate(str0(p, "timestamp"))
		iss, ok2 := parseLenientDate(str0(env, "issued_at"))
		if ok1 && ok2 && ts.After(iss) {
			return fail(CausalClockContradiction, "receipts["+itoa(i)+"] timestamp is after its envelope's issued_at")
		}
		if cb.phase != "" && !contains(causalPhases, cb.phase) {
			return fail(CausalPhaseInvalid, "receipts["+itoa(i)+"] has an unknown phase")
		}
		if cb.confidence != nil && (*cb.confidence < 0 || *cb.confidence > 1) {
			return fail(CausalConfidenceOutOfRange, "receipts["+itoa(i)+"] attribution confidence is outside [0, 1]")
		}
		if cb.span != "" {
			if j, dup := declared[cb.span]; dup && j != i {
				return fail(CausalSpanReuseConflict, "span "+quote(cb.span)+" is declared by two receipts")
			}
			declared[cb.span] = i
			nodes = append(nodes, cb.span)
			if cb.parent != "" {
				parents[cb.span] = cb.parent
			}
		}
	}
	for _, i := range causal {
		cb, _ := normalizeBinding(receipts.Items[i].Get("payload").Get("binding"))
		for _, ref := range [...]string{cb.parent, cb.tool} {
			if ref != "" {
				if _, ok := declared[ref]; !ok {
					return fail(CausalReferenceDangling, "receipts["+itoa(i)+"] refers to undeclared span "+quote(ref))
				}
			}
		}
	}
	// Cycles along parent links.
	for _, start := range nodes {
		seen := map[string]bool{}
		for cur := start; cur != ""; cur = parents[cur] {
			if seen[cur] {
				return fail(CausalCycleDetected, "span parents form a cycle at "+quote(cur))
			}
			seen[cur] = true
		}
	}
	// Connectivity: the spans form one tree.
	if len(nodes) > 1 {
		roots := 0
		for _, n := range nodes {
			if parents[n] == "" {
				roots++
			}
		}
		if roots > 1 {
			return fail(CausalGraphDisconnected, "the causal span graph has more than one root")
		}
	}
	// Orphans.
	for _, kind := range [...]struct{ key, code, what string }{
		{"side_effect_receipts", CausalSideEffectOrphaned, "side-effect"},
		{"human_approval_receipts", CausalHumanApprovalOrphaned, "human-approval"},
	} {
		list := payload.Get(kind.key)
		if !list.IsArray() {
			continue
		}
		for i := range list.Items {
			b := list.Items[i].Get("binding")
			anchored := false
			if b.IsObject() {
				for _, k := range [...]string{"tool_span_id", "toolSpanId", "parent_span_id", "parentSpanId", "span_id", "spanId"} {
					if s, ok := b.StringOf(k); ok {
						if _, ok := declared[s]; ok {
							anchored = true
							break
						}
					}
				}
			}
			if !anchored {
				return fail(kind.code, kind.key+"["+itoa(i)+"] is not anchored to a span declared by a gateway receipt")
			}
		}
	}
	return nil
}
