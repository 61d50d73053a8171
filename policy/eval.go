package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// ApprovalKey is the context key of the approval gate: an Allow statement
// with the condition {"Bool": {"Request:HasHumanApproval": "true"}} grants
// only once a human approved; until then the decision is needs_approval.
const ApprovalKey = "Request:HasHumanApproval"

// Effect is the outcome of an evaluation.
type Effect uint8

// Effects. The zero value is Deny, so an unset decision denies.
const (
	Deny Effect = iota
	Allow
	NeedsApproval
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case NeedsApproval:
		return "needs_approval"
	}
	return "deny"
}

// MarshalText writes allow, deny or needs_approval.
func (e Effect) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// Context supplies context values by key ("Agent:DID",
// "ServiceBus:MessageBytes", ...). Lookups must not allocate.
type Context interface {
	Lookup(key string) (string, bool)
}

// MapContext is a Context backed by a map.
type MapContext map[string]string

// Lookup returns the value of key.
func (m MapContext) Lookup(key string) (string, bool) {
	v, ok := m[key]
	return v, ok
}

// Request is one question to a policy: may Action be done on Resource in
// Context?
type Request struct {
	Action   string
	Resource string
	Context  Context
}

const maxDecisionSIDs = 16

// Reasons a decision gives. They are fixed strings so that evaluation does
// not allocate; the deciding statements say the rest.
const (
	ReasonDenied        = "explicitly denied"
	ReasonAllowed       = "allowed"
	ReasonApproval      = "allowed only with human approval (" + ApprovalKey + ")"
	ReasonDefaultDeny   = "no statement allows this action on this resource (default deny)"
	ReasonParentDenied  = "the parent policy denies (inherits is a strict intersection)"
	ReasonParentDefault = "the parent policy does not allow it (inherits is a strict intersection)"
	ReasonV1            = "a v1 policy has no statements; its rules apply to model calls only"
)

// Decision is the result of an evaluation. It is filled in place so that
// evaluating allocates nothing.
type Decision struct {
	Effect Effect
	Reason string
	// PolicyID names the policy whose statements decided (the parent's when
	// it denied).
	PolicyID  string
	sids      [maxDecisionSIDs]string
	n         int
	Truncated bool // more statements decided than are listed
}

// Statements returns the ids of the deciding statements; a parent policy's
// are written "<policy_id>/<sid>".
func (d *Decision) Statements() []string { return d.sids[:d.n] }

func (d *Decision) add(sid string) {
	if d.n < maxDecisionSIDs {
		d.sids[d.n] = sid
		d.n++
	} else {
		d.Truncated = true
	}
}

func (d *Decision) reset() { *d = Decision{} }

// Policy is a compiled v2 policy (with its compiled parents).
type Policy struct {
	doc    *Document
	id     string
	hash   string
	stmts  []cstmt
	parent *Policy
}

type opKind uint8

const (
	opStringEquals opKind = iota
	opStringNotEquals
	opStringLike
	opStringNotLike
	opNumericEquals
	opNumericLessThan
	opNumericGreaterThan
	opBool
	opIPAddress
)

var opNames = map[string]opKind{
	"StringEquals": opStringEquals, "StringNotEquals": opStringNotEquals,
	"StringLike": opStringLike, "StringNotLike": opStringNotLike,
	"NumericEquals": opNumericEquals, "NumericLessThan": opNumericLessThan, "NumericGreaterThan": opNumericGreaterThan,
	"Bool": opBool, "IpAddress": opIPAddress,
}

type ccond struct {
	src    Condition
	fold   bool   // a String* condition on one of FoldedKeys
	str    string // the value compared by StringEquals/StringNotEquals (folded when fold)
	op     opKind
	num    float64
	b      bool
	prefix netip.Prefix
	glob   glob
}

type cstmt struct {
	src       *Statement
	sid       string // as reported (qualified for parents)
	deny      bool
	actions   []glob
	resources []glob
	// resFold are the resources folded (foldASCII), used for kv:// and
	// sb:// requests; nil when no pattern changes under the fold.
	resFold []glob
	conds   []ccond
	gated   bool // Allow with Bool Request:HasHumanApproval "true"
}

// Resolver finds a policy by policy_id, for inherits. It returns nil when
// there is none.
type Resolver func(policyID string) (*Document, error)

