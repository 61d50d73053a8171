package keyvault

import "fmt"

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
	if len(name) < minVaultLen || len(name) > maxVaultLen {
		return "", fmt.Errorf("%w: vault name %q: 3 to 24 characters", ErrInvalid, clip(name))
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
				return "", fmt.Errorf("%w: vault name %q must start with a letter", ErrInvalid, clip(name))
			}
		default:
			return "", fmt.Errorf("%w: vault name %q: only letters, digits and '-'", ErrInvalid, clip(name))
		}
		out[i] = c
	}
	if last := name[len(name)-1]; last == '-' {
		return "", fmt.Errorf("%w: vault name %q must end with a letter or digit", ErrInvalid, clip(name))
	}
	for i := 1; i < len(name); i++ {
		if name[i] == '-' && name[i-1] == '-' {
			return "", fmt.Errorf("%w: vault name %q has consecutive hyphens", ErrInvalid, clip(name))
		}
	}
	return string(out), nil
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

// lowerASCII folds ASCII upper-case letters only; the grammars above admit
// no other letters.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
