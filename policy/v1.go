package policy

import "strings"

// The v1 rules are enforced by the model gateway.

// AllowsProvider reports whether a v1 policy allows provider (exact match;
// an empty list allows any).
func (p *V1) AllowsProvider(provider string) bool {
	if len(p.AllowedProviders) == 0 {
		return true
	}
	for _, a := range p.AllowedProviders {
		if a == provider {
			return true
		}
	}
	return false
}

// AllowsModel reports whether model matches allowed_models: glob with '*'
// only, case-insensitive, anchored, as the reference gateway matches. An
// empty list allows any model.
func (p *V1) AllowsModel(model string) bool {
	if len(p.AllowedModels) == 0 {
		return true
	}
	m := strings.ToLower(model)
	for _, pat := range p.AllowedModels {
		if starMatch(strings.ToLower(pat), m) {
			return true
		}
	}
	return false
}

// AllowsEgress reports whether host is in egress_allowlist ("*.example.com"
// matches subdomains; an empty list allows any host).
func (p *V1) AllowsEgress(host string) bool {
	if len(p.EgressAllowlist) == 0 {
		return true
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, a := range p.EgressAllowlist {
		a = strings.ToLower(a)
		if a == h || strings.HasPrefix(a, "*.") && strings.HasSuffix(h, a[1:]) {
			return true
		}
	}
	return false
}

// starMatch matches s against a pattern whose only wildcard is '*' (any
// run, '/' included).
func starMatch(pat, s string) bool {
	px, sx := 0, 0
	starPx, starSx := 0, 0 // where to resume after the last '*'; starSx 0 means none
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			if pat[px] == '*' {
				starPx, starSx = px, sx+1
				px++
				continue
			}
			if sx < len(s) && pat[px] == s[sx] {
				px++
				sx++
				continue
			}
		}
		if 0 < starSx && starSx <= len(s) {
			px, sx = starPx, starSx
			continue
		}
		return false
	}
	return true
}
