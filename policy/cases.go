package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// CaseFile is a decision table for a policy: each case is a request and
// the decision it must get.
type CaseFile struct {
	Description string `json:"description,omitempty"`
	Cases       []Case `json:"cases"`
}

// Case is one row of a decision table.
type Case struct {
	Name       string            `json:"name"`
	Action     string            `json:"action"`
	Resource   string            `json:"resource"`
	Context    map[string]string `json:"context,omitempty"`
	Expect     string            `json:"expect"`               // allow, deny or needs_approval
	Statements []string          `json:"statements,omitempty"` // when set, the deciding statements must be exactly these
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Case       Case     `json:"case"`
	Got        string   `json:"got"`
	Statements []string `json:"statements"`
	Reason     string   `json:"reason"`
	Passed     bool     `json:"passed"`
	Problem    string   `json:"problem,omitempty"`
}

// LoadCases reads a case file; unknown fields are errors.
func LoadCases(path string) (*CaseFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var cf CaseFile
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("case file %s: %w", path, err)
	}
	for i, c := range cf.Cases {
		switch c.Expect {
		case "allow", "deny", "needs_approval":
		default:
			return nil, fmt.Errorf("case file %s: case %d (%s): expect must be allow, deny or needs_approval", path, i, c.Name)
		}
		if c.Action == "" || c.Resource == "" {
			return nil, fmt.Errorf("case file %s: case %d (%s): action and resource are required", path, i, c.Name)
		}
	}
	return &cf, nil
}

// RunCases evaluates every case against p.
func RunCases(p *Policy, cf *CaseFile) []CaseResult {
	out := make([]CaseResult, 0, len(cf.Cases))
	for _, c := range cf.Cases {
		var d Decision
		p.Evaluate(&Request{Action: c.Action, Resource: c.Resource, Context: MapContext(c.Context)}, &d)
		r := CaseResult{Case: c, Got: d.Effect.String(), Statements: slices.Clone(d.Statements()), Reason: d.Reason}
		r.Passed = r.Got == c.Expect
		if !r.Passed {
			r.Problem = fmt.Sprintf("expected %s, got %s (%s)", c.Expect, r.Got, d.Reason)
		} else if c.Statements != nil && !slices.Equal(c.Statements, r.Statements) {
			r.Passed = false
			r.Problem = fmt.Sprintf("decided by %v, expected %v", r.Statements, c.Statements)
		}
		out = append(out, r)
	}
	return out
}
