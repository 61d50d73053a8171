package verify

import (
	"math"
	"strconv"

	"github.com/clawea/clawea/canon"
)

// Strict mode's completeness rules. The reference checks each piece of
// evidence that is present; nothing checks that evidence is missing. A
// bundle re-signed by its agent without some receipts, or an aggregate
// re-issued without a segment, passes every reference check. Strict mode
// requires both directions of the bindings, and an aggregate to be a
// whole job.

// checkBundleCompleteness runs on a proof bundle payload whose steps 18 to
// 27 passed (strict mode only):
//
//   - every llm_call event of the chain has a gateway receipt whose
//     binding names it (run_id and event_hash_b64u), and every tool_call
//     event a tool receipt: RECEIPT_MISSING;
//   - every tool receipt is bound (run_id and event_hash_b64u) to an event
//     of the chain, and a side-effect or human-approval record that names
//     a run or event names this chain's: RECEIPT_UNBOUND. (Gateway
//     receipts that are not bound already fail strict mode with
//     RECEIPT_BINDING_MISMATCH; records must be anchored by span to a
//     gateway receipt in both modes, step 27.)
//
// A bundle's event chain holds event headers, not payloads, so the event
// type is what says an event has a receipt: llm_call is the model
// gateway's event type, tool_call the tool gateway's.
func checkBundleCompleteness(payload *canon.Value, ctx *chainContext) *Result {
	chain := payload.Get("event_chain")
	types := map[string]string{}
	if ctx.chainValid && chain.IsArray() {
		for i := range chain.Items {
			types[str0(&chain.Items[i], "event_hash_b64u")] = str0(&chain.Items[i], "event_type")
		}
	}
	// boundTo returns the event a receipt payload's binding names, or "".
	boundTo := func(p *canon.Value) string {
		b := p.Get("binding")
		eh, ok1 := b.StringOf("event_hash_b64u")
		rid, ok2 := b.StringOf("run_id")
		if !ok1 || !ok2 || rid != ctx.runID || types[eh] == "" {
			return ""
		}
		return eh
	}
	gateway := map[string]int{}
	if rs := payload.Get("receipts"); rs.IsArray() {
		for i := range rs.Items {
			if isLegacyDiagnostic(&rs.Items[i]) {
				continue
			}
			if eh := boundTo(rs.Items[i].Get("payload")); eh != "" {
				gateway[eh]++
			}
		}
	}
	tools := map[string]int{}
	if trs := payload.Get("tool_receipts"); trs.IsArray() {
		for i := range trs.Items {
			p := &trs.Items[i]
			if inner := p.Get("payload"); inner.IsObject() {
				p = inner
			}
			eh := boundTo(p)
			if eh == "" {
				path := "tool_receipts[" + itoa(i) + "]"
				return failPath(ReceiptUnbound, path+" ("+quote(str0(p, "receipt_id"))+") is not bound to an event of this bundle's chain", path)
			}
			tools[eh]++
		}
	}
	for _, key := range [...]string{"side_effect_receipts", "human_approval_receipts"} {
		list := payload.Get(key)
		if !list.IsArray() {
			continue
		}
		for i := range list.Items {
			// Records are anchored by span to a gateway receipt (step 27,
			// both modes); an event hash or run id they also name must be
			// this chain's.
			b := list.Items[i].Get("binding")
			rid, hasRun := b.StringOf("run_id")
			eh, hasEvent := b.StringOf("event_hash_b64u")
			if hasRun && rid != ctx.runID || hasEvent && types[eh] == "" {
				path := key + "[" + itoa(i) + "]"
				return failPath(ReceiptUnbound, path+" ("+quote(str0(&list.Items[i], "receipt_id"))+") is not bound to an event of this bundle's chain", path)
			}
		}
	}
	if !chain.IsArray() {
		return nil
	}
	missing, first := 0, -1
	for i := range chain.Items {
		ev := &chain.Items[i]
		h := str0(ev, "event_hash_b64u")
		switch str0(ev, "event_type") {
		case "llm_call":
			if gateway[h] == 0 {
				missing++
				if first < 0 {
					first = i
				}
			}
		case "tool_call":
			if tools[h] == 0 {
				missing++
				if first < 0 {
					first = i
				}
			}
		}
	}
	if missing > 0 {
		ev := &chain.Items[first]
		path := "event_chain[" + itoa(first) + "]"
		return failPath(ReceiptMissing, strconv.Itoa(missing)+" llm_call/tool_call event(s) have no receipt bound to them; first: "+path+" "+
			str0(ev, "event_type")+" "+quote(str0(ev, "event_id")), path)
	}
	return nil
}

// aggregatePart is what the completeness rule reads of one member.
type aggregatePart struct {
	job          string
	index, count int
	ok           bool // clawea_job_id and clawea_part are present and well formed
	runID        string
}

// memberPart reads a member payload's clawea_job_id and clawea_part.
func memberPart(mp *canon.Value, runID string) aggregatePart {
	md := mp.Get("metadata")
	p := aggregatePart{runID: runID}
	job, ok := md.StringOf("clawea_job_id")
	part := md.Get("clawea_part")
	idx, cnt := part.Get("index"), part.Get("count")
	if !ok || job == "" || !isCount(idx) || !isCount(cnt) {
		return p
	}
	p.job, p.index, p.count, p.ok = job, int(idx.Num), int(cnt.Num), true
	return p
}

func isCount(v *canon.Value) bool {
	return v.IsNumber() && v.Num >= 0 && v.Num <= 1e6 && v.Num == math.Trunc(v.Num)
}

// partRunID is the run id of segment seg of a job (internal/jobs.RunID).
func partRunID(job string, seg int) string {
	if seg == 0 {
		return job
	}
	return job + ".s" + strconv.Itoa(seg)
}

// checkAggregateCompleteness (strict mode only) requires an aggregate's
// members to be the whole segment sequence of one job: each member
// declares the same clawea_job_id and clawea_part.count, the count is the
// number of members, the indexes are 0 to count-1 once each, and member i
// carries the event chain of run <job> (i = 0) or <job>.s<i>. An aggregate
// whose members do not declare their job and part (a fleet aggregate of
// independent runs) cannot prove it is whole and is refused too.
func checkAggregateCompleteness(parts []aggregatePart) *Result {
	if len(parts) == 0 {
		return fail(AggregateIncomplete, "the aggregate has no members")
	}
	seen := make([]bool, len(parts))
	for i, p := range parts {
		where := "member_bundles[" + itoa(i) + "]"
		switch {
		case !p.ok:
			return failPath(AggregateIncomplete, where+" does not declare its job and part (metadata.clawea_job_id, metadata.clawea_part), so the aggregate cannot be shown whole", where)
		case p.job != parts[0].job:
			return failPath(AggregateIncomplete, where+" belongs to job "+quote(p.job)+", not "+quote(parts[0].job), where)
		case p.count != len(parts):
			return failPath(AggregateIncomplete, where+" is part "+itoa(p.index)+" of "+itoa(p.count)+" but the aggregate holds "+itoa(len(parts))+" members", where)
		case p.index >= len(parts) || seen[p.index]:
			return failPath(AggregateIncomplete, where+" repeats or is outside the part numbering ("+itoa(p.index)+")", where)
		case p.runID != partRunID(p.job, p.index):
			return failPath(AggregateIncomplete, where+" (part "+itoa(p.index)+") carries run "+quote(p.runID)+", not "+quote(partRunID(p.job, p.index)), where)
		}
		seen[p.index] = true
	}
	return nil
}
