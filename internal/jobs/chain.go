package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/store"
)

// ChainStore is what recording events needs.
type ChainStore interface {
	AppendEvent(ctx context.Context, jobID string, next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error)
}

// Chain records events and their evidence into jobs' hash chains. The job
// service has one; a gateway in another process makes its own over the
// same store (every process must use the same segment size).
type Chain struct {
	st      ChainStore
	now     func() time.Time
	segSize int
}

// NewChain returns a Chain cutting segments every segEvents events
// (default and maximum 1,000, the reference's limit per bundle).
func NewChain(st ChainStore, segEvents int, now func() time.Time) *Chain {
	if segEvents <= 0 || segEvents > bundle.MaxEvents {
		segEvents = bundle.MaxEvents
	}
	if now == nil {
		now = time.Now
	}
	return &Chain{st: st, now: now, segSize: segEvents}
}

// AppendEvent adds an event to an open job's chain and returns it. payload
// is any JSON value; its compact form is hashed into the event.
func (s *Chain) AppendEvent(ctx context.Context, jobID, eventType string, payload any) (store.JobEvent, error) {
	return s.Record(ctx, jobID, eventType, payload, nil)
}

// Appended is what a recorder learns inside the append, before anything is
// stored: the new event (hashed) and the causal anchor of its segment.
type Appended struct {
	Event  bundle.Event
	Stored store.JobEvent
	// Anchor is the span id rooting the segment's causal graph (the first
	// model call's span); "" when the segment has none yet.
	Anchor string
}

// Evidence is an item stored in the same transaction as its event.
type Evidence struct {
	Kind   string
	ItemID string
	JSON   []byte
}

// AttachFunc builds the evidence bound to a new event: receipts that name
// the event's hash. declares is the span id a model-call receipt declares
// ("" for none); the first one in a segment becomes its anchor.
type AttachFunc func(a *Appended) (items []Evidence, declares string, err error)

// Record appends an event and, atomically with it, the evidence attach
// builds for it. Errors from attach are returned as they are and nothing
// is stored.
func (s *Chain) Record(ctx context.Context, jobID, eventType string, payload any, attach AttachFunc) (store.JobEvent, error) {
	if eventType == "" || len(eventType) > 64 {
		return store.JobEvent{}, jerr(400, "EVENT_TYPE_INVALID", "event_type must be 1 to 64 characters")
	}
	pv, err := canon.ValueOf(payload)
	if err != nil {
		return store.JobEvent{}, jerr(400, "EVENT_PAYLOAD_INVALID", "payload: %v", err)
	}
	praw := canon.AppendCompact(nil, &pv)
	if len(praw) > 64<<10 {
		return store.JobEvent{}, jerr(413, "EVENT_TOO_LARGE", "event payload exceeds 64 KiB")
	}
	at := s.now()
	var attachErr error
	ev, err := s.st.AppendEvent(ctx, jobID, func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		seq, seg, idx := int64(1), 0, 0
		var prev *string
		anchor := ""
		if last != nil {
			seq, seg, idx = last.Seq+1, last.Segment, last.Index+1
			prevHash := last.EventHash
			prev = &prevHash
			anchor = last.Anchor
			if idx >= s.segSize {
				seg, idx, prev, anchor = seg+1, 0, nil, "" // a new run starts its own chain and graph
			}
		}
		e := bundle.Event{EventID: fmt.Sprintf("evt_%06d", seq), RunID: RunID(jobID, seg), EventType: eventType,
			Timestamp: envelope.FormatTime(at), PayloadHash: b64u.SHA256(praw), PrevHash: prev}
		h, err := bundle.HashEvent(&e)
		if err != nil {
			return store.JobEvent{}, nil, err
		}
		e.EventHash = h
		raw, err := canon.Marshal(e)
		if err != nil {
			return store.JobEvent{}, nil, err
		}
		stored := store.JobEvent{JobID: jobID, Seq: seq, Segment: seg, Index: idx, EventID: e.EventID, EventType: eventType, EventHash: h,
			Event: raw, Payload: praw, Anchor: anchor, CreatedAt: at}
		if attach == nil {
			return stored, nil, nil
		}
		evidence, declares, err := attach(&Appended{Event: e, Stored: stored, Anchor: anchor})
		if err != nil {
			attachErr = err
			return store.JobEvent{}, nil, err
		}
		if stored.Anchor == "" {
			stored.Anchor = declares
		}
		items := make([]store.JobItem, 0, len(evidence))
		for _, it := range evidence {
			switch it.Kind {
			case KindGatewayReceipt, KindToolReceipt, KindSideEffect, KindHumanApproval:
			default:
				attachErr = jerr(500, "EVIDENCE_KIND_INVALID", "unknown evidence kind %q", it.Kind)
				return store.JobEvent{}, nil, attachErr
			}
			items = append(items, store.JobItem{JobID: jobID, Segment: seg, Kind: it.Kind, ItemID: it.ItemID, EventHash: h, JSON: it.JSON, CreatedAt: at})
		}
		return stored, items, nil
	})
	switch {
	case attachErr != nil && errors.Is(err, attachErr):
		return ev, err
	case errors.Is(err, store.ErrNotFound):
		return ev, jerr(404, "JOB_NOT_FOUND", "no job %s", jobID)
	case errors.Is(err, store.ErrConflict):
		return ev, jerr(409, "JOB_NOT_OPEN", "job %s is not open (or the evidence was already recorded)", jobID)
	case err != nil:
		return ev, jerr(503, "STORE_UNAVAILABLE", "%v", err)
	}
	return ev, nil
}
