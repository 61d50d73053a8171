// Package metrics keeps counters and histograms and writes them in the
// Prometheus text exposition format for GET /metrics. It is deliberately
// small: labelled counters and fixed-bucket histograms, nothing else.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Registry holds metrics.
type Registry struct {
	mu      sync.Mutex
	metrics []writer
}

type writer interface {
	write(w io.Writer)
	name() string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) add(m writer) {
	r.mu.Lock()
	r.metrics = append(r.metrics, m)
	r.mu.Unlock()
}

// Write writes every metric, sorted by name.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	ms := append([]writer(nil), r.metrics...)
	r.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].name() < ms[j].name() })
	for _, m := range ms {
		m.write(w)
	}
}

// Handler serves the registry.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.Write(w)
	})
}

type series[T any] struct {
	mu     sync.RWMutex
	byKey  map[string]*T
	labels map[string][]string
	make   func() *T
}

func (s *series[T]) get(values []string) *T {
	key := strings.Join(values, "\xff")
	s.mu.RLock()
	v := s.byKey[key]
	s.mu.RUnlock()
	if v != nil {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v = s.byKey[key]; v == nil {
		v = s.make()
		s.byKey[key] = v
		s.labels[key] = append([]string(nil), values...)
	}
	return v
}

func (s *series[T]) sorted() []string {
	s.mu.RLock()
	keys := make([]string, 0, len(s.byKey))
	for k := range s.byKey {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	return keys
}

func labelText(names, values []string, extra ...string) string {
	if len(names) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", n, values[i])
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", extra[i], extra[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// CounterVec is a counter with labels.
type CounterVec struct {
	n, help string
	labels  []string
	s       series[atomic.Int64]
}

// Counter registers a counter.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{n: name, help: help, labels: labels, s: series[atomic.Int64]{byKey: map[string]*atomic.Int64{},
		labels: map[string][]string{}, make: func() *atomic.Int64 { return new(atomic.Int64) }}}
	r.add(c)
	return c
}

// Add adds n to the series with the given label values.
func (c *CounterVec) Add(n int64, values ...string) { c.s.get(values).Add(n) }

// Inc adds one.
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

// Value returns a series' count.
func (c *CounterVec) Value(values ...string) int64 { return c.s.get(values).Load() }

func (c *CounterVec) name() string { return c.n }

func (c *CounterVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.n, c.help, c.n)
	for _, k := range c.s.sorted() {
		c.s.mu.RLock()
		v, l := c.s.byKey[k], c.s.labels[k]
		c.s.mu.RUnlock()
		fmt.Fprintf(w, "%s%s %d\n", c.n, labelText(c.labels, l), v.Load())
	}
}

// HistogramVec is a histogram with labels.
type HistogramVec struct {
	n, help string
	labels  []string
	buckets []float64
	s       series[histogram]
}

type histogram struct {
	mu     sync.Mutex
	counts []uint64
	count  uint64
	sum    float64
}

// Histogram registers a histogram with upper bucket bounds.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	h := &HistogramVec{n: name, help: help, labels: labels, buckets: buckets}
	h.s = series[histogram]{byKey: map[string]*histogram{}, labels: map[string][]string{},
		make: func() *histogram { return &histogram{counts: make([]uint64, len(buckets))} }}
	r.add(h)
	return h
}

// Observe records v.
func (h *HistogramVec) Observe(v float64, values ...string) {
	s := h.s.get(values)
	s.mu.Lock()
	for i, b := range h.buckets {
		if v <= b {
			s.counts[i]++
		}
	}
	s.count++
	s.sum += v
	s.mu.Unlock()
}

func (h *HistogramVec) name() string { return h.n }

func (h *HistogramVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.n, h.help, h.n)
	for _, k := range h.s.sorted() {
		h.s.mu.RLock()
		s, l := h.s.byKey[k], h.s.labels[k]
		h.s.mu.RUnlock()
		s.mu.Lock()
		for i, b := range h.buckets {
			fmt.Fprintf(w, "%s_bucket%s %d\n", h.n, labelText(h.labels, l, "le", formatBound(b)), s.counts[i])
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", h.n, labelText(h.labels, l, "le", "+Inf"), s.count)
		fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", h.n, labelText(h.labels, l), s.sum, h.n, labelText(h.labels, l), s.count)
		s.mu.Unlock()
	}
}

func formatBound(b float64) string {
	if math.IsInf(b, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", b)
}
