// Package token implements clawea's scoped tokens (CST): EdDSA JSON Web
// Tokens for one job, in the Clawsig protocol's format (PROTOCOL.md §3),
// the token scope hash, and a verifier that runs the reference gateway's
// checks in its order and then clawea's own: key id lookup among current
// and rotated keys, revocation, and job binding (the token's mission_id
// must name an open job whose recorded scope hash equals the token's).
//
// The package holds no state: the verifier asks a State (issuer keys,
// revocations, jobs) that the caller keeps current.
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/clawea/clawea/b64u"
	"github.com/clawea/clawea/canon"
)

// Claims are a CST's claims, in the order the issuer writes them.
type Claims struct {
	TokenVersion            string   `json:"token_version"`
	Sub                     string   `json:"sub"`
	Aud                     Audience `json:"aud"`
	Scope                   []string `json:"scope"`
	Iat                     int64    `json:"iat"`
	Exp                     int64    `json:"exp"`
	OwnerRef                string   `json:"owner_ref,omitempty"`
	OwnerDID                string   `json:"owner_did,omitempty"`
	ControllerDID           string   `json:"controller_did,omitempty"`
	AgentDID                string   `json:"agent_did,omitempty"`
	PolicyHash              string   `json:"policy_hash_b64u,omitempty"`
	ControlPlanePolicyHash  string   `json:"control_plane_policy_hash_b64u,omitempty"`
	TokenScopeHash          string   `json:"token_scope_hash_b64u,omitempty"`
	PaymentAccountDID       string   `json:"payment_account_did,omitempty"`
	SpendCap                *float64 `json:"spend_cap,omitempty"`
	MissionID               string   `json:"mission_id,omitempty"`
	DelegationID            string   `json:"delegation_id,omitempty"`
	DelegatorDID            string   `json:"delegator_did,omitempty"`
	DelegateDID             string   `json:"delegate_did,omitempty"`
	DelegationPolicyHash    string   `json:"delegation_policy_hash_b64u,omitempty"`
	DelegationSpendCapMinor string   `json:"delegation_spend_cap_minor,omitempty"`
	DelegationExpiresAt     *int64   `json:"delegation_expires_at,omitempty"`
	TokenLane               string   `json:"token_lane,omitempty"`
	JTI                     string   `json:"jti,omitempty"`
	Nonce                   string   `json:"nonce,omitempty"`
}

// Audience is aud: one string or a list, written back as it was read.
type Audience struct {
	Values []string
	Single bool
}

// MarshalJSON writes a string for a single audience, else a list.
func (a Audience) MarshalJSON() ([]byte, error) {
	if a.Single && len(a.Values) == 1 {
		return json.Marshal(a.Values[0])
	}
	if a.Values == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(a.Values)
}

// UnmarshalJSON reads a string or a list of strings.
func (a *Audience) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*a = Audience{Values: []string{s}, Single: true}
		return nil
	}
	var l []string
	if err := json.Unmarshal(data, &l); err != nil {
		return errors.New("aud must be a string or a list of strings")
	}
	*a = Audience{Values: l}
	return nil
}

// Aud returns an Audience of the given values (a single one is written
// as a string).
func Aud(values ...string) Audience { return Audience{Values: values, Single: len(values) == 1} }

// normalizeList trims, drops empties, de-duplicates and sorts by UTF-16
// code units, as the scope hash does.
func normalizeList(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, canon.CompareUTF16)
	return out
}

