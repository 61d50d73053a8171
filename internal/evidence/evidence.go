// Package evidence is where everything clawea records about a job goes
// through. Chain.Record is the one write path of the job's evidence: it
// appends a hash-chained event and, in the same store transaction, the
// receipts and records bound to it. Every producer calls it — the model
// gateway (llm_call and its receipt), the tool gateway (tool_call with its
// receipt and side-effect record, approvals with their human-approval
// records, the decision API's runtime_decision) and the job service (the
// events its API accepts) — and the store behind it (a ChainStore: the
// SQLite journal batching appends, or PostgreSQL) sees nothing else.
//
// Check is the gate in front of everything clawea stores or signs about a
// job: events, receipts, side-effect and approval records, job labels,
// bundles. Record runs it on every event and item, so no producer can skip
// it; the job service runs it on what it stores besides the chain. Check
// refuses a write that holds a secret the job has seen — raw, or in any
// encoding the redaction registry knows (base64, base64url, hex,
// URL-encoding, JSON escapes) — looking both at the bytes about to be
// stored and at every string (values and keys) of the decoded JSON.
// Writers redact before they hash or sign (RedactValue), so the gate fires
// only when a writer forgot to: it fails closed.
//
// The registry is the process's own (internal/redact): a job service in
// another process than the gateway that fetched a secret does not know it.
package evidence

import (
	"errors"
	"strconv"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/redact"
)

// CodeSecretRefused is the stable code of a write the gate refused.
const CodeSecretRefused = "EVIDENCE_SECRET_REFUSED"

// ErrSecret is returned by Check when a blob holds a job secret. Its text
// never names the value; Label says which secret.
var ErrSecret = errors.New("evidence: the record holds a secret of the job")

// SecretError says which secret (by label) a refused write held.
type SecretError struct {
	JobID string
	Label string // <vault>/<name>
}

func (e *SecretError) Error() string {
	return "evidence: the record holds secret " + e.Label + " of job " + e.JobID
}

// Unwrap makes errors.Is(err, ErrSecret) hold.
func (e *SecretError) Unwrap() error { return ErrSecret }

// Check is the gate: it returns a *SecretError when any blob holds a
// secret of the job, as bytes or in a decoded JSON string or key. A nil
// registry, or a job with no secrets, passes everything.
func Check(reg *redact.Registry, jobID string, blobs ...[]byte) error {
	if reg == nil || !reg.Known(jobID) {
		return nil
	}
	for _, b := range blobs {
		if len(b) == 0 {
			continue
		}
		if label, ok := FindString(reg, jobID, string(b)); ok {
			return &SecretError{JobID: jobID, Label: label}
		}
		label, ok, err := FindJSON(reg, jobID, b)
		if err == nil && ok {
			return &SecretError{JobID: jobID, Label: label}
		}
	}
	return nil
}

// FindString reports the label of a job secret that s holds in any form.
// This, FindJSON and FindValue are the one place that asks the registry.
func FindString(reg *redact.Registry, jobID, s string) (string, bool) {
	if reg == nil || s == "" {
		return "", false
	}
	return reg.Find(jobID, s)
}

// FindJSON reports the label of a job secret held by any decoded string
// or key of raw (and of JSON documents held in its strings).
func FindJSON(reg *redact.Registry, jobID string, raw []byte) (string, bool, error) {
	if reg == nil {
		return "", false, nil
	}
	return reg.FindJSON(jobID, raw)
}

// FindValue reports the label of a job secret held by any string or key
// of v.
func FindValue(reg *redact.Registry, jobID string, v *canon.Value) (string, bool) {
	if reg == nil || !reg.Known(jobID) || v == nil {
		return "", false
	}
	switch v.Kind {
	case canon.String:
		return FindString(reg, jobID, v.Str)
	case canon.Array:
		for i := range v.Items {
			if l, ok := FindValue(reg, jobID, &v.Items[i]); ok {
				return l, true
			}
		}
	case canon.Object:
		for i := range v.Members {
			if l, ok := FindString(reg, jobID, v.Members[i].Key); ok {
				return l, true
			}
			if l, ok := FindValue(reg, jobID, &v.Members[i].Value); ok {
				return l, true
			}
		}
	}
	return "", false
}

// RedactValue returns a copy of v in which every job secret held by a
// string or a key is replaced by its marker, and the number replaced.
// Writers call it before they commit to, disclose or sign a value.
func RedactValue(reg *redact.Registry, jobID string, v *canon.Value) (canon.Value, int) {
	out := v.Clone()
	if reg == nil || !reg.Known(jobID) {
		return out, 0
	}
	n := redactIn(reg, jobID, &out)
	return out, n
}

func redactIn(reg *redact.Registry, jobID string, v *canon.Value) int {
	n := 0
	switch v.Kind {
	case canon.String:
		var k int
		v.Str, k = reg.String(jobID, v.Str)
		n += k
	case canon.Array:
		for i := range v.Items {
			n += redactIn(reg, jobID, &v.Items[i])
		}
	case canon.Object:
		renamed := false
		for i := range v.Members {
			var k int
			v.Members[i].Key, k = reg.String(jobID, v.Members[i].Key)
			n += k
			renamed = renamed || k > 0
			n += redactIn(reg, jobID, &v.Members[i].Value)
		}
		if renamed {
			dedupKeys(v.Members)
		}
	}
	return n
}

// dedupKeys keeps keys unique when redaction made two of them the same
// marker: the later ones get "#2", "#3", ...
func dedupKeys(ms []canon.Member) {
	seen := map[string]bool{}
	for i := range ms {
		k := ms[i].Key
		for n := 2; seen[k]; n++ {
			k = ms[i].Key + "#" + strconv.Itoa(n)
		}
		ms[i].Key = k
		seen[k] = true
	}
}
