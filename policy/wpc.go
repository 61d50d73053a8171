// Package policy implements Work Policy Contracts (WPC): parsing and
// validation of v1 (model gateway rules) and v2 (IAM-style statements)
// documents, their hash address (SHA-256 of the RFC 8785 form), signed
// work_policy_contract envelopes with a signer allowlist, and a compiled
// evaluator that answers allow, deny or needs_approval for an action on a
// resource in a context.
//
// Evaluation follows the reference evaluator (default deny, explicit Deny
// wins, inherits is a strict intersection, the same glob rules) with the
// differences listed in docs/policy.md: an absent context key makes every
// condition on it false, numbers must parse in full, IpAddress accepts
// IPv6, inherits chains are followed to the root with cycle detection, and
// an Allow gated on Request:HasHumanApproval yields needs_approval.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// MaxDocumentBytes is the largest policy document accepted (the reference
// registry's 64 KiB).
const MaxDocumentBytes = 64 << 10

// Error codes of policy validation. Each Error carries one, with the JSON
// path of the problem.
const (
	CodeInvalidJSON        = "WPC_INVALID_JSON"
	CodeTooLarge           = "WPC_TOO_LARGE"
	CodeNotObject          = "WPC_NOT_OBJECT"
	CodeUnsupportedVersion = "WPC_UNSUPPORTED_VERSION"
	CodeUnknownField       = "WPC_UNKNOWN_FIELD"
	CodeMissingField       = "WPC_MISSING_FIELD"
	CodeWrongType          = "WPC_WRONG_TYPE"
	CodeBadValue           = "WPC_BAD_VALUE"
	CodeLimit              = "WPC_LIMIT_EXCEEDED"
	CodeBadGlob            = "WPC_BAD_GLOB"
	CodeUnknownOperator    = "WPC_UNKNOWN_OPERATOR"
	CodeBadCondition       = "WPC_BAD_CONDITION_VALUE"
	CodeDuplicateSID       = "WPC_DUPLICATE_SID"
	CodeInheritsCycle      = "WPC_INHERITS_CYCLE"
	CodeInheritsMissing    = "WPC_INHERITS_UNRESOLVED"
)

