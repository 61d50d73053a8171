package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clawea/clawea/token"
)

const marker = "INTERNAL-MARKER /var/lib/secret.db sql: no rows"

func TestErrorfKeepsGoErrorsPrivate(t *testing.T) {
	cause := errors.New(marker)
	e := Errorf(503, CodeStoreUnavailable, "cannot read job %s: %v", "j1", cause)
	if strings.Contains(e.Msg, "INTERNAL-MARKER") {
		t.Fatalf("public message holds the cause: %q", e.Msg)
	}
	if e.Msg != "cannot read job j1: internal error" {
		t.Fatalf("message %q", e.Msg)
	}
	if !errors.Is(e, cause) || e.Cause() != cause {
		t.Fatal("the cause is not kept")
	}
	// A wrapped *Error's public message may be used.
	inner := New(404, "X_NOT_FOUND", "no x")
	if got := Errorf(404, "Y", "outer: %v", inner).Msg; got != "outer: no x" {
		t.Fatalf("got %q", got)
	}
}

func TestSentinelsMatchByCode(t *testing.T) {
	sentinel := New(409, "JOB_NOT_OPEN", "the job is not open")
	err := fmt.Errorf("context: %w", Errorf(409, "JOB_NOT_OPEN", "job %s changed state", "j1").Wrap(errors.New("row gone")))
	if !errors.Is(err, sentinel) {
		t.Fatal("errors.Is does not match the sentinel")
	}
	if errors.Is(err, New(409, "JOB_FINISHED", "")) {
		t.Fatal("another code matched")
	}
	if errors.Is(New(1, "", ""), New(1, "", "")) {
		t.Fatal("empty codes matched")
	}
}

func decodeBody(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("body is not JSON: %q", raw)
	}
	if len(b) != 1 {
		t.Fatalf("body has keys besides error: %q", raw)
	}
	e, ok := b["error"].(map[string]any)
	if !ok || e["code"] == "" || e["message"] == nil {
		t.Fatalf("body is not the error shape: %q", raw)
	}
	return e
}

func TestWriteShapeAndPrivateCause(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{errors.New(marker), 500, CodeInternal},
		{fmt.Errorf("wrapped: %w", StoreUnavailable(errors.New(marker))), 503, CodeStoreUnavailable},
		{&token.Error{Code: token.CodeExpired, Status: 401, Msg: "the token has expired"}, 401, token.CodeExpired},
		{New(0, "ODD", "no status"), 500, "ODD"},
	} {
		h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { Write(w, r, tc.err) }), log)
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set(RequestIDHeader, "req-123")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, rec.Code, tc.status)
		}
		e := decodeBody(t, rec.Body.Bytes())
		if e["code"] != tc.code || e["request_id"] != "req-123" {
			t.Errorf("%v: body %s", tc.err, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "INTERNAL-MARKER") || strings.Contains(rec.Body.String(), "sql") {
			t.Errorf("%v: body leaks the cause: %s", tc.err, rec.Body)
		}
		if rec.Header().Get(RequestIDHeader) != "req-123" || rec.Header().Get("X-Clawea-Error") != tc.code {
			t.Errorf("headers %v", rec.Header())
		}
	}
	if !strings.Contains(logs.String(), "INTERNAL-MARKER") || !strings.Contains(logs.String(), "request_id=req-123") {
		t.Fatalf("the cause is not logged with the request id:\n%s", logs.String())
	}
}

func TestRequestIDGeneratedWhenMalformed(t *testing.T) {
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if RequestID(r.Context()) == "" {
			t.Error("no request id in the context")
		}
	}), nil)
	for _, in := range []string{"", "bad id with spaces", strings.Repeat("a", 65), "x\u00e9"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(RequestIDHeader, in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(RequestIDHeader)
		if got == "" || got == in || !validRequestID(got) {
			t.Errorf("in %q: out %q", in, got)
		}
	}
}

