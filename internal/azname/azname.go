// Package azname checks Azure resource names of the letters, digits and
// hyphens family (Key Vault vaults, Service Bus namespaces) and folds them
// to the one canonical form clawea uses: lower case. Azure resolves these
// names without regard to case, so the policy, the connector and the
// evidence must all see the same spelling.
package azname

import "fmt"

// Fold checks that name has min to max characters, all ASCII letters,
// digits or '-', starts with a letter and ends with a letter or digit, and
// returns it in lower case. Otherwise problem says what is wrong, in words
// for an error message.
func Fold(name string, min, max int) (folded, problem string) {
	if len(name) < min || len(name) > max {
		return "", fmt.Sprintf("%d to %d characters", min, max)
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
				return "", "must start with a letter"
			}
		default:
			return "", "only letters, digits and '-'"
		}
		out[i] = c
	}
	if name[len(name)-1] == '-' {
		return "", "must end with a letter or digit"
	}
	return string(out), ""
}

// Lower folds ASCII upper-case letters only (the grammars admit no other
// letters); it allocates only when s has one.
func Lower(s string) string {
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
