package policy

import "fmt"

// Warning is a lint finding that does not make a policy invalid.
type Warning struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
}

// Lint returns advice about a valid policy: rules that are legal but
// probably not what the author meant.
func Lint(d *Document) []Warning {
	var ws []Warning
	if d.V1 != nil {
		for i, r := range d.V1.RedactionRules {
			if r.Action == "hash" {
				ws = append(ws, Warning{fmt.Sprintf("redaction_rules[%d].action", i),
					"clawea replaces the value with its SHA-256; the reference gateway writes a fixed placeholder instead"})
			}
		}
		return ws
	}
	for i, s := range d.V2.Statements {
		path := fmt.Sprintf("statements[%d]", i)
		for _, c := range s.Conditions {
			if s.Effect == "Deny" && (c.Operator == "StringNotEquals" || c.Operator == "StringNotLike") {
				ws = append(ws, Warning{path + ".conditions." + c.Operator,
					fmt.Sprintf("when %s is absent this condition is false, so the Deny does not apply; the reference evaluator would apply it", c.Key)})
			}
		}
		if s.Effect == "Allow" && len(s.Conditions) == 0 && contains(s.Actions, "*") && (contains(s.Resources, "*") || contains(s.Resources, "**")) {
			ws = append(ws, Warning{path, "allows every action on every resource"})
		}
	}
	return ws
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
