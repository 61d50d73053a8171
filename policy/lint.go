package policy

import (
	"fmt"
	"strings"
)

// Warning is a lint finding that does not make a policy invalid.
type Warning struct {
	Code string `json:"code"`
	Path string `json:"path"`
	Msg  string `json:"message"`
}

// Warning codes (stable).
const (
	// WarnHashRedaction: a v1 "hash" redaction rule differs from the
	// reference gateway's placeholder.
	WarnHashRedaction = "REDACTION_HASH_DIFFERS"
	// WarnNegatedDeny: a Deny with StringNotEquals/StringNotLike does not
	// apply when its key is absent.
	WarnNegatedDeny = "DENY_NEGATED_CONDITION"
	// WarnAllowAll: an unconditional Allow of every action on every resource.
	WarnAllowAll = "ALLOW_EVERYTHING"
	// WarnResourcePatternFolded: a resource pattern that can match kv:// or
	// sb:// resources has upper-case letters; it is compiled in lower case
	// (fold.go).
	WarnResourcePatternFolded = "RESOURCE_PATTERN_FOLDED"
	// WarnResourcePatternUnmatchable: a kv:// or sb:// pattern has a
	// character no canonical name contains (non-ASCII, space, '%', ...),
	// so the pattern can never match there.
	WarnResourcePatternUnmatchable = "RESOURCE_PATTERN_UNMATCHABLE"
	// WarnConditionValueFolded: a String* condition on a connector name key
	// (FoldedKeys) has upper-case letters; it is compared in lower case.
	WarnConditionValueFolded = "CONDITION_VALUE_FOLDED"
	// WarnConditionKeyCase: a condition key is a known key written in
	// another case; it is compiled to the known spelling.
	WarnConditionKeyCase = "CONDITION_KEY_CASE"
	// WarnConditionKeyUnknown: no gateway sets the key, so the condition
	// is false for every request (an Allow never applies through it, a
	// Deny never fires).
	WarnConditionKeyUnknown = "CONDITION_KEY_UNKNOWN"
	// WarnAllowOnClaim: an Allow is conditioned on a Claim: key, a value
	// the caller asserts without proof (the agent holds the job token), so
	// the agent can make the condition true.
	WarnAllowOnClaim = "ALLOW_ON_UNPROVEN_CLAIM"
	// WarnJobKeyOutsideJobAction: Job:TTL, Job:Scope or Job:WriteScope is
	// set only on job:start and token:issue decisions; on a statement that
	// names neither action the condition is false for every request.
	WarnJobKeyOutsideJobAction = "JOB_KEY_OUTSIDE_JOB_ACTION"
	// WarnJobLabelName: a Job:Label.<name> key whose name no label can
	// have (labels are lower-case letters, digits and '_').
	WarnJobLabelName = "JOB_LABEL_NAME_INVALID"
)

// jobOnlyKeys are set on job:start and token:issue decisions only.
var jobOnlyKeys = []string{"Job:TTL", "Job:Scope", "Job:WriteScope"}

// namesJobAction reports whether a statement's actions can match job:start
// or token:issue.
func namesJobAction(actions []string) bool {
	for _, a := range actions {
		g := compileGlob(a)
		if g.match(ActionJobStart) || g.match(ActionTokenIssue) {
			return true
		}
	}
	return false
}