// Compile prepares a v2 policy and, through resolve, every policy it
// inherits from. An inherits cycle or an unresolvable parent is an *Error.
// A v1 document compiles to a policy that denies every action.
func Compile(doc *Document, resolve Resolver) (*Policy, error) {
	return compile(doc, resolve, "", map[string]bool{})
}

func compile(doc *Document, resolve Resolver, qualify string, seen map[string]bool) (*Policy, error) {
	p := &Policy{doc: doc, id: doc.PolicyID(), hash: doc.Hash()}
	if seen[p.id] {
		return nil, errAt(CodeInheritsCycle, "inherits", "inherits cycle through policy %q", p.id)
	}
	seen[p.id] = true
	if doc.V2 == nil {
		return p, nil
	}
	for i := range doc.V2.Statements {
		s := &doc.V2.Statements[i]
		c := cstmt{src: s, sid: qualify + s.SID, deny: s.Effect == "Deny"}
		for _, a := range s.Actions {
			c.actions = append(c.actions, compileGlob(a))
		}
		folds := false
		for _, r := range s.Resources {
			c.resources = append(c.resources, compileGlob(r))
			folds = folds || foldASCII(r) != r
		}
		if folds {
			for _, r := range s.Resources {
				c.resFold = append(c.resFold, compileGlob(foldASCII(r)))
			}
		}
		for _, cd := range s.Conditions {
			cd.Key, _ = CanonicalKey(cd.Key)
			cc := ccond{src: cd, op: opNames[cd.Operator], str: cd.Value}
			switch cc.op {
			case opStringEquals, opStringNotEquals, opStringLike, opStringNotLike:
				if foldsKey(cd.Key) {
					cc.fold, cc.str = true, foldASCII(cd.Value)
				}
			}
			switch cc.op {
			case opNumericEquals, opNumericLessThan, opNumericGreaterThan:
				cc.num, _ = parseNumber(cd.Value)
			case opBool:
				cc.b = cd.Value == "true"
				if !c.deny && cd.Key == ApprovalKey && cc.b {
					c.gated = true
				}
			case opIPAddress:
				cc.prefix, _ = parsePrefix(cd.Value)
			case opStringLike, opStringNotLike:
				cc.glob = compileGlob(cc.str)
			}
			c.conds = append(c.conds, cc)
		}
		p.stmts = append(p.stmts, c)
	}
	if parentID := doc.V2.Inherits; parentID != "" {
		if resolve == nil {
			return nil, errAt(CodeInheritsMissing, "inherits", "policy %q inherits from %q but no resolver was given", p.id, parentID)
		}
		pd, err := resolve(parentID)
		if err != nil {
			return nil, errAt(CodeInheritsMissing, "inherits", "cannot resolve parent policy %q: %v", parentID, err)
		}
		if pd == nil {
			return nil, errAt(CodeInheritsMissing, "inherits", "parent policy %q not found", parentID)
		}
		parent, err := compile(pd, resolve, pd.PolicyID()+"/", seen)
		if err != nil {
			return nil, err
		}
		p.parent = parent
	}
	return p, nil
}

// ID returns the policy_id.
func (p *Policy) ID() string { return p.id }

// Hash returns the policy hash.
func (p *Policy) Hash() string { return p.hash }

// Document returns the compiled document.
func (p *Policy) Document() *Document { return p.doc }

// Evaluate decides req into d. It allocates nothing, unless a kv:// or
// sb:// resource or a folded context value (fold.go) is not in canonical
// form.
func (p *Policy) Evaluate(req *Request, d *Decision) {
	if FoldsResource(req.Resource) {
		if f := foldASCII(req.Resource); f != req.Resource {
			r := *req
			r.Resource = f
			req = &r
		}
	}
	p.evaluate(req, d)
}

