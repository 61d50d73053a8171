package evidence

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/bundle"
	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/envelope"
	"github.com/clawea/clawea/internal/httpapi"
	"github.com/clawea/clawea/internal/redact"
	"github.com/clawea/clawea/internal/store"
)

// Evidence kinds collected during a job: the only kinds an Item may have.
const (
	KindGatewayReceipt = "gateway_receipt" // a model gateway receipt envelope
	KindToolReceipt    = "tool_receipt"    // a tool gateway receipt envelope
	KindSideEffect     = "side_effect"     // a side-effect record
	KindHumanApproval  = "human_approval"  // a human-approval record
)

// ValidKind reports whether kind is one of the evidence kinds.
func ValidKind(kind string) bool {
	switch kind {
	case KindGatewayReceipt, KindToolReceipt, KindSideEffect, KindHumanApproval:
		return true
	}
	return false
}

// Sentinels of Record, checked with errors.Is (an *httpapi.Error matches a
// sentinel of the same code).
var (
	// ErrJobNotOpen: the job is not open (finishing or finished), or the
	// evidence was already recorded.
	ErrJobNotOpen = httpapi.New(http.StatusConflict, "JOB_NOT_OPEN", "the job is not open")
	// ErrSecretRefused: the gate refused a record holding a secret the job
	// has seen.
	ErrSecretRefused = httpapi.New(http.StatusUnprocessableEntity, CodeSecretRefused, "the record holds a secret the job has seen; it is not stored")
)

// RunID names segment seg of a job: the job id for the first, then
// <job>.s<n>. Each segment is its own run, with its own hash chain.
func RunID(jobID string, seg int) string {
	if seg == 0 {
		return jobID
	}
	return fmt.Sprintf("%s.s%d", jobID, seg)
}

func cerr(status int, code, format string, args ...any) *httpapi.Error {
	return httpapi.Errorf(status, code, format, args...)
}

// ChainStore is what recording events needs: one atomic append of an
// event with its items. A store that also implements
// store.PreparedAppender (the SQLite journal, which batches appends of
// many jobs into one transaction) gets events built before its lock.
type ChainStore interface {
	AppendEvent(ctx context.Context, jobID string, next func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error)) (store.JobEvent, error)
}

// Chain records events and their evidence into jobs' hash chains: it is
// the one path by which anything a producer (the model gateway, the tool
// gateway with its decision API and approvals, the job service's own
// events API) learns about a job reaches the store, and every event and
// item passes the gate (Check) inside it, so no producer can skip it. The
// job service makes its own Chain and the gateways of a process share
// one, all over the same store; so do processes sharing a store (every
// chain over one store must use the same segment size).
type Chain struct {
	st      ChainStore
	now     func() time.Time
	segSize int
	secrets *redact.Registry // the evidence gate's registry (nil: no secrets known)

	mu      sync.Mutex
	heads   map[string]*store.JobEvent // last event seen per job
	stripes [256]sync.Mutex
}

func stripe(jobID string) uint8 {
	var h uint32 = 2166136261
	for i := 0; i < len(jobID); i++ {
		h = (h ^ uint32(jobID[i])) * 16777619
	}
	return uint8(h)
}

// MaxSegments is the most segments (member bundles) a job may have: an
// aggregate bundle joins at most 1,000 members.
const MaxSegments = 1000

// NewChain returns a Chain over st whose gate refuses, with
// EVIDENCE_SECRET_REFUSED, any event or evidence holding a secret secrets
// knows for the job (nil: no secrets are known in this process). It cuts
// segments every segEvents events (default and maximum 1,000, the
// reference's limit per bundle); now stamps events (nil: time.Now).
func NewChain(st ChainStore, secrets *redact.Registry, segEvents int, now func() time.Time) *Chain {
	if segEvents <= 0 || segEvents > bundle.MaxEvents {
		segEvents = bundle.MaxEvents
	}
	if now == nil {
		now = time.Now
	}
	return &Chain{st: st, now: now, segSize: segEvents, secrets: secrets, heads: map[string]*store.JobEvent{}}
}

// Refused turns the gate's refusal (Check's error) into the API's error,
// EVIDENCE_SECRET_REFUSED naming the secret by label; nil for nil.
func Refused(err error) *httpapi.Error {
	if err == nil {
		return nil
	}
	var se *SecretError
	label := "?"
	if errors.As(err, &se) {
		label = se.Label
	}
	return cerr(http.StatusUnprocessableEntity, CodeSecretRefused, "the record holds a secret the job has seen (%s); it is not stored", label)
}

