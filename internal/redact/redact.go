// Package redact replaces secret values by name. Every secret a job
// fetches through the tool gateway is registered here with its label
// (<vault>/<path>); from then on the value — raw, and in its base64,
// base64url, hex, URL-encoded and JSON-escaped forms — is replaced by
// [REDACTED:<label>] in the job's later tool results, in the bodies the
// model gateway forwards for the job, and in log lines. JSON (tool
// results, forwarded bodies) is redacted by the decoded value of each of
// its strings (JSON), so no escaping hides a secret; plain text (log
// lines) by its bytes (String, Bytes, Any).
//
// The registry lives in memory: the gateways that must redact a job's
// secrets run in the process that fetched them. Nothing here is written
// to disk.
package redact

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/clawea/clawea/canon"
)

// MinLength is the shortest value registered: shorter values would match
// ordinary text everywhere. A shorter secret is still registered in its
// encoded forms that reach this length.
const MinLength = 4

// Registry holds each job's secrets.
type Registry struct {
	mu   sync.RWMutex
	jobs map[string]*secrets
}

type secrets struct {
	forms  map[string]string // form -> replacement
	labels map[string]string // form -> label
	order  []string          // the forms, longest first
	rep    *strings.Replacer
}

// New returns an empty registry.
func New() *Registry { return &Registry{jobs: map[string]*secrets{}} }

// Marker is the replacement text for a label.
func Marker(label string) string { return "[REDACTED:" + label + "]" }

// Forms returns the encodings of value that are redacted.
func Forms(value string) []string {
	b := []byte(value)
	js := string(canon.AppendString(nil, value))
	forms := []string{
		value,
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(value),
		url.PathEscape(value),
		js[1 : len(js)-1], // JSON-escaped, without the quotes
	}
	forms = append(forms, embeddedBase64(b)...)
	out := forms[:0]
	seen := map[string]bool{}
	for _, f := range forms {
		if len(f) >= MinLength && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// minEmbedded is the shortest base64 core of a value embedded in longer
// text that is registered: shorter cores would match ordinary base64 (a
// hash, a salt) by chance.
const minEmbedded = 8

// embeddedBase64 returns the base64 (standard and URL alphabets) of value
// as it appears when value is encoded inside longer text — HTTP Basic
// credentials ("user:" + value), a .env file — at each of the three byte
// alignments: the characters that only value's bytes determine, without
// the group shared with what comes before or after it.
func embeddedBase64(value []byte) []string {
	var out []string
	for k := 0; k < 3; k++ {
		n := k + len(value)
		full := n / 3 * 4 // characters of whole 3-byte groups
		start := 0
		if k > 0 {
			start = 4 // the first group mixes in the bytes before value
		}
		if full-start < minEmbedded {
			continue
		}
		buf := append(make([]byte, k, n), value...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			out = append(out, enc.EncodeToString(buf)[start:full])
		}
	}
	return out
}

// Add registers value for a job under label (e.g. "kv-prod/agent/app/db").
func (r *Registry) Add(jobID, value, label string) {
	if value == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Readers use a job's secrets after releasing the lock: a change
	// builds a new set rather than writing to the one they may hold.
	old := r.jobs[jobID]
	s := &secrets{forms: map[string]string{}, labels: map[string]string{}}
	if old != nil {
		for f, m := range old.forms {
			s.forms[f], s.labels[f] = m, old.labels[f]
		}
	}
	changed := false
	for _, f := range Forms(value) {
		if _, ok := s.forms[f]; !ok {
			s.forms[f] = Marker(label)
			s.labels[f] = label
			changed = true
		}
	}
	if changed || old == nil {
		s.order, s.rep = buildReplacer(s.forms)
		r.jobs[jobID] = s
	}
}

// buildReplacer prefers longer forms: a form that contains another is
// replaced whole. It returns the forms in that order too.
func buildReplacer(forms map[string]string) ([]string, *strings.Replacer) {
	keys := make([]string, 0, len(forms))
	for f := range forms {
		keys = append(keys, f)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, k, forms[k])
	}
	return keys, strings.NewReplacer(pairs...)
}

// Known reports whether the job has registered secrets.
func (r *Registry) Known(jobID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.jobs[jobID] != nil
}

// String redacts a job's secrets in s and reports how many replacements
// were made.
func (r *Registry) String(jobID, s string) (string, int) {
	r.mu.RLock()
	sec := r.jobs[jobID]
	r.mu.RUnlock()
	if sec == nil || s == "" {
		return s, 0
	}
	out, n := sec.scrub(s)
	if out == s {
		return s, 0
	}
	return out, max(n, 1)
}

// Bytes is String for byte slices; the input is returned as is when
// nothing matched.
func (r *Registry) Bytes(jobID string, b []byte) ([]byte, int) {
	r.mu.RLock()
	sec := r.jobs[jobID]
	r.mu.RUnlock()
	if sec == nil || len(b) == 0 {
		return b, 0
	}
	out, n := r.String(jobID, string(b))
	if n == 0 {
		return b, 0
	}
	return []byte(out), n
}

// Any redacts the secrets of every job (for log lines).
func (r *Registry) Any(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.jobs {
		s, _ = sec.scrub(s)
	}
	return s
}

// Forget drops a job's secrets (its job finished).
func (r *Registry) Forget(jobID string) {
	r.mu.Lock()
	delete(r.jobs, jobID)
	r.mu.Unlock()
}

// Handler wraps a slog handler so that no registered secret reaches a log
// line: the message and every string attribute are redacted.
func (r *Registry) Handler(h slog.Handler) slog.Handler { return &logHandler{h: h, r: r} }

type logHandler struct {
	h slog.Handler
	r *Registry
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

// Handle redacts a record. A line about one job (a job_id attribute)
// is redacted with that job's secrets only: values one job registered must
// not blank out other jobs' lines (a job could otherwise erase, say,
// another job's id from the log). A line about no job is redacted with
// every job's secrets.
func (l *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	red := l.r.Any
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "job_id" && a.Value.Kind() == slog.KindString && a.Value.String() != "" {
			job := a.Value.String()
			red = func(s string) string { out, _ := l.r.String(job, s); return out }
			return false
		}
		return true
	})
	out := slog.NewRecord(rec.Time, rec.Level, red(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(attr(a, red))
		return true
	})
	return l.h.Handle(ctx, out)
}

func (l *logHandler) attr(a slog.Attr) slog.Attr { return attr(a, l.r.Any) }

func attr(a slog.Attr, red func(string) string) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, red(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, 0, len(attrs))
		for _, g := range attrs {
			out = append(out, attr(g, red))
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, red(err.Error()))
		}
		return slog.String(a.Key, red(v.String()))
	}
	return a
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = l.attr(a)
	}
	return &logHandler{h: l.h.WithAttrs(red), r: l.r}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{h: l.h.WithGroup(name), r: l.r}
}
