package policy

import (
	"fmt"
	"strings"
)

// Trace explains how one statement met a request.
type Trace struct {
	PolicyID   string           `json:"policy_id"`
	SID        string           `json:"sid"`
	Effect     string           `json:"effect"`
	Action     string           `json:"action_match"`   // the pattern that matched, or ""
	Resource   string           `json:"resource_match"` // likewise
	Conditions []ConditionTrace `json:"conditions,omitempty"`
	Gated      bool             `json:"approval_gated,omitempty"`
	Outcome    string           `json:"outcome"` // applies, no_action, no_resource, conditions_fail, awaits_approval
}

// ConditionTrace explains one condition.
type ConditionTrace struct {
	Operator string `json:"operator"`
	Key      string `json:"key"`
	Want     string `json:"want"`
	Got      string `json:"got,omitempty"`
	Present  bool   `json:"present"`
	Holds    bool   `json:"holds"`
}

// Explanation is a decision with the trace of every statement, parents
// first.
type Explanation struct {
	Decision   *Decision `json:"-"`
	Statements []Trace   `json:"statements"`
}

// Explain evaluates req and records how each statement matched or missed.
// It allocates freely; use Evaluate on hot paths.
func (p *Policy) Explain(req *Request) *Explanation {
	e := &Explanation{Decision: &Decision{}}
	p.Evaluate(req, e.Decision)
	if FoldsResource(req.Resource) {
		r := *req
		r.Resource = foldASCII(req.Resource)
		req = &r
	}
	var chain []*Policy
	for q := p; q != nil; q = q.parent {
		chain = append([]*Policy{q}, chain...)
	}
	for _, q := range chain {
		for i := range q.stmts {
			e.Statements = append(e.Statements, q.stmts[i].trace(q.id, req))
		}
	}
	return e
}

func (s *cstmt) trace(policyID string, req *Request) Trace {
	t := Trace{PolicyID: policyID, SID: s.src.SID, Effect: s.src.Effect, Gated: s.gated}
	for i := range s.actions {
		if s.actions[i].match(req.Action) {
			t.Action = s.actions[i].src
			break
		}
	}
	res := s.resourcesFor(req.Resource)
	for i := range res {
		if res[i].match(req.Resource) {
			t.Resource = s.resources[i].src // as written
			break
		}
	}
	condsOK, gateOK := true, true
	for i := range s.conds {
		c := &s.conds[i]
		ct := ConditionTrace{Operator: c.src.Operator, Key: c.src.Key, Want: c.src.Value}
		if req.Context != nil {
			ct.Got, ct.Present = req.Context.Lookup(c.src.Key)
		}
		ct.Holds = c.holds(req.Context)
		if s.gated && c.op == opBool && c.src.Key == ApprovalKey {
			gateOK = ct.Holds
		} else if !ct.Holds {
			condsOK = false
		}
		t.Conditions = append(t.Conditions, ct)
	}
	switch {
	case t.Action == "":
		t.Outcome = "no_action"
	case t.Resource == "":
		t.Outcome = "no_resource"
	case !condsOK:
		t.Outcome = "conditions_fail"
	case !gateOK:
		t.Outcome = "awaits_approval"
	default:
		t.Outcome = "applies"
	}
	return t
}

// Text renders the explanation for people.
func (e *Explanation) Text() string {
	var b strings.Builder
	d := e.Decision
	fmt.Fprintf(&b, "decision: %s — %s\n", d.Effect, d.Reason)
	if ids := d.Statements(); len(ids) > 0 {
		fmt.Fprintf(&b, "deciding statements: %s\n", strings.Join(ids, ", "))
	}
	for _, t := range e.Statements {
		mark := map[string]string{"applies": "✔", "awaits_approval": "…"}[t.Outcome]
		if mark == "" {
			mark = "·"
		}
		fmt.Fprintf(&b, "%s %s/%s (%s): ", mark, t.PolicyID, t.SID, t.Effect)
		switch t.Outcome {
		case "no_action":
			b.WriteString("action does not match\n")
			continue
		case "no_resource":
			fmt.Fprintf(&b, "action matches %q, resource does not match\n", t.Action)
			continue
		case "applies":
			fmt.Fprintf(&b, "applies (action %q, resource %q)\n", t.Action, t.Resource)
		case "awaits_approval":
			fmt.Fprintf(&b, "matches but needs human approval (action %q, resource %q)\n", t.Action, t.Resource)
		case "conditions_fail":
			fmt.Fprintf(&b, "action %q and resource %q match, a condition fails\n", t.Action, t.Resource)
		}
		for _, c := range t.Conditions {
			state := "holds"
			if !c.Holds {
				state = "fails"
			}
			got := fmt.Sprintf("%q", c.Got)
			if !c.Present {
				got = "absent"
			}
			fmt.Fprintf(&b, "    %s %s %q: context %s → %s\n", c.Operator, c.Key, c.Want, got, state)
		}
	}
	return b.String()
}