// Error is a validation failure: a stable code, the JSON path of the
// problem ("statements[2].conditions.Bool") and a message.
type Error struct {
	Code string `json:"code"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("policy: %s: %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("policy: %s at %s: %s", e.Code, e.Path, e.Msg)
}

func errAt(code, path, format string, args ...any) *Error {
	return &Error{Code: code, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Document is a parsed, validated WPC. Exactly one of V1 and V2 is set.
type Document struct {
	Version string // "1" or "2"
	V1      *V1
	V2      *V2
	// Value is the document as parsed; its JCS form is the hash input.
	Value canon.Value
	hash  string
}

// V1 is a work_policy_contract.v1: the model gateway's rules.
type V1 struct {
	PolicyID                 string          `json:"policy_id"`
	IssuerDID                string          `json:"issuer_did"`
	AllowedProviders         []string        `json:"allowed_providers,omitempty"`
	AllowedModels            []string        `json:"allowed_models,omitempty"`
	MinimumModelIdentityTier string          `json:"minimum_model_identity_tier,omitempty"`
	RequiredAuditPacks       []string        `json:"required_audit_packs,omitempty"`
	RedactionRules           []RedactionRule `json:"redaction_rules,omitempty"`
	ReceiptPrivacyMode       string          `json:"receipt_privacy_mode,omitempty"`
	EgressAllowlist          []string        `json:"egress_allowlist,omitempty"`
	Metadata                 *canon.Value    `json:"metadata,omitempty"`
}

// RedactionRule removes, masks or hashes a field of a model request.
type RedactionRule struct {
	Path   string `json:"path"`   // $.a.b or $.arr[*].field
	Action string `json:"action"` // remove, hash, mask
}

// V2 is a work_policy_contract.v2: IAM-style statements.
type V2 struct {
	PolicyID            string
	IssuerDID           string
	Inherits            string
	CoverageEnforcement string
	Statements          []Statement
	Metadata            *canon.Value
}

// Statement is one Allow or Deny rule.
type Statement struct {
	SID        string
	Effect     string // Allow or Deny
	Actions    []string
	Resources  []string
	Conditions []Condition // in document order
}

// Condition is one operator/key/value test.
type Condition struct {
	Operator string
	Key      string
	Value    string
}

// Operators lists the nine condition operators.
var Operators = []string{"StringEquals", "StringNotEquals", "StringLike", "StringNotLike",
	"NumericEquals", "NumericLessThan", "NumericGreaterThan", "Bool", "IpAddress"}

// PolicyID returns the document's policy_id.
func (d *Document) PolicyID() string {
	if d.V1 != nil {
		return d.V1.PolicyID
	}
	return d.V2.PolicyID
}

// IssuerDID returns the document's issuer_did.
func (d *Document) IssuerDID() string {
	if d.V1 != nil {
		return d.V1.IssuerDID
	}
	return d.V2.IssuerDID
}

// Inherits returns the parent policy id of a v2 document, or "".
func (d *Document) Inherits() string {
	if d.V2 != nil {
		return d.V2.Inherits
	}
	return ""
}

// Hash returns policy_hash_b64u: b64u SHA-256 of the document's JCS form.
func (d *Document) Hash() string {
	if d.hash == "" {
		d.hash = b64u.SHA256(canon.AppendJCS(nil, &d.Value))
	}
	return d.hash
}

// JCS returns the document's RFC 8785 form.
func (d *Document) JCS() []byte { return canon.AppendJCS(nil, &d.Value) }

// Parse parses and validates a WPC document (v1 or v2). Every problem is
// an *Error with a code and path; the first one found is returned.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxDocumentBytes {
		return nil, errAt(CodeTooLarge, "", "document is %d bytes; the limit is %d", len(data), MaxDocumentBytes)
	}
	v, err := canon.Parse(data)
	if err != nil {
		return nil, errAt(CodeInvalidJSON, "", "%v", err)
	}
	return FromValue(v)
}

// FromValue validates a parsed document.
func FromValue(v canon.Value) (*Document, error) {
	if v.Kind != canon.Object {
		return nil, errAt(CodeNotObject, "", "a policy must be a JSON object")
	}
	ver := v.Get("policy_version")
	if ver == nil {
		return nil, errAt(CodeMissingField, "policy_version", "policy_version is required (\"1\" or \"2\")")
	}
	if !ver.IsString() {
		return nil, errAt(CodeWrongType, "policy_version", "policy_version must be the string \"1\" or \"2\"")
	}
	d := &Document{Version: ver.Str, Value: v}
	var err *Error
	switch ver.Str {
	case "1":
		d.V1, err = parseV1(&v)
	case "2":
		d.V2, err = parseV2(&v)
	default:
		return nil, errAt(CodeUnsupportedVersion, "policy_version", "unsupported policy_version %q (want \"1\" or \"2\")", ver.Str)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// obj walks one closed object: it rejects unknown keys and reports missing
// required ones.
type obj struct {
	v    *canon.Value
	path string
}

func (o obj) at(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

func (o obj) closed(required []string, allowed ...string) *Error {
	for _, m := range o.v.Members {
		ok := false
		for _, a := range allowed {
			if m.Key == a {
				ok = true
				break
			}
		}
		if !ok {
			return errAt(CodeUnknownField, o.at(m.Key), "unknown field %q", m.Key)
		}
	}
	for _, r := range required {
		if o.v.Get(r) == nil {
			return errAt(CodeMissingField, o.at(r), "%s is required", r)
		}
	}
	return nil
}

// str reads an optional string field with length bounds (in characters).
func (o obj) str(key string, min, max int) (string, *Error) {
	f := o.v.Get(key)
	if f == nil {
		return "", nil
	}
	if !f.IsString() {
		return "", errAt(CodeWrongType, o.at(key), "%s must be a string", key)
	}
	n := len([]rune(f.Str))
	if n < min {
		return "", errAt(CodeBadValue, o.at(key), "%s must not be empty", key)
	}
	if max > 0 && n > max {
		return "", errAt(CodeLimit, o.at(key), "%s is %d characters; the limit is %d", key, n, max)
	}
	return f.Str, nil
}

func (o obj) enum(key string, values ...string) (string, *Error) {
	s, err := o.str(key, 0, 0)
	if err != nil || o.v.Get(key) == nil {
		return s, err
	}
	for _, v := range values {
		if s == v {
			return s, nil
		}
	}
	return "", errAt(CodeBadValue, o.at(key), "%s must be one of %s", key, strings.Join(values, ", "))
}

// strs reads an optional array of strings.
func (o obj) strs(key string, minItems, maxItems, minLen, maxLen int, check func(path, s string) *Error) ([]string, *Error) {
	f := o.v.Get(key)
	if f == nil {
		return nil, nil
	}
	if !f.IsArray() {
		return nil, errAt(CodeWrongType, o.at(key), "%s must be an array of strings", key)
	}
	if len(f.Items) < minItems {
		return nil, errAt(CodeBadValue, o.at(key), "%s needs at least %d item(s)", key, minItems)
	}
	if maxItems > 0 && len(f.Items) > maxItems {
		return nil, errAt(CodeLimit, o.at(key), "%s has %d items; the limit is %d", key, len(f.Items), maxItems)
	}
	out := make([]string, 0, len(f.Items))
	for i := range f.Items {
		p := o.at(key) + "[" + strconv.Itoa(i) + "]"
		it := &f.Items[i]
		if !it.IsString() {
			return nil, errAt(CodeWrongType, p, "must be a string")
		}
		n := len([]rune(it.Str))
		if n < minLen {
			return nil, errAt(CodeBadValue, p, "must not be empty")
		}
		if maxLen > 0 && n > maxLen {
			return nil, errAt(CodeLimit, p, "is %d characters; the limit is %d", n, maxLen)
		}
		if check != nil {
			if err := check(p, it.Str); err != nil {
				return nil, err
			}
		}
		out = append(out, it.Str)
	}
	return out, nil
}

func (o obj) object(key string) (*canon.Value, *Error) {
	f := o.v.Get(key)
	if f == nil {
		return nil, nil
	}
	if !f.IsObject() {
		return nil, errAt(CodeWrongType, o.at(key), "%s must be an object", key)
	}
	return f, nil
}

func checkIssuer(o obj) (string, *Error) {
	s, err := o.str("issuer_did", 4, 256)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(s, "did:") {
		return "", errAt(CodeBadValue, o.at("issuer_did"), "issuer_did must be a DID (did:...)")
	}
	return s, nil
}

var modelTiers = []string{"closed_opaque", "closed_provider_manifest", "openweights_hashable", "tee_measured"}

func parseV1(v *canon.Value) (*V1, *Error) {
	o := obj{v: v}
	if err := o.closed([]string{"policy_version", "policy_id", "issuer_did"},
		"policy_version", "policy_id", "issuer_did", "allowed_providers", "allowed_models", "minimum_model_identity_tier",
		"required_audit_packs", "redaction_rules", "receipt_privacy_mode", "egress_allowlist", "metadata"); err != nil {
		return nil, err
	}
	p := &V1{}
	var err *Error
	if p.PolicyID, err = o.str("policy_id", 1, 128); err != nil {
		return nil, err
	}
	if p.IssuerDID, err = checkIssuer(o); err != nil {
		return nil, err
	}
	provider := func(path, s string) *Error {
		switch s {
		case "openai", "anthropic", "google":
			return nil
		}
		return errAt(CodeBadValue, path, "provider must be openai, anthropic or google")
	}
	if p.AllowedProviders, err = o.strs("allowed_providers", 0, 16, 1, 0, provider); err != nil {
		return nil, err
	}
	modelGlob := func(path, s string) *Error {
		if strings.TrimSpace(s) == "" {
			return errAt(CodeBadValue, path, "model pattern must not be blank")
		}
		return nil
	}
	if p.AllowedModels, err = o.strs("allowed_models", 0, 256, 1, 256, modelGlob); err != nil {
		return nil, err
	}
	if p.MinimumModelIdentityTier, err = o.enum("minimum_model_identity_tier", modelTiers...); err != nil {
		return nil, err
	}
	pack := func(path, s string) *Error {
		if !b64u.IsValid(s) {
			return errAt(CodeBadValue, path, "audit pack must be base64url")
		}
		return nil
	}
	if p.RequiredAuditPacks, err = o.strs("required_audit_packs", 0, 64, 8, 128, pack); err != nil {
		return nil, err
	}
	if rr := v.Get("redaction_rules"); rr != nil {
		if !rr.IsArray() {
			return nil, errAt(CodeWrongType, "redaction_rules", "redaction_rules must be an array")
		}
		if len(rr.Items) > 256 {
			return nil, errAt(CodeLimit, "redaction_rules", "at most 256 redaction rules")
		}
		for i := range rr.Items {
			path := "redaction_rules[" + strconv.Itoa(i) + "]"
			it := &rr.Items[i]
			if !it.IsObject() {
				return nil, errAt(CodeWrongType, path, "a redaction rule must be an object")
			}
			ro := obj{v: it, path: path}
			if err := ro.closed([]string{"path", "action"}, "path", "action"); err != nil {
				return nil, err
			}
			var r RedactionRule
			if r.Path, err = ro.str("path", 1, 512); err != nil {
				return nil, err
			}
			if _, perr := ParseRedactionPath(r.Path); perr != nil {
				return nil, errAt(CodeBadValue, ro.at("path"), "%v", perr)
			}
			if r.Action, err = ro.enum("action", "remove", "hash", "mask"); err != nil {
				return nil, err
			}
			p.RedactionRules = append(p.RedactionRules, r)
		}
	}
	if p.ReceiptPrivacyMode, err = o.enum("receipt_privacy_mode", "hash_only", "encrypted"); err != nil {
		return nil, err
	}
	if p.EgressAllowlist, err = o.strs("egress_allowlist", 0, 256, 1, 256, nil); err != nil {
		return nil, err
	}
	if p.Metadata, err = o.object("metadata"); err != nil {
		return nil, err
	}
	return p, nil
}

func parseV2(v *canon.Value) (*V2, *Error) {
	p, errs := checkV2(v, false)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return p, nil
}

// checkV2 validates a v2 document. With all set it goes on past a problem
// to every other top-level field and every other statement (policy lint);
// otherwise it stops at the first.
func checkV2(v *canon.Value, all bool) (*V2, []*Error) {
	var errs []*Error
	// fail records e and reports whether to stop.
	fail := func(e *Error) bool {
		errs = append(errs, e)
		return !all
	}
	o := obj{v: v}
	required := []string{"policy_version", "policy_id", "issuer_did", "statements"}
	allowed := []string{"policy_version", "policy_id", "issuer_did", "inherits", "coverage_enforcement", "witnessed_web_policy",
		"statements", "metadata"}
	if !all {
		if err := o.closed(required, allowed...); err != nil {
			return nil, []*Error{err}
		}
	} else {
		for _, m := range v.Members {
			if !slices.Contains(allowed, m.Key) {
				fail(errAt(CodeUnknownField, o.at(m.Key), "unknown field %q", m.Key))
			}
		}
		for _, r := range required {
			if v.Get(r) == nil {
				fail(errAt(CodeMissingField, o.at(r), "%s is required", r))
			}
		}
	}
	p := &V2{}
	var err *Error
	if p.PolicyID, err = o.str("policy_id", 1, 128); err != nil && fail(err) {
		return nil, errs
	}
	if p.IssuerDID, err = checkIssuer(o); err != nil && fail(err) {
		return nil, errs
	}
	if p.Inherits, err = o.str("inherits", 1, 128); err != nil && fail(err) {
		return nil, errs
	}
	if p.Inherits != "" && p.Inherits == p.PolicyID && fail(errAt(CodeInheritsCycle, "inherits", "policy %q inherits from itself", p.PolicyID)) {
		return nil, errs
	}
	if p.CoverageEnforcement, err = o.enum("coverage_enforcement", "observe", "warn", "enforce"); err != nil && fail(err) {
		return nil, errs
	}
	if err := checkWitnessedWeb(v.Get("witnessed_web_policy")); err != nil && fail(err) {
		return nil, errs
	}
	if p.Metadata, err = o.object("metadata"); err != nil && fail(err) {
		return nil, errs
	}
	st := v.Get("statements")
	switch {
	case st == nil:
		return nil, errs // reported as missing above
	case !st.IsArray():
		fail(errAt(CodeWrongType, "statements", "statements must be an array"))
		return nil, errs
	case len(st.Items) < 1:
		fail(errAt(CodeBadValue, "statements", "a policy needs at least one statement"))
		return nil, errs
	case len(st.Items) > 64 && fail(errAt(CodeLimit, "statements", "%d statements; the limit is 64", len(st.Items))):
		return nil, errs
	}
	seen := map[string]int{}
	for i := range st.Items {
		s, err := parseStatement(&st.Items[i], "statements["+strconv.Itoa(i)+"]")
		if err != nil {
			if fail(err) {
				return nil, errs
			}
			continue
		}
		if j, dup := seen[s.SID]; dup {
			if fail(errAt(CodeDuplicateSID, "statements["+strconv.Itoa(i)+"].sid", "sid %q is also used by statements[%d]", s.SID, j)) {
				return nil, errs
			}
			continue
		}
		seen[s.SID] = i
		p.Statements = append(p.Statements, s)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// Problems validates a WPC document like Parse and lists every problem it
// finds, not only the first: for a v2 document each top-level field and
// each statement is checked on its own (a statement's first problem is
// reported, then the next statement is checked); a document that is not
// JSON, not an object, or of no known version has one problem. Nil when
// the document is valid.
func Problems(data []byte) []*Error {
	_, err := Parse(data)
	if err == nil {
		return nil
	}
	first, _ := err.(*Error)
	if first == nil {
		return []*Error{{Code: CodeInvalidJSON, Msg: err.Error()}}
	}
	v, perr := canon.Parse(data)
	if perr != nil || len(data) > MaxDocumentBytes || v.Kind != canon.Object {
		return []*Error{first}
	}
	if ver := v.Get("policy_version"); ver == nil || !ver.IsString() || ver.Str != "2" {
		return []*Error{first}
	}
	_, errs := checkV2(&v, true)
	if len(errs) == 0 {
		return []*Error{first}
	}
	return errs
}

func checkWitnessedWeb(w *canon.Value) *Error {
	if w == nil {
		return nil
	}
	const path = "witnessed_web_policy"
	if !w.IsObject() {
		return errAt(CodeWrongType, path, "witnessed_web_policy must be an object")
	}
	o := obj{v: w, path: path}
	if err := o.closed(nil, "mode", "quorum", "transparency"); err != nil {
		return err
	}
	if _, err := o.enum("mode", "warn", "enforce"); err != nil {
		return err
	}
	if q := w.Get("quorum"); q != nil {
		qo := obj{v: q, path: path + ".quorum"}
		if !q.IsObject() {
			return errAt(CodeWrongType, qo.path, "quorum must be an object")
		}
		if err := qo.closed([]string{"m", "n"}, "m", "n"); err != nil {
			return err
		}
		for _, k := range []string{"m", "n"} {
			if x := q.Get(k); !x.IsNumber() || x.Num < 1 {
				return errAt(CodeBadValue, qo.at(k), "%s must be a number >= 1", k)
			}
		}
	}
	if t := w.Get("transparency"); t != nil {
		to := obj{v: t, path: path + ".transparency"}
		if !t.IsObject() {
			return errAt(CodeWrongType, to.path, "transparency must be an object")
		}
		if err := to.closed(nil, "mode", "required_after"); err != nil {
			return err
		}
		if _, err := to.enum("mode", "optional", "warn", "enforce"); err != nil {
			return err
		}
		if s, err := to.str("required_after", 1, 0); err != nil {
			return err
		} else if s != "" && !isDateTime(s) {
			return errAt(CodeBadValue, to.at("required_after"), "required_after must be an RFC 3339 date-time")
		}
	}
	return nil
}

func parseStatement(v *canon.Value, path string) (Statement, *Error) {
	var s Statement
	if !v.IsObject() {
		return s, errAt(CodeWrongType, path, "a statement must be an object")
	}
	o := obj{v: v, path: path}
	if err := o.closed([]string{"sid", "effect", "actions", "resources"}, "sid", "effect", "actions", "resources", "conditions"); err != nil {
		return s, err
	}
	var err *Error
	if s.SID, err = o.str("sid", 1, 128); err != nil {
		return s, err
	}
	if s.Effect, err = o.enum("effect", "Allow", "Deny"); err != nil {
		return s, err
	}
	globCheck := func(p, pat string) *Error {
		if err := checkGlob(pat); err != nil {
			return errAt(CodeBadGlob, p, "%v", err)
		}
		return nil
	}
	if s.Actions, err = o.strs("actions", 1, 64, 1, 256, globCheck); err != nil {
		return s, err
	}
	if s.Resources, err = o.strs("resources", 1, 256, 1, 512, globCheck); err != nil {
		return s, err
	}
	cond := v.Get("conditions")
	if cond == nil {
		return s, nil
	}
	cpath := o.at("conditions")
	if !cond.IsObject() {
		return s, errAt(CodeWrongType, cpath, "conditions must be an object")
	}
	for _, op := range cond.Members {
		opPath := cpath + "." + op.Key
		if !isOperator(op.Key) {
			return s, errAt(CodeUnknownOperator, opPath, "unknown condition operator %q (known: %s)", op.Key, strings.Join(Operators, ", "))
		}
		if !op.Value.IsObject() {
			return s, errAt(CodeWrongType, opPath, "%s must map context keys to string values", op.Key)
		}
		if len(op.Value.Members) > 16 {
			return s, errAt(CodeLimit, opPath, "at most 16 keys per operator")
		}
		for _, kv := range op.Value.Members {
			kvPath := opPath + "." + kv.Key
			if kv.Key == "" {
				return s, errAt(CodeBadValue, kvPath, "context key must not be empty")
			}
			if !kv.Value.IsString() {
				return s, errAt(CodeWrongType, kvPath, "condition values are strings (write \"131072\", \"true\")")
			}
			if len([]rune(kv.Value.Str)) > 512 {
				return s, errAt(CodeLimit, kvPath, "condition value longer than 512 characters")
			}
			if err := checkConditionValue(op.Key, kv.Value.Str); err != nil {
				return s, errAt(CodeBadCondition, kvPath, "%v", err)
			}
			s.Conditions = append(s.Conditions, Condition{Operator: op.Key, Key: kv.Key, Value: kv.Value.Str})
		}
	}
	return s, nil
}

func isOperator(op string) bool {
	for _, o := range Operators {
		if op == o {
			return true
		}
	}
	return false
}

func checkConditionValue(op, v string) error {
	switch op {
	case "NumericEquals", "NumericLessThan", "NumericGreaterThan":
		if _, err := parseNumber(v); err != nil {
			return fmt.Errorf("%s needs a number, got %q", op, v)
		}
	case "Bool":
		if v != "true" && v != "false" {
			return fmt.Errorf("Bool needs \"true\" or \"false\", got %q", v)
		}
	case "IpAddress":
		if _, err := parsePrefix(v); err != nil {
			return fmt.Errorf("IpAddress needs an IP address or CIDR, got %q", v)
		}
	case "StringLike", "StringNotLike":
		return checkGlob(v)
	}
	return nil
}

func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	return strconv.ParseFloat(s, 64)
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func isDateTime(s string) bool {
	_, err := parseRFC3339(s)
	return err == nil
}
