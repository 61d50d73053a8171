package keyvault

import (
	"fmt"
	"strings"

	"github.com/clawea/clawea/internal/azname"
)

// Canonical forms. Key Vault compares vault and secret names without
// regard to case, so "PROD/db" and "prod/db" are the same secret. Every
// name that enters clawea is checked against Azure's grammar and folded to
// lower case here, once, before a policy decides on it: the canonical form
// is what the policy, the connector, receipts, approvals and redaction
// labels see. Anything outside the grammar (non-ASCII letters such as
// full-width or U+212A KELVIN SIGN, zero-width characters, '%', NUL,
// spaces, '.', empty segments) is refused rather than folded.

// Vault name limits (Azure: 3-24 characters).
const (
	minVaultLen = 3
	maxVaultLen = 24
)

// CanonicalVault checks a vault name against Azure's grammar (3-24
// letters, digits and '-'; starts with a letter; ends with a letter or
// digit; no "--") and returns it in lower case. Errors wrap ErrInvalid.
func CanonicalVault(name string) (string, error) {
	out, problem := azname.Fold(name, minVaultLen, maxVaultLen)
	if problem == "" && strings.Contains(out, "--") {
		problem = "has consecutive hyphens"
	}
	if problem != "" {
		return "", fmt.Errorf("%w: vault name %q: %s", ErrInvalid, clip(name), problem)
	}
	return out, nil
}

// CanonicalSecretPath checks a secret path (segments of letters, digits
// and '-' separated by '/', as ToName maps it to a name of at most 127
// characters) and returns it in lower case. Errors wrap ErrInvalid.
func CanonicalSecretPath(path string) (string, error) {
	if _, err := ToName(path); err != nil {
		return "", fmt.Errorf("%w: secret path %q: segments of letters, digits and '-' separated by '/', at most 127 characters as a name", ErrInvalid, clip(path))
	}
	return lowerASCII(path), nil
}

// lowerASCII folds ASCII upper-case letters only.
func lowerASCII(s string) string { return azname.Lower(s) }