func (p *Policy) evaluate(req *Request, d *Decision) {
	d.reset()
	if p.parent == nil {
		p.evalOwn(req, d)
		return
	}
	var pd Decision
	p.parent.evaluate(req, &pd)
	if pd.Effect == Deny {
		*d = pd
		if pd.n == 0 {
			d.Reason = ReasonParentDefault
		} else {
			d.Reason = ReasonParentDenied
		}
		return
	}
	p.evalOwn(req, d)
	if d.Effect == Deny {
		return
	}
	// Both allow, or one needs approval: parent's statements first.
	merged := pd
	if d.Effect == NeedsApproval || pd.Effect == NeedsApproval {
		merged.Effect, merged.Reason = NeedsApproval, ReasonApproval
	} else {
		merged.Effect, merged.Reason = Allow, ReasonAllowed
	}
	for _, s := range d.Statements() {
		merged.add(s)
	}
	merged.Truncated = merged.Truncated || d.Truncated || pd.Truncated
	merged.PolicyID = p.id
	*d = merged
}

func (p *Policy) evalOwn(req *Request, d *Decision) {
	d.PolicyID = p.id
	if p.doc.V2 == nil {
		d.Effect, d.Reason = Deny, ReasonV1
		return
	}
	var allows, gates [maxDecisionSIDs]int
	na, ng := 0, 0
	denied := false
	for i := range p.stmts {
		s := &p.stmts[i]
		if !s.matchesTarget(req) {
			continue
		}
		ok, gateOK := s.conditionsHold(req.Context)
		switch {
		case s.deny:
			if ok {
				denied = true
				d.add(s.sid)
			}
		case !s.gated:
			if ok && !denied && na < len(allows) {
				allows[na] = i
				na++
			}
		default:
			if ok && gateOK && !denied && na < len(allows) {
				allows[na] = i
				na++
			} else if ok && !gateOK && !denied && ng < len(gates) {
				gates[ng] = i
				ng++
			}
		}
	}
	switch {
	case denied:
		d.Effect, d.Reason = Deny, ReasonDenied
	case na > 0:
		d.Effect, d.Reason = Allow, ReasonAllowed
		for _, i := range allows[:na] {
			d.add(p.stmts[i].sid)
		}
	case ng > 0:
		d.Effect, d.Reason = NeedsApproval, ReasonApproval
		for _, i := range gates[:ng] {
			d.add(p.stmts[i].sid)
		}
	default:
		d.Effect, d.Reason = Deny, ReasonDefaultDeny
	}
}

func (s *cstmt) matchesTarget(req *Request) bool {
	ok := false
	for i := range s.actions {
		if s.actions[i].match(req.Action) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	res := s.resourcesFor(req.Resource)
	for i := range res {
		if res[i].match(req.Resource) {
			return true
		}
	}
	return false
}

// resourcesFor returns the compiled patterns that apply to resource: the
// folded ones for a kv:// or sb:// resource.
func (s *cstmt) resourcesFor(resource string) []glob {
	if s.resFold != nil && FoldsResource(resource) {
		return s.resFold
	}
	return s.resources
}

// conditionsHold reports whether every condition holds, with the approval
// gate set aside: ok covers the other conditions, gateOK the gate itself.
func (s *cstmt) conditionsHold(ctx Context) (ok, gateOK bool) {
	ok, gateOK = true, !s.gated
	for i := range s.conds {
		c := &s.conds[i]
		hold := c.holds(ctx)
		if s.gated && c.op == opBool && c.src.Key == ApprovalKey {
			gateOK = hold
			continue
		}
		if !hold {
			return false, gateOK
		}
	}
	return ok, gateOK
}

// holds evaluates one condition. An absent key makes every operator false,
// including the negated ones (fail closed).
func (c *ccond) holds(ctx Context) bool {
	if ctx == nil {
		return false
	}
	v, ok := ctx.Lookup(c.src.Key)
	if !ok {
		return false
	}
	if c.fold {
		v = foldASCII(v)
	}
	switch c.op {
	case opStringEquals:
		return v == c.str
	case opStringNotEquals:
		return v != c.str
	case opStringLike:
		return c.glob.match(v)
	case opStringNotLike:
		return !c.glob.match(v)
	case opNumericEquals, opNumericLessThan, opNumericGreaterThan:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f != f {
			return false
		}
		switch c.op {
		case opNumericEquals:
			return f == c.num
		case opNumericLessThan:
			return f < c.num
		}
		return f > c.num
	case opBool:
		return strings.EqualFold(v, "true") == c.b
	case opIPAddress:
		a, err := netip.ParseAddr(strings.TrimSpace(v))
		return err == nil && c.prefix.IsValid() && c.prefix.Contains(a.Unmap())
	}
	return false // unknown operator: fail closed
}

// Cache holds compiled policies by hash, so each policy is compiled once.
// It is safe for concurrent use and bounded.
type Cache struct {
	mu  sync.Mutex
	max int
	m   map[string]*Policy
}

// NewCache returns a cache of up to max policies.
func NewCache(max int) *Cache {
	if max < 1 {
		max = 1
	}
	return &Cache{max: max, m: map[string]*Policy{}}
}

// Get returns the compiled policy for doc, compiling it on first use.
func (c *Cache) Get(doc *Document, resolve Resolver) (*Policy, error) {
	h := doc.Hash()
	c.mu.Lock()
	p, ok := c.m[h]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := Compile(doc, resolve)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m { // evict one arbitrary entry
			delete(c.m, k)
			break
		}
	}
	c.m[h] = p
	c.mu.Unlock()
	return p, nil
}

