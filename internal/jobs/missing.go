package jobs

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/clawea/clawea/internal/store"
)

// Event types of the decision API (internal/toolgw/decide.go) that finish
// reads, and the one it writes.
const (
	eventRuntimeDecision = "runtime_decision"
	eventToolCall        = "tool_call"
	// EventResultsMissing records, at finish, the runtime tool calls the
	// policy allowed whose result the runtime never reported: a run on a
	// runtime (or an OpenClaw mode) whose hooks do not report results, a
	// crash, or an agent that skipped the result. Auditors see the gap in
	// the bundle, not a silence.
	EventResultsMissing = "runtime_results_missing"
	// maxMissingListed bounds the decision ids the event lists.
	maxMissingListed = 100
)

// MissingResults is the payload of a runtime_results_missing event.
type MissingResults struct {
	Count       int      `json:"count"`
	DecisionIDs []string `json:"decision_ids"`
	Tools       []string `json:"tools"`
	Truncated   bool     `json:"truncated,omitempty"`
}

// missingResults lists the allowed runtime decisions of a job's events
// that no tool_call event closed, in chain order.
func missingResults(evs []store.JobEvent) MissingResults {
	closed := map[string]bool{}
	for _, e := range evs {
		if e.EventType != eventToolCall {
			continue
		}
		var p struct {
			DecisionID string `json:"decision_id"`
		}
		if json.Unmarshal(e.Payload, &p) == nil && p.DecisionID != "" {
			closed[p.DecisionID] = true
		}
	}
	var m MissingResults
	seen := map[string]bool{}
	for _, e := range evs {
		if e.EventType != eventRuntimeDecision {
			continue
		}
		var p struct {
			DecisionID string `json:"decision_id"`
			Decision   string `json:"decision"`
			Tool       string `json:"tool"`
		}
		if json.Unmarshal(e.Payload, &p) != nil || p.Decision != "allow" || p.DecisionID == "" || closed[p.DecisionID] || seen[p.DecisionID] {
			continue
		}
		seen[p.DecisionID] = true
		m.Count++
		if len(m.DecisionIDs) < maxMissingListed {
			m.DecisionIDs = append(m.DecisionIDs, p.DecisionID)
			if !slices.Contains(m.Tools, p.Tool) {
				m.Tools = append(m.Tools, p.Tool)
			}
		} else {
			m.Truncated = true
		}
	}
	return m
}

// recordMissingResults appends a runtime_results_missing event when an
// open job's events (evs, as listed for finishing) hold allowed runtime
// decisions without a result. It runs just before the job stops taking
// events; a result recorded in between is in the chain after it, so the
// bundle still shows both.
func (s *Service) recordMissingResults(ctx context.Context, jobID string, evs []store.JobEvent) error {
	m := missingResults(evs)
	if m.Count == 0 {
		return nil
	}
	s.log.WarnContext(ctx, "runtime tool calls without a reported result", "job_id", jobID, "count", m.Count, "tools", m.Tools)
	_, err := s.AppendEvent(ctx, jobID, EventResultsMissing, m)
	return err
}

// resultsMissing sums the runtime_results_missing events of a job.
func resultsMissing(segs []*segmentEvidence) int {
	n := 0
	for _, sg := range segs {
		for _, e := range sg.events {
			var m MissingResults
			if e.EventType == EventResultsMissing && json.Unmarshal(e.Payload, &m) == nil {
				n += m.Count
			}
		}
	}
	return n
}