// ScopeHash computes token_scope_hash_b64u: SHA-256 of the JCS form of the
// normalised subset of claims (PROTOCOL.md §3.3). Claims outside the subset
// (iat, exp, jti, nonce, token_lane, token_scope_hash_b64u) do not count.
func (c *Claims) ScopeHash() string {
	// The members are written straight in JCS order (sorted keys).
	buf := make([]byte, 0, 512)
	first := true
	member := func(k string) {
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = canon.AppendString(buf, k)
		buf = append(buf, ':')
	}
	str := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			member(k)
			buf = canon.AppendString(buf, v)
		}
	}
	list := func(k string, vals []string) {
		member(k)
		buf = append(buf, '[')
		for i, s := range normalizeList(vals) {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = canon.AppendString(buf, s)
		}
		buf = append(buf, ']')
	}
	buf = append(buf, '{')
	str("agent_did", c.AgentDID)
	list("aud", c.Aud.Values)
	str("control_plane_policy_hash_b64u", c.ControlPlanePolicyHash)
	str("controller_did", c.ControllerDID)
	str("delegate_did", c.DelegateDID)
	if c.DelegationExpiresAt != nil && *c.DelegationExpiresAt > 0 {
		member("delegation_expires_at")
		buf = canon.AppendNumber(buf, float64(*c.DelegationExpiresAt))
	}
	str("delegation_id", c.DelegationID)
	str("delegation_policy_hash_b64u", c.DelegationPolicyHash)
	if s := strings.TrimSpace(c.DelegationSpendCapMinor); isDigits(s) {
		str("delegation_spend_cap_minor", s)
	}
	str("delegator_did", c.DelegatorDID)
	str("mission_id", c.MissionID)
	str("owner_did", c.OwnerDID)
	str("owner_ref", c.OwnerRef)
	str("payment_account_did", c.PaymentAccountDID)
	str("policy_hash_b64u", c.PolicyHash)
	list("scope", c.Scope)
	if c.SpendCap != nil && !math.IsInf(*c.SpendCap, 0) && !math.IsNaN(*c.SpendCap) && *c.SpendCap >= 0 {
		member("spend_cap")
		buf = canon.AppendNumber(buf, *c.SpendCap)
	}
	member("sub")
	buf = canon.AppendString(buf, strings.TrimSpace(c.Sub))
	member("token_version")
	buf = canon.AppendString(buf, "1")
	buf = append(buf, '}')
	return b64u.SHA256(buf)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isClaimDID is the claims-shape DID rule: did:<method>:<id>, method
// letters and digits, id from [A-Za-z0-9._:%-] (case-insensitive).
func isClaimDID(s string) bool {
	if len(s) < 4 || !strings.EqualFold(s[:4], "did:") {
		return false
	}
	rest := s[4:]
	i := 0
	for i < len(rest) && (rest[i] >= 'a' && rest[i] <= 'z' || rest[i] >= 'A' && rest[i] <= 'Z' || rest[i] >= '0' && rest[i] <= '9') {
		i++
	}
	if i == 0 || i >= len(rest)-1 || rest[i] != ':' {
		return false
	}
	for _, c := range []byte(rest[i+1:]) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '%' || c == '-') {
			return false
		}
	}
	return true
}

// checkShape applies the claims-shape rules (TOKEN_INVALID_CLAIMS).
func (c *Claims) checkShape() error {
	switch {
	case c.TokenVersion != "1":
		return errors.New(`token_version must be "1"`)
	case strings.TrimSpace(c.Sub) == "":
		return errors.New("sub is required")
	case len(c.Scope) == 0:
		return errors.New("scope must list at least one scope")
	case len(normalizeList(c.Aud.Values)) == 0:
		return errors.New("aud must name at least one audience")
	case c.Iat <= 0 || c.Exp <= 0:
		return errors.New("iat and exp must be positive integers")
	}
	for _, d := range []struct{ name, v string }{{"owner_did", c.OwnerDID}, {"controller_did", c.ControllerDID}, {"agent_did", c.AgentDID},
		{"delegator_did", c.DelegatorDID}, {"delegate_did", c.DelegateDID}} {
		if d.v != "" && !isClaimDID(d.v) {
			return fmt.Errorf("%s is not a DID", d.name)
		}
	}
	for _, h := range []struct{ name, v string }{{"policy_hash_b64u", c.PolicyHash}, {"control_plane_policy_hash_b64u", c.ControlPlanePolicyHash},
		{"token_scope_hash_b64u", c.TokenScopeHash}, {"delegation_policy_hash_b64u", c.DelegationPolicyHash}} {
		if h.v != "" && !b64u.IsDigest(h.v) {
			return fmt.Errorf("%s must be 43 base64url characters", h.name)
		}
	}
	if c.SpendCap != nil && (*c.SpendCap < 0 || math.IsInf(*c.SpendCap, 0) || math.IsNaN(*c.SpendCap)) {
		return errors.New("spend_cap must be a number >= 0")
	}
	if c.DelegationSpendCapMinor != "" && !isDigits(c.DelegationSpendCapMinor) {
		return errors.New("delegation_spend_cap_minor must be digits")
	}
	if c.TokenLane != "" && c.TokenLane != "legacy" && c.TokenLane != "canonical" {
		return errors.New("token_lane must be legacy or canonical")
	}
	return nil
}

