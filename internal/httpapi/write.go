package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyLogger
	keyPrincipal
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-Id"

// RequestID returns the request id of ctx ("" outside Middleware).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(keyLogger).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// validRequestID accepts a caller's id of 1 to 64 characters from
// [A-Za-z0-9._:-]; anything else is replaced by a fresh id.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Middleware gives every request an id (the caller's X-Request-Id when
// well formed, else a fresh one), echoes it in the response, sets
// X-Content-Type-Options: nosniff, and makes log the logger Write reports
// private causes to.
func Middleware(h http.Handler, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		ctx := context.WithValue(r.Context(), keyRequestID, id)
		ctx = context.WithValue(ctx, keyLogger, log)
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"error":{"code":"INTERNAL","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(raw, '\n'))
}

// Prepare maps err to an *Error for r (From), stamps the request id, and
// logs the private cause (and every 5xx) with it. Surfaces that need a
// different envelope (the model gateway's SDK-compatible one, MCP) call
// it, then write the returned error's public fields.
func Prepare(r *http.Request, err error) *Error {
	e := From(err)
	if e == nil {
		e = Internal(nil)
	}
	c := *e
	c.RequestID = RequestID(r.Context())
	if c.cause != nil || c.Status >= 500 {
		lvl := slog.LevelWarn
		if c.Status >= 500 {
			lvl = slog.LevelError
		}
		attrs := []any{"request_id", c.RequestID, "method", r.Method, "path", r.URL.Path, "status", c.Status, "code", c.Code}
		if c.cause != nil {
			attrs = append(attrs, "err", c.cause.Error())
		}
		logger(r.Context()).Log(r.Context(), lvl, "request failed", attrs...)
	}
	if c.Status < 400 || c.Status > 599 {
		c.Status = http.StatusInternalServerError
	}
	return &c
}

// Write answers err in the one error shape, {"error":{"code","message",
// ...}}, with X-Clawea-Error set to the code.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	e := Prepare(r, err)
	w.Header().Set("X-Clawea-Error", e.Code)
	WriteJSON(w, e.Status, Body{Error: e})
}

// Router is what a role registers its routes on (an *http.ServeMux or a
// *Mux).
type Router interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// Mux is an http.ServeMux that records its patterns (so tests can walk
// every route) and answers unmatched paths and methods in the one error
// shape.
type Mux struct {
	mux    *http.ServeMux
	mu     sync.Mutex
	routes []string
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{mux: http.NewServeMux()} }

// Handle registers h for pattern.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mux.Handle(pattern, h)
	m.mu.Lock()
	m.routes = append(m.routes, pattern)
	m.mu.Unlock()
}

// HandleFunc registers h for pattern.
func (m *Mux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Routes lists the registered patterns, sorted.
func (m *Mux) Routes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.routes)
	slices.Sort(out)
	return out
}

// ServeHTTP dispatches r; a path or method no route serves is answered
// 404 NOT_FOUND or 405 METHOD_NOT_ALLOWED in the error shape.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.mux.Handler(r)
	if pattern != "" {
		m.mux.ServeHTTP(w, r) // sets the path values
		return
	}
	rec := &statusOnly{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	switch rec.status {
	case http.StatusMethodNotAllowed:
		Write(w, r, New(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "this route does not accept "+r.Method))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := rec.header.Get("Location"); loc != "" {
			w.Header().Set("Location", loc)
		}
		w.WriteHeader(rec.status)
	default:
		Write(w, r, New(http.StatusNotFound, CodeNotFound, "no such route"))
	}
}

// statusOnly captures the status and headers of ServeMux's own answers.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusOnly) WriteHeader(c int) {
	if s.status == 0 {
		s.status = c
	}
}