func TestMuxAnswersUnknownRoutesInShape(t *testing.T) {
	m := NewMux()
	m.HandleFunc("GET /a", func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, map[string]any{"ok": true}) })
	m.HandleFunc("POST /b/{id}", func(w http.ResponseWriter, r *http.Request) {})
	if got := strings.Join(m.Routes(), ","); got != "GET /a,POST /b/{id}" {
		t.Fatalf("routes %s", got)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{{"GET", "/nope", 404, CodeNotFound}, {"DELETE", "/a", 405, CodeMethodNotAllowed}} {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || decodeBody(t, rec.Body.Bytes())["code"] != tc.code {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
}

func TestCredential(t *testing.T) {
	for _, tc := range []struct {
		headers map[string][]string
		want    string
		code    string
	}{
		{map[string][]string{}, "", ""},
		{map[string][]string{"Authorization": {"Bearer abc"}}, "abc", ""},
		{map[string][]string{"X-Cst": {"abc"}, "Authorization": {"bearer abc"}}, "abc", ""},
		{map[string][]string{"X-Cst": {"abc"}, "Authorization": {"Bearer xyz"}}, "", CodeStrictAuthHeaders},
		{map[string][]string{"X-Cst": {"abc"}, "X-Scoped-Token": {"xyz"}}, "", CodeStrictAuthHeaders},
		{map[string][]string{"X-Scoped-Token": {"xyz"}, "Authorization": {"Bearer abc"}}, "", CodeStrictAuthHeaders},
		{map[string][]string{"Authorization": {"Bearer a", "Bearer b"}}, "", CodeStrictAuthHeaders},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for k, vs := range tc.headers {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		got, e := Credential(r)
		code := ""
		if e != nil {
			code = e.Code
		}
		if got != tc.want || code != tc.code {
			t.Errorf("%v: got %q %q", tc.headers, got, code)
		}
	}
}

type fakeVerifier struct{ jobs map[string]string } // token -> job

func (f fakeVerifier) Verify(ctx context.Context, tok string, req token.Request) (*token.Verified, error) {
	job, ok := f.jobs[tok]
	if !ok {
		return nil, &token.Error{Code: token.CodeMalformed, Status: 401, Msg: "malformed"}
	}
	if req.JobID != "" && req.JobID != job {
		return nil, &token.Error{Code: token.CodeJobMismatch, Status: 403, Msg: "other job"}
	}
	return &token.Verified{JobID: job, Claims: token.Claims{Scope: []string{"job:events"}}}, nil
}

func TestAuthGuards(t *testing.T) {
	a := &Auth{AdminToken: "admin-secret", Tokens: fakeVerifier{map[string]string{"tok-j1": "j1"}}}
	var actor string
	ok := func(w http.ResponseWriter, r *http.Request) { actor = Actor(r.Context()); w.WriteHeader(204) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin", a.Admin(ok))
	mux.HandleFunc("GET /jobs/{id}", a.AdminOrJob("id", "job:events")(ok))
	mux.HandleFunc("GET /job", a.Job("job:events")(ok))
	for _, tc := range []struct {
		path    string
		headers map[string]string
		status  int
		actor   string
	}{
		{"/admin", map[string]string{"Authorization": "Bearer admin-secret"}, 204, ActorAdminToken},
		{"/admin", map[string]string{"Authorization": "Bearer tok-j1"}, 401, ""},
		{"/admin", nil, 401, ""},
		{"/admin", map[string]string{"Authorization": "Bearer admin-secret", "X-CST": "tok-j1"}, 400, ""},
		{"/jobs/j1", map[string]string{"X-CST": "tok-j1"}, 204, "job:j1"},
		{"/jobs/j2", map[string]string{"X-CST": "tok-j1"}, 403, ""},
		{"/jobs/j1", map[string]string{"X-CST": "tok-j1", "X-Run-Id": "j2.s1"}, 403, ""},
		{"/jobs/j2", map[string]string{"Authorization": "Bearer admin-secret"}, 204, ActorAdminToken},
		{"/jobs/j1", map[string]string{"X-CST": "garbage"}, 401, ""},
		{"/job", map[string]string{"X-CST": "tok-j1", "X-Run-Id": "j1.s3"}, 204, "job:j1"},
		{"/job", map[string]string{"X-CST": "tok-j1", "X-Run-Id": "j9"}, 403, ""},
		{"/job", map[string]string{"Authorization": "Bearer admin-secret"}, 401, ""},
	} {
		actor = ""
		r := httptest.NewRequest("GET", tc.path, nil)
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if rec.Code != tc.status || actor != tc.actor {
			t.Errorf("%s %v: %d actor %q, want %d %q (%s)", tc.path, tc.headers, rec.Code, actor, tc.status, tc.actor, rec.Body)
		}
		if rec.Code >= 400 {
			decodeBody(t, rec.Body.Bytes())
		}
	}
}

func TestSDKCredential(t *testing.T) {
	const tok = "aaa.bbb.ccc"
	for _, tc := range []struct {
		headers map[string]string
		want    string
		code    string
	}{
		{map[string]string{"Authorization": "Bearer " + tok}, tok, ""},
		{map[string]string{"X-Api-Key": tok}, tok, ""},
		{map[string]string{"X-CST": tok, "Authorization": "Bearer sk-placeholder"}, tok, ""},
		{map[string]string{"Authorization": "Bearer sk-live-provider-key"}, "", CodeProviderKeyRefused},
		{map[string]string{"X-CST": tok, "Authorization": "Bearer x.y.z"}, "", CodeStrictAuthHeaders},
		{map[string]string{"X-CST": tok, "X-Scoped-Token": "x.y.z"}, "", CodeStrictAuthHeaders},
		{map[string]string{}, "", token.CodeRequired},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		got, e := SDKCredential(r)
		code := ""
		if e != nil {
			code = e.Code
		}
		if got != tc.want || code != tc.code {
			t.Errorf("%v: %q %q", tc.headers, got, code)
		}
	}
}

func TestCheckPolicyHash(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if CheckPolicyHash(r, "abc") != nil {
		t.Fatal("no header refused")
	}
	r.Header.Set("X-Policy-Hash", "abc")
	if CheckPolicyHash(r, "abc") != nil {
		t.Fatal("matching header refused")
	}
	r.Header.Set("X-Policy-Hash", "abd")
	if e := CheckPolicyHash(r, "abc"); e == nil || e.Code != CodePolicyHashMismatch {
		t.Fatal("mismatch admitted")
	}
}

func FuzzCredential(f *testing.F) {
	f.Add("abc", "", "Bearer abc", "j1.s2")
	f.Add("a", "b", "", "")
	f.Add("", "", "bearer  x ", ".s")
	f.Fuzz(func(t *testing.T, cst, scoped, authz, run string) {
		r := &http.Request{Header: http.Header{}}
		for k, v := range map[string]string{"X-CST": cst, "X-Scoped-Token": scoped, "Authorization": authz} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		if c, e := SDKCredential(r); e == nil && (c == "" || c != stripBearer(cst) && c != stripBearer(scoped) && c != stripBearer(authz)) {
			t.Fatalf("SDKCredential returned %q from none of the headers", c)
		}
		got, e := Credential(r)
		if e != nil {
			if e.Code != CodeStrictAuthHeaders || got != "" {
				t.Fatalf("error %v with %q", e, got)
			}
			return
		}
		// Every present, non-empty header carries the credential returned.
		for _, v := range []string{cst, scoped, authz} {
			if s := stripBearer(v); s != "" && s != got {
				t.Fatalf("header %q differs from the credential %q", v, got)
			}
		}
		if j := RunJob(run); len(j) > len(strings.TrimSpace(run)) {
			t.Fatalf("RunJob grew %q to %q", run, j)
		}
		if id := r.Header.Get(RequestIDHeader); validRequestID(id) && len(id) > 64 {
			t.Fatal("long id accepted")
		}
	})
}

// TestRepeatedHeadersRefused: every header a request binds itself with is
// read once, so a repeated one is refused by both credential readers
// rather than checked on its first copy only.
func TestRepeatedHeadersRefused(t *testing.T) {
	const tok = "a.b.c"
	for _, h := range []string{"X-Run-Id", "X-Policy-Hash", "X-Client-DID", "X-Event-Hash", "X-CST", "Authorization", "X-Api-Key"} {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("X-CST", tok)
		r.Header.Add(h, tok)
		r.Header.Add(h, "other")
		if _, e := SDKCredential(r); e == nil || e.Code != CodeStrictAuthHeaders {
			t.Errorf("SDKCredential with %s repeated: %v", h, e)
		}
		if _, e := Credential(r); e == nil || e.Code != CodeStrictAuthHeaders {
			t.Errorf("Credential with %s repeated: %v", h, e)
		}
	}
}

func TestRunJob(t *testing.T) {
	for in, want := range map[string]string{
		"job_1": "job_1", "job_1.s0": "job_1", "job_1.s12": "job_1", " job_1.s3 ": "job_1",
		"job_1.s": "job_1.s", "job_1.s../../x": "job_1.s../../x", "job_1.sx": "job_1.sx", "job_1, job_2": "job_1, job_2",
	} {
		if got := RunJob(in); got != want {
			t.Errorf("RunJob(%q) = %q, want %q", in, got, want)
		}
	}
}