// String describes a decision for logs and the CLI.
func (d *Decision) String() string {
	return fmt.Sprintf("%s (%s) by %v", d.Effect, d.Reason, d.Statements())
}

// References reports whether a condition of the policy (or of a policy it
// inherits) tests key (conditions' keys are compiled to their canonical
// spelling, CanonicalKey; key is compared in that spelling). A gateway may
// skip computing a context value no condition reads.
func (p *Policy) References(key string) bool {
	key, _ = CanonicalKey(key)
	for i := range p.stmts {
		for j := range p.stmts[i].conds {
			if p.stmts[i].conds[j].src.Key == key {
				return true
			}
		}
	}
	return p.parent != nil && p.parent.References(key)
}

// CouldAllow reports whether some request for action could ever be
// allowed (possibly after a human's approval): an Allow statement names the
// action, and no unconditional Deny covers the action on every resource;
// a policy that inherits must have its parent agree too. Gateways use it to
// list only tools a job's policy could ever permit.
func (p *Policy) CouldAllow(action string) bool {
	allowed := false
	for i := range p.stmts {
		s := &p.stmts[i]
		hit := false
		for j := range s.actions {
			if s.actions[j].match(action) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		if s.deny {
			if len(s.conds) == 0 {
				for j := range s.resources {
					if s.resources[j].kind == gAll {
						return false
					}
				}
			}
			continue
		}
		allowed = true
	}
	if allowed && p.parent != nil {
		return p.parent.CouldAllow(action)
	}
	return allowed
}

// CouldAllowOn is CouldAllow for one resource: an Allow statement must
// name the action and match the resource, and no unconditional Deny may
// cover both. Gateways use it to list a proxied MCP tool (mcp:call on
// mcp://<server>/<tool>) only when the policy could permit that tool.
func (p *Policy) CouldAllowOn(action, resource string) bool {
	allowed := false
	for i := range p.stmts {
		s := &p.stmts[i]
		hit := false
		for j := range s.actions {
			if s.actions[j].match(action) {
				hit = true
				break
			}
		}
		if !hit {
			continue
		}
		res := s.resourcesFor(resource)
		matched := false
		for j := range res {
			if res[j].match(resource) {
				matched = true
				break
			}
		}
		if !matched {
			continue
		}
		if s.deny {
			if len(s.conds) == 0 {
				return false
			}
			continue
		}
		allowed = true
	}
	if allowed && p.parent != nil {
		return p.parent.CouldAllowOn(action, resource)
	}
	return allowed
}

// Governs reports whether a statement of the policy (or of a parent)
// names action through a pattern that spells the action's namespace
// ("job:start", "job:*"; not "*" or "*:start"): a policy governs job:start
// only when its author wrote a statement for it, so that an older policy
// allowing or denying "*" keeps its meaning for the actions it was
// written for.
func (p *Policy) Governs(action string) bool {
	ns := action
	if i := strings.IndexByte(action, ':'); i >= 0 {
		ns = action[:i+1]
	}
	for i := range p.stmts {
		for j := range p.stmts[i].actions {
			g := &p.stmts[i].actions[j]
			if strings.HasPrefix(g.src, ns) && g.match(action) {
				return true
			}
		}
	}
	return p.parent != nil && p.parent.Governs(action)
}
