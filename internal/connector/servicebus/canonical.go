package servicebus

import (
	"errors"
	"fmt"

	"github.com/clawea/clawea/internal/azname"
)

// Canonical forms. Service Bus compares namespace and entity names without
// regard to case, so "Orders-Prod" and "orders-prod" are the same queue.
// Every name that enters clawea is checked against Azure's grammar and
// folded to lower case here, once, before a policy decides on it: the
// canonical form is what the policy, the connector, receipts, counters,
// approvals and redaction labels see. Anything outside the grammar
// (non-ASCII letters such as full-width or U+212A KELVIN SIGN, zero-width
// characters, '%', NUL, spaces, '$' sub-queues, empty or "." segments) is
// refused rather than folded.

// ErrInvalidNamespace is returned (wrapped with detail) for a namespace
// name outside Azure's grammar.
var ErrInvalidNamespace = errors.New("servicebus: invalid namespace name")

// Namespace name limits (Azure: 6-50 characters).
const (
	minNamespaceLen = 6
	maxNamespaceLen = 50
)

// CanonicalNamespace checks a namespace name against Azure's grammar (6-50
// letters, digits and '-'; starts with a letter; ends with a letter or
// digit) and returns it in lower case. Errors wrap ErrInvalidNamespace.
func CanonicalNamespace(name string) (string, error) {
	out, problem := azname.Fold(name, minNamespaceLen, maxNamespaceLen)
	if problem != "" {
		return "", fmt.Errorf("%w: %q: %s", ErrInvalidNamespace, clipName(name), problem)
	}
	return out, nil
}

// CanonicalEntity checks an entity string (a queue or topic path, or
// "topic/subscriptions/name"; see parseEntity) and returns its canonical
// form: lower case, with the "subscriptions" separator spelled so. Errors
// wrap ErrInvalidEntity.
func CanonicalEntity(entity string) (string, error) {
	e, err := parseEntity(entity)
	if err != nil {
		return "", err
	}
	return e.key(), nil
}

func clipName(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// lowerASCII folds ASCII upper-case letters only.
func lowerASCII(s string) string { return azname.Lower(s) }