// AppendEvent adds an event to an open job's chain and returns it. payload
// is any JSON value; its compact form is hashed into the event.
func (s *Chain) AppendEvent(ctx context.Context, jobID, eventType string, payload any) (store.JobEvent, error) {
	return s.Record(ctx, jobID, eventType, payload, nil)
}

// CompactEncoder is a payload that writes its own compact JSON (the bytes
// canon.Marshal would write), saving a reflection pass on hot paths.
type CompactEncoder interface {
	AppendCompact(b []byte) []byte
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

// Item is evidence stored in the same transaction as its event.
type Item struct {
	Kind   string
	ItemID string
	JSON   []byte
	// BoundTo, when set, is the earlier event the item names instead of the
	// new one (a decision recorded later about a request's event): the item
	// goes into that event's segment.
	BoundTo *store.JobEvent
}

// AttachFunc builds the evidence bound to a new event: receipts that name
// the event's hash. declares is the span id a model-call receipt declares
// ("" for none); the first one in a segment becomes its anchor.
type AttachFunc func(a *Appended) (items []Item, declares string, err error)

// Record appends an event and, atomically with it, the evidence attach
// builds for it, after both passed the gate. Errors from attach are
// returned as they are and nothing is stored. Its other errors are
// *httpapi.Error with stable codes: EVENT_TYPE_INVALID,
// EVENT_PAYLOAD_INVALID, EVENT_TOO_LARGE, EVIDENCE_KIND_INVALID,
// EVIDENCE_SECRET_REFUSED, JOB_NOT_FOUND, JOB_NOT_OPEN, JOB_TOO_LONG,
// STORE_UNAVAILABLE.
func (s *Chain) Record(ctx context.Context, jobID, eventType string, payload any, attach AttachFunc) (store.JobEvent, error) {
	if eventType == "" || len(eventType) > 64 {
		return store.JobEvent{}, cerr(400, "EVENT_TYPE_INVALID", "event_type must be 1 to 64 characters")
	}
	var praw []byte
	if enc, ok := payload.(CompactEncoder); ok {
		praw = enc.AppendCompact(nil)
	} else {
		pv, err := canon.ValueOf(payload)
		if err != nil {
			return store.JobEvent{}, cerr(400, "EVENT_PAYLOAD_INVALID", "payload is not valid JSON").Wrap(err)
		}
		praw = canon.AppendCompact(nil, &pv)
	}
	if len(praw) > 64<<10 {
		return store.JobEvent{}, cerr(413, "EVENT_TOO_LARGE", "event payload exceeds 64 KiB")
	}
	at := s.now()
	var attachErr error
	build := func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		ev, items, err := s.build(jobID, eventType, praw, at, last, attach)
		if err != nil {
			attachErr = err
		}
		return ev, items, err
	}
	// The event and its evidence (a signed receipt, typically) are built
	// before the transaction from the head this process saw last, so that
	// signing does not hold the store's write lock; if another writer moved
	// the head meanwhile, they are built again inside the transaction.
	// Appends to one job take turns in this process, so that each builds
	// on the head the previous one left (and signs outside the store's
	// lock); different jobs proceed in parallel.
	lock := &s.stripes[stripe(jobID)]
	lock.Lock()
	defer lock.Unlock()
	head, known := s.cachedHead(jobID)
	var pre store.JobEvent
	var preItems []store.JobItem
	if known {
		var err error
		if pre, preItems, err = build(head); err != nil {
			return store.JobEvent{}, err
		}
	}
	next := func(last *store.JobEvent) (store.JobEvent, []store.JobItem, error) {
		if known && sameHead(last, head) {
			return pre, preItems, nil
		}
		return build(last)
	}
	var ev store.JobEvent
	var err error
	if pa, ok := s.st.(store.PreparedAppender); ok && known {
		ev, err = pa.AppendPrepared(ctx, jobID, head, pre, preItems, next)
	} else {
		ev, err = s.st.AppendEvent(ctx, jobID, next)
	}
	if err != nil {
		s.forget(jobID)
	} else {
		s.remember(ev)
	}
	switch {
	case attachErr != nil && errors.Is(err, attachErr):
		return ev, err
	case errors.Is(err, store.ErrNotFound):
		return ev, cerr(404, "JOB_NOT_FOUND", "no job %s", jobID)
	case errors.Is(err, store.ErrConflict):
		return ev, cerr(409, "JOB_NOT_OPEN", "job %s is not open (or the evidence was already recorded)", jobID)
	case err != nil:
		return ev, cerr(503, "STORE_UNAVAILABLE", "the store is unavailable").Wrap(err)
	}
	return ev, nil
}

