package servicebus

import (
	"errors"
	"fmt"
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
	if len(name) < minNamespaceLen || len(name) > maxNamespaceLen {
		return "", fmt.Errorf("%w: %q: 6 to 50 characters", ErrInvalidNamespace, clipName(name))
	}
	out := make([]byte, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9', c == '-':
			if i == 0 {
				return "", fmt.Errorf("%w: %q must start with a letter", ErrInvalidNamespace, clipName(name))
			}
		default:
			return "", fmt.Errorf("%w: %q: only letters, digits and '-'", ErrInvalidNamespace, clipName(name))
		}
		out[i] = c
	}
	if name[len(name)-1] == '-' {
		return "", fmt.Errorf("%w: %q must end with a letter or digit", ErrInvalidNamespace, clipName(name))
	}
	return string(out), nil
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

// lowerASCII folds ASCII upper-case letters only; the grammars admit no
// other letters.
func lowerASCII(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			if b == nil {
				b = []byte(s)
			}
			b[i] = c + 'a' - 'A'
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}