// knownClaims are the claim names the format has; others are refused.
var knownClaims = map[string]bool{
	"token_version": true, "sub": true, "aud": true, "scope": true, "iat": true, "exp": true, "owner_ref": true,
	"owner_did": true, "controller_did": true, "agent_did": true, "policy_hash_b64u": true,
	"control_plane_policy_hash_b64u": true, "token_scope_hash_b64u": true, "payment_account_did": true,
	"spend_cap": true, "mission_id": true, "delegation_id": true, "delegator_did": true, "delegate_did": true,
	"delegation_policy_hash_b64u": true, "delegation_spend_cap_minor": true, "delegation_expires_at": true,
	"token_lane": true, "jti": true, "nonce": true,
}

// fromValue reads claims from a parsed payload, refusing unknown claims and
// wrong types.
func (c *Claims) fromValue(v *canon.Value) error {
	strs := map[string]*string{
		"token_version": &c.TokenVersion, "sub": &c.Sub, "owner_ref": &c.OwnerRef, "owner_did": &c.OwnerDID,
		"controller_did": &c.ControllerDID, "agent_did": &c.AgentDID, "policy_hash_b64u": &c.PolicyHash,
		"control_plane_policy_hash_b64u": &c.ControlPlanePolicyHash, "token_scope_hash_b64u": &c.TokenScopeHash,
		"payment_account_did": &c.PaymentAccountDID, "mission_id": &c.MissionID, "delegation_id": &c.DelegationID,
		"delegator_did": &c.DelegatorDID, "delegate_did": &c.DelegateDID, "delegation_policy_hash_b64u": &c.DelegationPolicyHash,
		"delegation_spend_cap_minor": &c.DelegationSpendCapMinor, "token_lane": &c.TokenLane, "jti": &c.JTI, "nonce": &c.Nonce,
	}
	integer := func(m *canon.Value, name string) (int64, error) {
		if !m.IsInteger() || math.Abs(m.Num) > 1<<53 {
			return 0, fmt.Errorf("%s must be an integer", name)
		}
		return int64(m.Num), nil
	}
	for i := range v.Members {
		k, m := v.Members[i].Key, &v.Members[i].Value
		if dst, ok := strs[k]; ok {
			if !m.IsString() {
				return fmt.Errorf("%s must be a string", k)
			}
			*dst = m.Str
			continue
		}
		var err error
		switch k {
		case "aud":
			switch m.Kind {
			case canon.String:
				c.Aud = Audience{Values: []string{m.Str}, Single: true}
			case canon.Array:
				c.Aud = Audience{Values: make([]string, 0, len(m.Items))}
				for j := range m.Items {
					if !m.Items[j].IsString() {
						return errors.New("aud must be a string or a list of strings")
					}
					c.Aud.Values = append(c.Aud.Values, m.Items[j].Str)
				}
			default:
				return errors.New("aud must be a string or a list of strings")
			}
		case "scope":
			if !m.IsArray() {
				return errors.New("scope must be a list of strings")
			}
			c.Scope = make([]string, 0, len(m.Items))
			for j := range m.Items {
				if !m.Items[j].IsString() {
					return errors.New("scope must be a list of strings")
				}
				c.Scope = append(c.Scope, m.Items[j].Str)
			}
		case "iat":
			c.Iat, err = integer(m, k)
		case "exp":
			c.Exp, err = integer(m, k)
		case "delegation_expires_at":
			var n int64
			n, err = integer(m, k)
			c.DelegationExpiresAt = &n
		case "spend_cap":
			if !m.IsNumber() {
				return errors.New("spend_cap must be a number")
			}
			f := m.Num
			c.SpendCap = &f
		default:
			return fmt.Errorf("unknown claim %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ScopeWrite is the scope a token needs for mutating tool calls: the
// gateways refuse a mutating call for a token without it
// (CodeWriteScopeRequired), whatever the policy says.
const ScopeWrite = "tool:write"

// CodeWriteScopeRequired refuses a mutating call made with a token that
// lacks ScopeWrite.
const CodeWriteScopeRequired = "TOKEN_WRITE_SCOPE_REQUIRED"

// CanWrite reports whether the claims carry the write scope.
func (c *Claims) CanWrite() bool { return slices.Contains(c.Scope, ScopeWrite) }
