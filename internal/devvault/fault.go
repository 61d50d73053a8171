package devvault

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultAll is the fault key that matches every authorised request,
// listings included.
const FaultAll = "*"

// Fault makes the dev vault fail the requests for one secret name, so that
// a client (the real azsecrets SDK) sees an Azure-shaped failure: an error
// status with the service's JSON error body ({"error":{"code":...,
// "message":...}}), or no answer at all. Faults apply after the bearer
// token is checked, as Azure checks the token before access.
type Fault struct {
	// Status is the HTTP status to answer (400..599). Ignored with Hang.
	Status int
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
	// Hang holds the request without answering until the client gives up
	// or the server closes.
	Hang bool
	// Code and Message override the error body's code and message
	// (defaults follow the service for each status).
	Code, Message string
}

// SetFault makes requests for the secret name (compared without regard to
// case; FaultAll for every request) fail as f describes, until
// ClearFaults. A later SetFault for the same name replaces it.
func (s *Server) SetFault(name string, f Fault) error {
	if err := f.check(); err != nil {
		return err
	}
	if name != FaultAll && !validName(name) {
		return fmt.Errorf("devvault: fault for invalid secret name %q", clip(name))
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.faults == nil {
		s.faults = map[string]Fault{}
	}
	s.faults[key(name)] = f
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
}

// FaultHits is how many requests a fault (by name, or FaultAll) has
// answered since the server started.
func (s *Server) FaultHits(name string) int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faultHits[key(name)]
}

func (f Fault) check() error {
	if !f.Hang && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("devvault: fault status %d is not an error status (400..599)", f.Status)
	}
	if f.RetryAfter < 0 {
		return errors.New("devvault: negative fault Retry-After")
	}
	return nil
}

// fault returns the fault for a request on name ("" for a listing), if
// any, and counts the hit.
func (s *Server) fault(name string) (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	hit := FaultAll
	f, ok := s.faults[hit]
	if name != "" {
		if nf, nok := s.faults[key(name)]; nok {
			hit, f, ok = key(name), nf, true
		}
	}
	if !ok {
		return Fault{}, false
	}
	if s.faultHits == nil {
		s.faultHits = map[string]int{}
	}
	s.faultHits[hit]++
	return f, true
}

// serveFault answers a request as f says.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, name string, f Fault) {
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	}
	code, msg := faultBody(f.Status, name, s.vault)
	if f.Code != "" {
		code = f.Code
	}
	if f.Message != "" {
		msg = f.Message
	}
	if f.RetryAfter > 0 {
		secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	e := &apiError{status: f.Status, code: code, message: msg}
	if f.Status == http.StatusForbidden && f.Code == "" {
		e.inner = "ForbiddenByRbac"
	}
	writeError(w, e)
}

// faultBody is the service's error code and message for a status.
func faultBody(status int, name, vault string) (string, string) {
	what := "this request"
	if name != "" {
		what = "secret " + name
	}
	switch status {
	case http.StatusBadRequest:
		return "BadParameter", "The request is invalid."
	case http.StatusUnauthorized:
		return "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."
	case http.StatusForbidden:
		return "Forbidden", "Caller is not authorized to perform action on resource. Vault: " + vault + "; " + what
	case http.StatusNotFound:
		return "SecretNotFound", "A secret with (name/id) " + name + " was not found in this key vault."
	case http.StatusConflict:
		return "Conflict", "Secret " + name + " is currently in a deleted but recoverable state, and its name cannot be reused."
	case http.StatusTooManyRequests:
		return "Throttled", "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable", "The service is unavailable."
	case http.StatusBadGateway:
		return "BadGateway", "The gateway received an invalid response."
	case http.StatusGatewayTimeout:
		return "GatewayTimeout", "The gateway did not receive a response in time."
	}
	if status >= 500 {
		return "InternalServerError", "The server encountered an internal error."
	}
	return "BadRequest", "The request was refused."
}

// ParseFault reads a fault as clawea devvault --fault takes it (after
// NAME=): an HTTP status ("403"), a status and a Retry-After in seconds
// ("429:5"), or "hang".
func ParseFault(spec string) (Fault, error) {
	if spec == "hang" {
		return Fault{Hang: true}, nil
	}
	st, ra, hasRA := strings.Cut(spec, ":")
	status, err := strconv.Atoi(st)
	if err != nil || len(st) != 3 || st[0] == '+' || st[0] == '-' {
		return Fault{}, fmt.Errorf("devvault: fault %q: want STATUS, STATUS:RETRY_AFTER_SECONDS or hang", clip(spec))
	}
	f := Fault{Status: status}
	if hasRA {
		secs, err := strconv.Atoi(ra)
		if err != nil || secs < 0 || secs > 86400 || len(ra) > 5 || ra == "" || ra[0] == '+' || ra[0] == '-' {
			return Fault{}, fmt.Errorf("devvault: fault %q: Retry-After must be 0 to 86400 seconds", clip(spec))
		}
		f.RetryAfter = time.Duration(secs) * time.Second
	}
	if err := f.check(); err != nil {
		return Fault{}, err
	}
	return f, nil
}
