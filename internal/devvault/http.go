package devvault

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBodyBytes bounds request bodies: a 25 KiB value fully \u-escaped is
// about 150 KiB.
const maxBodyBytes = 256 << 10

// Wire shapes (SecretBundle, DeletedSecretBundle, SecretItem,
// DeletedSecretItem and the list envelope), as azsecrets decodes them.

type wireAttributes struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

type wireSecret struct {
	Value       *string           `json:"value,omitempty"`
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Attributes  wireAttributes    `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
}

type wireDeleted struct {
	wireSecret
	RecoveryID         string `json:"recoveryId"`
	DeletedDate        int64  `json:"deletedDate"`
	ScheduledPurgeDate int64  `json:"scheduledPurgeDate"`
}

type wireList struct {
	Value    []any   `json:"value"`
	NextLink *string `json:"nextLink"`
}

type wireError struct {
	Error wireErrorBody `json:"error"`
}

type wireErrorBody struct {
	Code       string         `json:"code"`
	Message    string         `json:"message"`
	InnerError *wireErrorBody `json:"innererror,omitempty"`
}

// request is one parsed call, with the host used to build ids.
type request struct {
	w          http.ResponseWriter
	r          *http.Request
	base       string // https://<host>
	apiVersion string
	query      url.Values
	log        *slog.Logger
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate",
			`Bearer authorization="https://login.local/`+s.tenant+`", resource="https://vault.local"`)
		writeError(w, &apiError{status: http.StatusUnauthorized, code: "Unauthorized",
			message: "a valid bearer token is required"})
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, badParameter("malformed query string"))
		return
	}
	apiVersion := q.Get("api-version")
	if apiVersion == "" || len(apiVersion) > 32 || strings.ContainsAny(apiVersion, "&#") {
		writeError(w, badParameter("the api-version query parameter is missing or invalid"))
		return
	}
	host := r.Host
	if host == "" {
		host = "127.0.0.1"
	}
	req := &request{w: w, r: r, base: "https://" + host, apiVersion: apiVersion, query: q, log: s.log}

	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeError(w, badParameter("malformed request path"))
		return
	}
	if f, ok := s.fault(faultName(segs)); ok {
		s.serveFault(w, r, faultName(segs), f)
		return
	}
	m := r.Method
	switch {
	case len(segs) == 1 && segs[0] == "secrets":
		if allow(w, m, http.MethodGet) {
			s.listSecrets(req)
		}
	case len(segs) == 2 && segs[0] == "secrets":
		switch m {
		case http.MethodPut:
			s.setSecret(req, segs[1])
		case http.MethodGet:
			s.getSecret(req, segs[1], "")
		case http.MethodDelete:
			s.deleteSecret(req, segs[1])
		default:
			allow(w, m, http.MethodGet, http.MethodPut, http.MethodDelete)
		}
	case len(segs) == 3 && segs[0] == "secrets" && segs[2] == "versions":
		if allow(w, m, http.MethodGet) {
			s.listVersions(req, segs[1])
		}
	case len(segs) == 3 && segs[0] == "secrets":
		if allow(w, m, http.MethodGet) {
			s.getSecret(req, segs[1], segs[2])
		}
	case len(segs) == 1 && segs[0] == "deletedsecrets":
		if allow(w, m, http.MethodGet) {
			s.listDeleted(req)
		}
	case len(segs) == 2 && segs[0] == "deletedsecrets":
		switch m {
		case http.MethodGet:
			s.getDeleted(req, segs[1])
		case http.MethodDelete:
			s.purge(req, segs[1])
		default:
			allow(w, m, http.MethodGet, http.MethodDelete)
		}
	case len(segs) == 3 && segs[0] == "deletedsecrets" && segs[2] == "recover":
		if allow(w, m, http.MethodPost) {
			s.recover(req, segs[1])
		}
	default:
		writeError(w, &apiError{status: http.StatusNotFound, code: "NotFound",
			message: "the dev vault does not serve this path"})
	}
}

// authorized checks "Authorization: Bearer <token>" in constant time.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(prefix):])), []byte(s.token)) == 1
}

// splitPath splits an escaped path into unescaped segments. One trailing
// slash is ignored except after a secret name, where "/secrets/x/" means
// the latest version (the SDK sends that for an empty version). Empty
// segments elsewhere, or bad escapes, make it fail.
func splitPath(escaped string) ([]string, bool) {
	p := strings.TrimPrefix(escaped, "/")
	if p == "" {
		return nil, true
	}
	parts := strings.Split(p, "/")
	if n := len(parts); n > 1 && parts[n-1] == "" {
		if n == 3 && parts[0] == "secrets" {
			parts = parts[:2] // GET /secrets/{name}/ is the latest version
		} else {
			parts = parts[:n-1]
		}
	}
	for i, part := range parts {
		u, err := url.PathUnescape(part)
		if err != nil || u == "" {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

// allow answers 405 unless method is one of the allowed ones.
func allow(w http.ResponseWriter, method string, allowed ...string) bool {
	for _, a := range allowed {
		if method == a {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed",
		message: "method " + clip(method) + " is not allowed here"})
	return false
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := wireError{Error: wireErrorBody{Code: e.code, Message: e.message}}
	if e.inner != "" {
		body.Error.InnerError = &wireErrorBody{Code: e.inner}
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil { // cannot happen with the types above
		status, data = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalError","message":"encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (q *request) fail(e *apiError) {
	if e.cause != nil {
		q.log.Error("devvault: request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", e.cause)
	}
	writeError(q.w, e)
}

func (q *request) secretID(name, ver string) string {
	id := q.base + "/secrets/" + name
	if ver != "" {
		id += "/" + ver
	}
	return id
}

func attributes(v *version) wireAttributes {
	return wireAttributes{
		Enabled: v.Enabled, NotBefore: v.NotBefore, Expires: v.Expires,
		Created: v.Created, Updated: v.Updated,
		RecoveryLevel: RecoveryLevel, RecoverableDays: RetentionDays,
	}
}

func (q *request) bundle(e *secret, v *version, withValue bool) wireSecret {
	b := wireSecret{ID: q.secretID(e.Name, v.ID), ContentType: v.ContentType, Attributes: attributes(v), Tags: v.Tags}
	if withValue {
		val := v.Value
		b.Value = &val
	}
	return b
}

// item is a SecretItem (no version in the id) for the latest version.
func (q *request) item(e *secret) wireSecret {
	v := e.latest()
	return wireSecret{ID: q.secretID(e.Name, ""), ContentType: v.ContentType, Attributes: attributes(v), Tags: v.Tags}
}

func (q *request) deletedBundle(e *secret, b wireSecret) wireDeleted {
	return wireDeleted{
		wireSecret:         b,
		RecoveryID:         q.base + "/deletedsecrets/" + e.Name,
		DeletedDate:        e.Deleted.DeletedDate,
		ScheduledPurgeDate: e.Deleted.ScheduledPurgeDate,
	}
}

// nextLink builds the URL of the next page, or nil at the end.
func (q *request) nextLink(path, token string, size int) *string {
	if token == "" {
		return nil
	}
	l := q.base + path + "?api-version=" + url.QueryEscape(q.apiVersion) +
		"&$skiptoken=" + url.QueryEscape(token) + "&maxresults=" + strconv.Itoa(size)
	return &l
}

// pageSize reads maxresults (1..MaxPageSize), defaulting to the server's.
func (s *Server) pageSizeOf(q *request) (int, *apiError) {
	m := q.query.Get("maxresults")
	if m == "" {
		return s.pageSize, nil
	}
	n, err := strconv.Atoi(m)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, badParameter("maxresults must be an integer from 1 to %d", MaxPageSize)
	}
	return n, nil
}

func (s *Server) setSecret(q *request, name string) {
	body, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			q.fail(&apiError{status: http.StatusRequestEntityTooLarge, code: "BadParameter",
				message: "request body is too large"})
			return
		}
		q.fail(badParameter("reading request body failed"))
		return
	}
	var p setParams
	if err := json.Unmarshal(body, &p); err != nil {
		q.fail(badParameter("request body is not a valid SetSecret JSON object"))
		return
	}
	s.mu.Lock()
	e, v, aerr := s.setLocked(name, p)
	var out wireSecret
	if aerr == nil {
		out = q.bundle(e, v, true)
	}
	s.mu.Unlock()
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) getSecret(q *request, name, ver string) {
	s.mu.Lock()
	e, v, aerr := s.getLocked(name, ver)
	var out wireSecret
	if aerr == nil {
		out = q.bundle(e, v, true)
	}
	s.mu.Unlock()
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) deleteSecret(q *request, name string) {
	s.mu.Lock()
	e, aerr := s.deleteLocked(name)
	var out wireDeleted
	if aerr == nil {
		out = q.deletedBundle(e, q.bundle(e, e.latest(), false))
	}
	s.mu.Unlock()
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) getDeleted(q *request, name string) {
	s.mu.Lock()
	e, aerr := s.getDeletedLocked(name)
	var out wireDeleted
	if aerr == nil {
		out = q.deletedBundle(e, q.bundle(e, e.latest(), false))
	}
	s.mu.Unlock()
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) recover(q *request, name string) {
	s.mu.Lock()
	e, aerr := s.recoverLocked(name)
	var out wireSecret
	if aerr == nil {
		out = q.bundle(e, e.latest(), false)
	}
	s.mu.Unlock()
	if aerr != nil {
		q.fail(aerr)
		return
	}
	writeJSON(q.w, http.StatusOK, out)
}

func (s *Server) purge(q *request, name string) {
	s.mu.Lock()
	aerr := s.purgeLocked(name)
	s.mu.Unlock()
	if aerr != nil {
		q.fail(aerr)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// listSecrets and listDeleted page by name: $skiptoken is the last
// (lower-cased) name of the previous page.
func (s *Server) listSecrets(q *request) { s.listByName(q, false) }

func (s *Server) listDeleted(q *request) { s.listByName(q, true) }

func (s *Server) listByName(q *request, deleted bool) {
	size, aerr := s.pageSizeOf(q)
	if aerr != nil {
		q.fail(aerr)
		return
	}
	after := q.query.Get("$skiptoken")
	if after != "" && (!validName(after) || after != key(after)) {
		q.fail(badParameter("invalid $skiptoken"))
		return
	}
	s.mu.Lock()
	page, next := s.pageLocked(deleted, after, size)
	out := wireList{Value: make([]any, 0, len(page))}
	for _, e := range page {
		if deleted {
			out.Value = append(out.Value, q.deletedBundle(e, q.item(e)))
		} else {
			out.Value = append(out.Value, q.item(e))
		}
	}
	s.mu.Unlock()
	path := "/secrets"
	if deleted {
		path = "/deletedsecrets"
	}
	out.NextLink = q.nextLink(path, next, size)
	writeJSON(q.w, http.StatusOK, out)
}

// listVersions pages by position: $skiptoken is the offset of the next
// version, oldest first. An unknown or deleted name gives an empty list.
func (s *Server) listVersions(q *request, name string) {
	if !validName(name) {
		q.fail(badName(name))
		return
	}
	size, aerr := s.pageSizeOf(q)
	if aerr != nil {
		q.fail(aerr)
		return
	}
	offset := 0
	if t := q.query.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || len(t) > 9 {
			q.fail(badParameter("invalid $skiptoken"))
			return
		}
		offset = n
	}
	s.mu.Lock()
	s.sweepLocked()
	out := wireList{Value: []any{}}
	next := ""
	if e := s.active(name); e != nil && offset < len(e.Versions) {
		end := min(offset+size, len(e.Versions))
		for _, v := range e.Versions[offset:end] {
			out.Value = append(out.Value, q.bundle(e, v, false))
		}
		if end < len(e.Versions) {
			next = strconv.Itoa(end)
		}
	}
	s.mu.Unlock()
	out.NextLink = q.nextLink("/secrets/"+name+"/versions", next, size)
	writeJSON(q.w, http.StatusOK, out)
}

// faultName is the secret name a request is about, for faults: the second
// segment of /secrets/{name}/... and /deletedsecrets/{name}/..., "" for a
// listing.
func faultName(segs []string) string {
	if len(segs) >= 2 && (segs[0] == "secrets" || segs[0] == "deletedsecrets") {
		return segs[1]
	}
	return ""
}
