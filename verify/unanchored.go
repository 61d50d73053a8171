package verify

import (
	"encoding/json"
	"strconv"

	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
)

// UnanchoredMismatch is the reason code when the records supplied beside a
// proof bundle are not the ones its metadata.clawea_unanchored commits to,
// or do not belong to the bundle's run.
const UnanchoredMismatch = "UNANCHORED_RECORDS_MISMATCH"

// Unanchored is what a bundle says about the records that travel beside
// it (docs/formats.md, "Records that travel beside a bundle").
type Unanchored struct {
	// Declared is the count in metadata.clawea_unanchored (0: no entry).
	Declared int `json:"declared"`
	// Checked is true when records were supplied and matched the entry.
	Checked bool `json:"checked"`
	// Note says, when the records were not supplied, that they travel
	// beside the bundle unchecked.
	Note string `json:"note,omitempty"`
}

// CheckUnanchored checks the side-effect and human-approval records that
// travel beside a proof bundle (an envelope or a raw payload; the bundle
// itself is verified separately) against its metadata.clawea_unanchored
// entry: with records supplied (records != nil), their count and root must
// match it, and each record's binding, when it names a run or an event,
// must name the bundle's run and an event of its chain. Without records, a
// declared entry is reported in Note. A failure is a Result with
// UnanchoredMismatch (or MalformedEnvelope for an unreadable bundle or
// entry).
func CheckUnanchored(data []byte, records [][]byte) (*Unanchored, *Result) {
	v, err := canon.Parse(data)
	if err != nil || !v.IsObject() {
		return nil, fail(MalformedEnvelope, "the bundle is not a JSON object")
	}
	payload := &v
	if p := v.Get("payload"); p.IsObject() {
		payload = p
	}
	var entry *bundle.Unanchored
	if md := payload.Get("metadata"); md.IsObject() {
		if u := md.Get("clawea_unanchored"); u != nil {
			entry = new(bundle.Unanchored)
			if !u.IsObject() || json.Unmarshal(canon.AppendCompact(nil, u), entry) != nil || entry.Count < 1 || entry.Root == "" {
				return nil, fail(MalformedEnvelope, "metadata.clawea_unanchored must be {version, count >= 1, root_b64u}")
			}
		}
	}
	out := &Unanchored{}
	if entry != nil {
		out.Declared = entry.Count
	}
	if records == nil {
		if entry != nil {
			out.Note = strconv.Itoa(entry.Count) + " side-effect or approval records travel beside the bundle and were not checked"
		}
		return out, nil
	}
	if err := bundle.CheckUnanchored(entry, records); err != nil {
		return out, fail(UnanchoredMismatch, err.Error())
	}
	// The records must be this run's: a binding names the bundle's run
	// and an event of its chain.
	runID := ""
	events := map[string]bool{}
	if chain := payload.Get("event_chain"); chain.IsArray() {
		for i := range chain.Items {
			if runID == "" {
				runID = str0(&chain.Items[i], "run_id")
			}
			events[str0(&chain.Items[i], "event_hash_b64u")] = true
		}
	}
	for i, raw := range records {
		r, _ := canon.Parse(raw) // parsed by CheckUnanchored already
		b := r.Get("binding")
		if !b.IsObject() {
			continue
		}
		if rid, ok := b.StringOf("run_id"); ok && rid != runID {
			return out, fail(UnanchoredMismatch, "record "+itoa(i)+" is bound to run "+quote(rid)+", not the bundle's")
		}
		if eh, ok := b.StringOf("event_hash_b64u"); ok && !events[eh] {
			return out, fail(UnanchoredMismatch, "record "+itoa(i)+" is bound to an event that is not in the bundle's chain")
		}
	}
	out.Checked = true
	return out, nil
}