// Lint returns advice about a valid policy: rules that are legal but
// probably not what the author meant.
func Lint(d *Document) []Warning {
	var ws []Warning
	if d.V1 != nil {
		for i, r := range d.V1.RedactionRules {
			if r.Action == "hash" {
				ws = append(ws, Warning{WarnHashRedaction, fmt.Sprintf("redaction_rules[%d].action", i),
					"clawea replaces the value with its SHA-256; the reference gateway writes a fixed placeholder instead"})
			}
		}
		return ws
	}
	for i, s := range d.V2.Statements {
		path := fmt.Sprintf("statements[%d]", i)
		for j, r := range s.Resources {
			rp := fmt.Sprintf("%s.resources[%d]", path, j)
			if mayMatchConnector(r) && foldASCII(r) != r {
				ws = append(ws, Warning{WarnResourcePatternFolded, rp,
					fmt.Sprintf("Key Vault and Service Bus names are case-insensitive; for kv:// and sb:// resources %q is matched as %q", r, foldASCII(r))})
			}
			if FoldsResource(r) {
				if bad, ok := outsideCanonical(r); ok {
					ws = append(ws, Warning{WarnResourcePatternUnmatchable, rp,
						fmt.Sprintf("%q contains %+q, which no canonical Key Vault or Service Bus name contains; the pattern never matches", r, bad)})
				}
			}
		}
		for _, c := range s.Conditions {
			kp := path + ".conditions." + c.Operator + "." + c.Key
			if ck, known := CanonicalKey(c.Key); !known {
				ws = append(ws, Warning{WarnConditionKeyUnknown, kp,
					fmt.Sprintf("no gateway sets %q (see the context keys in docs/policy.md), so this condition is false for every request", c.Key)})
			} else if ck != c.Key {
				ws = append(ws, Warning{WarnConditionKeyCase, kp, fmt.Sprintf("%q is compiled as the known key %q", c.Key, ck)})
			}
			if strings.HasPrefix(c.Operator, "String") && foldsKey(c.Key) && foldASCII(c.Value) != c.Value {
				ws = append(ws, Warning{WarnConditionValueFolded, path + ".conditions." + c.Operator + "." + c.Key,
					fmt.Sprintf("%s is a case-insensitive Azure name, compared in lower case: %q is compared as %q", c.Key, c.Value, foldASCII(c.Value))})
			}
			if ck, _ := CanonicalKey(c.Key); contains(jobOnlyKeys, ck) && !namesJobAction(s.Actions) {
				ws = append(ws, Warning{WarnJobKeyOutsideJobAction, kp,
					fmt.Sprintf("%s is set only on %s and %s decisions; this statement names neither, so the condition is false for every request", ck, ActionJobStart, ActionTokenIssue)})
			}
			if ck, _ := CanonicalKey(c.Key); strings.HasPrefix(ck, LabelKeyPrefix) && !ValidLabelName(ck[len(LabelKeyPrefix):]) {
				ws = append(ws, Warning{WarnJobLabelName, kp,
					fmt.Sprintf("%q is not a label name (1 to 64 of a-z, 0-9 and '_', starting with a letter), so no job has it", ck[len(LabelKeyPrefix):])})
			}
			if s.Effect == "Allow" && IsClaimKey(c.Key) {
				ws = append(ws, Warning{WarnAllowOnClaim, kp,
					fmt.Sprintf("%s is claimed by the agent's runtime, not proven: the agent can make this condition hold, so it does not restrict the Allow (use it in a Deny)", c.Key)})
			}
			if s.Effect == "Deny" && (c.Operator == "StringNotEquals" || c.Operator == "StringNotLike") {
				ws = append(ws, Warning{WarnNegatedDeny, path + ".conditions." + c.Operator,
					fmt.Sprintf("when %s is absent this condition is false, so the Deny does not apply; the reference evaluator would apply it", c.Key)})
			}
		}
		if s.Effect == "Allow" && len(s.Conditions) == 0 && contains(s.Actions, "*") && (contains(s.Resources, "*") || contains(s.Resources, "**")) {
			ws = append(ws, Warning{WarnAllowAll, path, "allows every action on every resource"})
		}
	}
	return ws
}

// outsideCanonical returns the first character of a kv:// or sb:// pattern
// that cannot occur in a canonical resource (the connectors' grammars:
// ASCII letters, digits, '-', '.', '_', '/', plus ':' of the scheme, '$'
// of a dead-letter queue and the wildcards).
func outsideCanonical(p string) (rune, bool) {
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("-._/:$*?", r):
		default:
			return r, true
		}
	}
	return 0, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
