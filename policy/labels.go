package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Job labels: short name=value pairs given when a job starts (a change
// ticket, a cost centre). They are decided on (Job:Label.<name>), carried
// in the job's token and recorded with its evidence, so both their names
// and their values come from closed alphabets.
const (
	MaxLabels          = 16
	MaxLabelNameBytes  = 64
	MaxLabelValueBytes = 96
)

// ReservedLabel is a name no job label may have: the proof bundle's
// clawea_labels holds the job's labels and, under this name, a budget
// overrun.
const ReservedLabel = "budget_overrun"

// CodeLabelInvalid is the error code of a refused label.
const CodeLabelInvalid = "JOB_LABEL_INVALID"

// ValidLabelName reports whether name is a label name: 1 to 64 bytes of
// a-z, 0-9 and '_', beginning with a letter.
func ValidLabelName(name string) bool {
	if name == "" || len(name) > MaxLabelNameBytes || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ValidLabelValue reports whether v is a label value: 1 to 96 bytes of
// ASCII letters, digits and - . _ : / @ + (no spaces, no '=', no wildcard).
func ValidLabelValue(v string) bool {
	if v == "" || len(v) > MaxLabelValueBytes {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._:/@+", c) >= 0) {
			return false
		}
	}
	return true
}

// CheckLabels validates a job's labels; the error says which is wrong.
func CheckLabels(labels map[string]string) error {
	if msg := LabelProblem(labels); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// LabelProblem describes what is wrong with labels ("" when nothing is):
// a message about the caller's input, fit to be shown.
func LabelProblem(labels map[string]string) string {
	if len(labels) > MaxLabels {
		return fmt.Sprintf("at most %d labels", MaxLabels)
	}
	for _, k := range LabelNames(labels) {
		if k == ReservedLabel {
			return fmt.Sprintf("label name %q is reserved (the bundle's metadata uses it)", k)
		}
		if !ValidLabelName(k) {
			return fmt.Sprintf("label name %.80q must be 1 to %d of a-z, 0-9 and '_', starting with a letter", k, MaxLabelNameBytes)
		}
		if !ValidLabelValue(labels[k]) {
			return fmt.Sprintf("label %s: the value must be 1 to %d of A-Z, a-z, 0-9 and -._:/@+", k, MaxLabelValueBytes)
		}
	}
	return ""
}

// LabelNames returns the names in sorted order.
func LabelNames(labels map[string]string) []string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// LabelScopePrefix begins the token scope entry that carries a label
// ("label:<name>=<value>"). The token claims are a closed set in the
// protocol (scoped_token_claims.v1 has additionalProperties false), so a
// label travels as a scope entry: bound by the token scope hash and the
// signature, and ignored by gateways that check for their own scopes.
const LabelScopePrefix = "label:"

// LabelScopes returns the scope entries of labels, sorted by name.
func LabelScopes(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for _, k := range LabelNames(labels) {
		out = append(out, LabelScopePrefix+k+"="+labels[k])
	}
	return out
}

// LabelsFromScopes reads the labels a token's scopes carry. An entry that
// is not a valid label, or a name given twice, is an error: a token that
// carries a malformed label is refused rather than read in part.
func LabelsFromScopes(scopes []string) (map[string]string, error) {
	var out map[string]string
	for _, s := range scopes {
		rest, ok := strings.CutPrefix(s, LabelScopePrefix)
		if !ok {
			continue
		}
		name, value, ok := strings.Cut(rest, "=")
		if !ok || !ValidLabelName(name) || !ValidLabelValue(value) {
			return nil, fmt.Errorf("scope %q is not a label", s)
		}
		if out == nil {
			out = map[string]string{}
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("label %s is given twice", name)
		}
		out[name] = value
	}
	if len(out) > MaxLabels {
		return nil, fmt.Errorf("at most %d labels", MaxLabels)
	}
	return out, nil
}
