package policy

import "strings"

// Connector names are case-insensitive on the Azure side: Key Vault vault
// and secret names, Service Bus namespaces and entities. The tool gateway
// hands the policy their canonical (lower-case) form, so a pattern an
// author typed as kv://Vault/secrets/PROD/** must mean the same as
// kv://vault/secrets/prod/**. The compiler therefore folds:
//
//   - every resource pattern, when it is matched against a kv:// or sb://
//     resource (the request's resource is folded too, so a caller that did
//     not canonicalise gets the same answer);
//   - the values of String* conditions on the context keys that carry
//     those names (FoldedKeys), and the context value they are compared to.
//
// The fold is ASCII-only: the connectors' grammars admit no other letters,
// and a Unicode fold would map U+212A KELVIN SIGN onto 'k'. Resources of
// other kinds (model://, tool://, mcp://) are matched as written. The
// policy hash is computed over the document as written; folding changes
// only how it is compiled. `clawea policy lint` warns where the fold
// changes a pattern (WarnResourcePatternFolded, WarnConditionValueFolded).

// FoldedKeys are the context keys whose String* condition values are
// compared in canonical (lower-case) form.
var FoldedKeys = []string{
	"KeyVault:Vault", "KeyVault:SecretName", "KeyVault:SecretVersion",
	"ServiceBus:Namespace", "ServiceBus:Entity",
}

// FoldsResource reports whether resource is of a kind whose names are
// compared without regard to case (kv:// or sb://, the scheme in any case).
func FoldsResource(resource string) bool {
	return len(resource) >= 5 && resource[2:5] == "://" &&
		(strings.EqualFold(resource[:2], "kv") || strings.EqualFold(resource[:2], "sb"))
}

// foldsKey reports whether key is one of FoldedKeys (in any case, as
// CanonicalKey matches keys).
func foldsKey(key string) bool {
	for _, k := range FoldedKeys {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// foldASCII lower-cases ASCII letters and leaves every other byte alone. It
// allocates only when s has an upper-case ASCII letter.
func foldASCII(s string) string {
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

// mayMatchConnector reports whether pattern p could match some kv:// or
// sb:// resource: its literal text before the first wildcard is
// compatible with one of those prefixes.
func mayMatchConnector(p string) bool {
	lit := p
	if i := strings.IndexAny(p, "*?"); i >= 0 {
		lit = p[:i]
	}
	lit = foldASCII(lit)
	for _, pre := range []string{"kv://", "sb://"} {
		if strings.HasPrefix(lit, pre) || strings.HasPrefix(pre, lit) {
			return true
		}
	}
	return false
}