// build makes the next event after last (nil: the first) and its evidence.
func (s *Chain) build(jobID, eventType string, praw []byte, at time.Time, last *store.JobEvent, attach AttachFunc) (store.JobEvent, []store.JobItem, error) {
	seq, seg, idx := int64(1), 0, 0
	var prev *string
	anchor := ""
	if last != nil {
		seq, seg, idx = last.Seq+1, last.Segment, last.Index+1
		prevHash := last.EventHash
		prev = &prevHash
		anchor = last.Anchor
		if idx >= s.segSize {
			if seg+1 >= MaxSegments {
				// Its bundles could not be joined by one aggregate, so
				// the job could never finish: refuse the event (the
				// gateways then withhold the call's result).
				return store.JobEvent{}, nil, cerr(409, "JOB_TOO_LONG", "job %s holds %d segments of %d events, the most one aggregate joins; finish it and start another",
					jobID, MaxSegments, s.segSize)
			}
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
	raw := e.AppendCompact(nil)
	stored := store.JobEvent{JobID: jobID, Seq: seq, Segment: seg, Index: idx, EventID: e.EventID, EventType: eventType, EventHash: h,
		Event: raw, Payload: praw, Anchor: anchor, CreatedAt: at}
	if attach == nil {
		if err := s.admit(jobID, stored, nil); err != nil {
			return store.JobEvent{}, nil, err
		}
		return stored, nil, nil
	}
	attached, declares, err := attach(&Appended{Event: e, Stored: stored, Anchor: anchor})
	if err != nil {
		return store.JobEvent{}, nil, err
	}
	if stored.Anchor == "" {
		stored.Anchor = declares
	}
	items := make([]store.JobItem, 0, len(attached))
	for _, it := range attached {
		if !ValidKind(it.Kind) {
			return store.JobEvent{}, nil, cerr(500, "EVIDENCE_KIND_INVALID", "unknown evidence kind %q", it.Kind)
		}
		item := store.JobItem{JobID: jobID, Segment: seg, Kind: it.Kind, ItemID: it.ItemID, EventHash: h, JSON: it.JSON, CreatedAt: at}
		if it.BoundTo != nil {
			item.Segment, item.EventHash = it.BoundTo.Segment, it.BoundTo.EventHash
		}
		items = append(items, item)
	}
	if err := s.admit(jobID, stored, items); err != nil {
		return store.JobEvent{}, nil, err
	}
	return stored, items, nil
}

// admit passes an event and its evidence through the gate.
func (s *Chain) admit(jobID string, ev store.JobEvent, items []store.JobItem) error {
	blobs := make([][]byte, 0, 2+len(items))
	blobs = append(blobs, ev.Event, ev.Payload)
	for _, it := range items {
		blobs = append(blobs, it.JSON)
	}
	if err := Check(s.secrets, jobID, blobs...); err != nil {
		return Refused(err)
	}
	return nil
}

// sameHead reports whether the store's last event is the one cached.
func sameHead(last, cached *store.JobEvent) bool {
	if last == nil || cached == nil {
		return last == nil && cached == nil
	}
	return last.Seq == cached.Seq && last.EventHash == cached.EventHash
}

// cachedHead returns the last event this process saw for a job (nil for
// a job known to have none) and whether it knows one.
func (s *Chain) cachedHead(jobID string) (*store.JobEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[jobID]
	return h, ok
}

func (s *Chain) remember(ev store.JobEvent) {
	s.mu.Lock()
	if len(s.heads) >= maxHeads {
		clear(s.heads)
	}
	ev.Event, ev.Payload = nil, nil // only the fields the next event needs
	s.heads[ev.JobID] = &ev
	s.mu.Unlock()
}

func (s *Chain) forget(jobID string) {
	s.mu.Lock()
	delete(s.heads, jobID)
	s.mu.Unlock()
}

const maxHeads = 10000
