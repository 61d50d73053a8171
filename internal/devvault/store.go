package devvault

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// version is one stored version of a secret. Times are unix seconds, as on
// the wire. The JSON tags are the persistence format.
type version struct {
	ID          string            `json:"id"` // 32 lower-case hex digits
	Value       string            `json:"value"`
	ContentType string            `json:"contentType,omitempty"`
	Enabled     bool              `json:"enabled"`
	NotBefore   *int64            `json:"nbf,omitempty"`
	Expires     *int64            `json:"exp,omitempty"`
	Created     int64             `json:"created"`
	Updated     int64             `json:"updated"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// deletion marks a soft-deleted secret.
type deletion struct {
	DeletedDate        int64 `json:"deletedDate"`
	ScheduledPurgeDate int64 `json:"scheduledPurgeDate"`
}

// secret is a name with its versions, oldest first; the last is the latest.
type secret struct {
	Name     string     `json:"name"` // as first created (names are case-insensitive)
	Versions []*version `json:"versions"`
	Deleted  *deletion  `json:"deleted,omitempty"`
}

func (e *secret) latest() *version { return e.Versions[len(e.Versions)-1] }

// setParams is the body of SetSecret (PUT /secrets/{name}).
type setParams struct {
	Value       *string `json:"value"`
	ContentType *string `json:"contentType"`
	Attributes  *struct {
		Enabled   *bool  `json:"enabled"`
		NotBefore *int64 `json:"nbf"`
		Expires   *int64 `json:"exp"`
	} `json:"attributes"`
	Tags map[string]*string `json:"tags"`
}

// apiError is a Key Vault error response: {"error":{"code":..,"message":..,"innererror":{"code":..}}}.
type apiError struct {
	status  int
	code    string
	message string
	inner   string
	cause   error // server-side failure, kept out of the response
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	return "devvault: " + e.code + ": " + e.message
}

func badParameter(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "BadParameter", message: fmt.Sprintf(format, args...)}
}

func badName(name string) *apiError {
	return badParameter("invalid secret name %q: want 1 to 127 letters, digits and '-'", clip(name))
}

func secretNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "SecretNotFound",
		message: fmt.Sprintf("secret %s was not found in this vault; a recently deleted secret can be recovered", name)}
}

func versionNotFound(name, ver string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "SecretNotFound",
		message: fmt.Sprintf("secret %s has no version %s", name, clip(ver))}
}

func deletedNotFound(name string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "SecretNotFound",
		message: fmt.Sprintf("deleted secret %s was not found in this vault", name)}
}

func deletedConflict(name string) *apiError {
	return &apiError{status: http.StatusConflict, code: "Conflict", inner: "ObjectIsDeletedButRecoverable",
		message: fmt.Sprintf("secret %s is deleted but recoverable; recover or purge it before reusing the name", name)}
}

func internalError(err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: "InternalError",
		message: "the dev vault could not save its data; see its log", cause: err}
}

// clip shortens attacker-controlled text before it is echoed in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func validName(name string) bool {
	if len(name) == 0 || len(name) > 127 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validVersion(v string) bool {
	if len(v) != 32 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

func newVersionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func key(name string) string { return strings.ToLower(name) }

// The methods below expect s.mu to be held.

// active returns the live (not deleted) secret called name.
func (s *Server) active(name string) *secret {
	if e := s.secrets[key(name)]; e != nil && e.Deleted == nil {
		return e
	}
	return nil
}

// deleted returns the soft-deleted secret called name.
func (s *Server) deleted(name string) *secret {
	if e := s.secrets[key(name)]; e != nil && e.Deleted != nil {
		return e
	}
	return nil
}

// sweepLocked purges deleted secrets whose retention has ended.
func (s *Server) sweepLocked() {
	now := s.now().Unix()
	swept := false
	for k, e := range s.secrets {
		if e.Deleted != nil && e.Deleted.ScheduledPurgeDate <= now {
			s.versions -= len(e.Versions)
			delete(s.secrets, k)
			swept = true
		}
	}
	if swept {
		if err := s.saveLocked(); err != nil {
			s.log.Error("devvault: persisting after purge of expired secrets", "err", err)
		}
	}
}

func (s *Server) setLocked(name string, p setParams) (*secret, *version, *apiError) {
	if !validName(name) {
		return nil, nil, badName(name)
	}
	s.sweepLocked()
	if p.Value == nil {
		return nil, nil, badParameter("property value is required")
	}
	if len(*p.Value) > MaxValueBytes {
		return nil, nil, badParameter("secret value is %d bytes; the limit is %d", len(*p.Value), MaxValueBytes)
	}
	v := &version{Value: *p.Value, Enabled: true}
	if p.ContentType != nil {
		if len(*p.ContentType) > 255 {
			return nil, nil, badParameter("contentType is longer than 255 bytes")
		}
		v.ContentType = *p.ContentType
	}
	if a := p.Attributes; a != nil {
		if a.Enabled != nil {
			v.Enabled = *a.Enabled
		}
		v.NotBefore, v.Expires = a.NotBefore, a.Expires
	}
	if len(p.Tags) > 15 {
		return nil, nil, badParameter("at most 15 tags are allowed")
	}
	for k, val := range p.Tags {
		if k == "" || len(k) > 512 {
			return nil, nil, badParameter("tag names must be 1 to 512 bytes")
		}
		if v.Tags == nil {
			v.Tags = map[string]string{}
		}
		if val != nil {
			if len(*val) > 256 {
				return nil, nil, badParameter("tag values must be at most 256 bytes")
			}
			v.Tags[k] = *val
		} else {
			v.Tags[k] = ""
		}
	}
	e := s.secrets[key(name)]
	if e != nil && e.Deleted != nil {
		return nil, nil, deletedConflict(e.Name)
	}
	if s.versions >= s.maxSecrets {
		return nil, nil, &apiError{status: http.StatusBadRequest, code: "QuotaExceeded",
			message: fmt.Sprintf("the dev vault holds at most %d secret versions", s.maxSecrets)}
	}
	now := s.now().Unix()
	v.ID, v.Created, v.Updated = newVersionID(), now, now
	if e == nil {
		e = &secret{Name: name}
		s.secrets[key(name)] = e
	}
	e.Versions = append(e.Versions, v)
	s.versions++
	if err := s.saveLocked(); err != nil {
		return nil, nil, internalError(err)
	}
	return e, v, nil
}

func (s *Server) getLocked(name, ver string) (*secret, *version, *apiError) {
	if !validName(name) {
		return nil, nil, badName(name)
	}
	s.sweepLocked()
	e := s.active(name)
	if e == nil {
		return nil, nil, secretNotFound(name)
	}
	v := e.latest()
	if ver != "" {
		v = nil
		lv := strings.ToLower(ver)
		for _, c := range e.Versions {
			if c.ID == lv {
				v = c
				break
			}
		}
		if v == nil {
			return nil, nil, versionNotFound(e.Name, ver)
		}
	}
	if !v.Enabled {
		return nil, nil, &apiError{status: http.StatusForbidden, code: "Forbidden", inner: "SecretDisabled",
			message: "operation get is not allowed on a disabled secret"}
	}
	return e, v, nil
}

func (s *Server) deleteLocked(name string) (*secret, *apiError) {
	if !validName(name) {
		return nil, badName(name)
	}
	s.sweepLocked()
	e := s.active(name)
	if e == nil {
		return nil, secretNotFound(name)
	}
	now := s.now().Unix()
	e.Deleted = &deletion{DeletedDate: now, ScheduledPurgeDate: now + RetentionDays*24*3600}
	if err := s.saveLocked(); err != nil {
		return nil, internalError(err)
	}
	return e, nil
}

func (s *Server) getDeletedLocked(name string) (*secret, *apiError) {
	if !validName(name) {
		return nil, badName(name)
	}
	s.sweepLocked()
	e := s.deleted(name)
	if e == nil {
		return nil, deletedNotFound(name)
	}
	return e, nil
}

func (s *Server) recoverLocked(name string) (*secret, *apiError) {
	e, aerr := s.getDeletedLocked(name)
	if aerr != nil {
		return nil, aerr
	}
	e.Deleted = nil
	if err := s.saveLocked(); err != nil {
		return nil, internalError(err)
	}
	return e, nil
}

func (s *Server) purgeLocked(name string) *apiError {
	e, aerr := s.getDeletedLocked(name)
	if aerr != nil {
		return aerr
	}
	delete(s.secrets, key(e.Name))
	s.versions -= len(e.Versions)
	if err := s.saveLocked(); err != nil {
		return internalError(err)
	}
	return nil
}

// pageLocked returns up to limit secrets whose key sorts after `after`,
// live ones or deleted ones, and the key to continue from ("" at the end).
func (s *Server) pageLocked(deleted bool, after string, limit int) ([]*secret, string) {
	s.sweepLocked()
	keys := make([]string, 0, len(s.secrets))
	for k, e := range s.secrets {
		if (e.Deleted != nil) == deleted && k > after {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	out := make([]*secret, len(keys))
	for i, k := range keys {
		out[i] = s.secrets[k]
	}
	return out, next
}

// persistFile is the on-disk format of Options.PersistPath.
type persistFile struct {
	Format  string    `json:"format"`
	Secrets []*secret `json:"secrets"`
}

const persistFormat = "clawea-devvault/1"

// load reads PersistPath, if set and present, into the (empty) store.
func (s *Server) load() error {
	if s.persistPath == "" {
		return nil
	}
	data, err := os.ReadFile(s.persistPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("devvault: reading %s: %w", s.persistPath, err)
	}
	var f persistFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("devvault: %s is not a dev vault file: %w", s.persistPath, err)
	}
	if f.Format != persistFormat {
		return fmt.Errorf("devvault: %s has format %q, want %q", s.persistPath, clip(f.Format), persistFormat)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("devvault: %s: "+format, append([]any{s.persistPath}, args...)...)
	}
	for i, e := range f.Secrets {
		if e == nil || !validName(e.Name) {
			return bad("entry %d has an invalid name", i)
		}
		if s.secrets[key(e.Name)] != nil {
			return bad("secret %s appears twice", e.Name)
		}
		if len(e.Versions) == 0 {
			return bad("secret %s has no versions", e.Name)
		}
		seen := map[string]bool{}
		for _, v := range e.Versions {
			if v == nil || !validVersion(v.ID) {
				return bad("secret %s has an invalid version id", e.Name)
			}
			v.ID = strings.ToLower(v.ID)
			if seen[v.ID] {
				return bad("secret %s repeats version %s", e.Name, v.ID)
			}
			seen[v.ID] = true
			if len(v.Value) > MaxValueBytes {
				return bad("secret %s version %s is over %d bytes", e.Name, v.ID, MaxValueBytes)
			}
		}
		s.versions += len(e.Versions)
		if s.versions > s.maxSecrets {
			return bad("more than %d secret versions", s.maxSecrets)
		}
		s.secrets[key(e.Name)] = e
	}
	return nil
}

// saveLocked rewrites PersistPath atomically (temporary file, then rename),
// mode 0600. If it fails, the in-memory change is kept and the next
// successful save writes it.
func (s *Server) saveLocked() error {
	if s.persistPath == "" {
		return nil
	}
	keys := make([]string, 0, len(s.secrets))
	for k := range s.secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f := persistFile{Format: persistFormat, Secrets: make([]*secret, len(keys))}
	for i, k := range keys {
		f.Secrets[i] = s.secrets[k]
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("devvault: encoding store: %w", err)
	}
	// The folder may not exist yet (a fresh data directory).
	if err := os.MkdirAll(filepath.Dir(s.persistPath), 0o700); err != nil {
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.persistPath), ".devvault-*.tmp")
	if err != nil {
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.persistPath); err != nil {
		return fmt.Errorf("devvault: persisting: %w", err)
	}
	return nil
}
