package policy

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "a/b/c", true},
		{"**", "a/b\nc", true},
		{"tool:*", "tool:a", true},
		{"tool:*", "tool:a/b", false},
		{"kv://v/secrets/agent/app/**", "kv://v/secrets/agent/app/x/y", true},
		{"kv://v/secrets/agent/app/**", "kv://v/secrets/agent/app/", true},
		{"kv://v/secrets/agent/app/**", "kv://v/secrets/agent/application", false},
		{"src/**/*.ts", "src/x.ts", true},
		{"src/**/*.ts", "src/a/b/x.ts", true},
		{"src/**/x.ts", "src/foox.ts", true}, // "**/" absorbs the slash, as the reference
		{"**/secrets/**", "mysecrets/x", true},
		{"**/secrets/**", "a/b/secrets/c", true},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"a?c", "ac", false},
		{"*.internal", "db.internal", true},
		{"*.internal", "x/db.internal", false},
		{"sb://*/orders-staging", "sb://ns/orders-staging", true},
		{"sb://*/orders-staging", "sb://ns/x/orders-staging", false},
		{"a**b", "a\nb", false}, // ** inside a pattern does not cross line terminators
		{"a*b", "a\nb", true},
		{"Kv://x", "kv://x", false},
		{"a*b*c*d*e*f*g*h", strings.Repeat("a", 200) + "bcdefgh", true},
		{"a*b*c*d*e*f*g*h", strings.Repeat("ab", 200), false},
		{"é?ü", "éxü", true},
	}
	for _, tt := range tests {
		g := compileGlob(tt.pat)
		if got := g.match(tt.s); got != tt.want {
			t.Errorf("%q ~ %q = %v, want %v (kind %d)", tt.pat, tt.s, got, tt.want, g.kind)
		}
	}
}

func TestStarMatchV1(t *testing.T) {
	p := &V1{AllowedModels: []string{"gpt-4o*", "claude-*-sonnet", "exact"}}
	for m, want := range map[string]bool{"gpt-4o-mini": true, "GPT-4O": true, "claude-3-sonnet": true, "claude-3-opus": false, "exact": true, "exactly": false, "": false} {
		if got := p.AllowsModel(m); got != want {
			t.Errorf("AllowsModel(%q) = %v", m, got)
		}
	}
}

func mustParse(t testing.TB, s string) *Document {
	t.Helper()
	d, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const condPolicy = `{"policy_version":"2","policy_id":"c","issuer_did":"did:key:z6Mk","statements":[
 {"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{%s}}]}`

func TestConditions(t *testing.T) {
	tests := []struct {
		cond string
		ctx  map[string]string
		want Effect
	}{
		{`"StringEquals":{"k":"v"}`, map[string]string{"k": "v"}, Allow},
		{`"StringEquals":{"k":"v"}`, map[string]string{"k": "V"}, Deny},
		{`"StringEquals":{"k":"v"}`, nil, Deny},
		{`"StringNotEquals":{"k":"v"}`, map[string]string{"k": "w"}, Allow},
		{`"StringNotEquals":{"k":"v"}`, nil, Deny}, // absent key: false, even for negations
		{`"StringLike":{"k":"agent/*"}`, map[string]string{"k": "agent/x"}, Allow},
		{`"StringNotLike":{"k":"agent/*"}`, map[string]string{"k": "other"}, Allow},
		{`"StringNotLike":{"k":"agent/*"}`, nil, Deny},
		{`"NumericLessThan":{"k":"131072"}`, map[string]string{"k": "131071"}, Allow},
		{`"NumericLessThan":{"k":"131072"}`, map[string]string{"k": "131072"}, Deny},
		{`"NumericLessThan":{"k":"10"}`, map[string]string{"k": "9am"}, Deny}, // must parse in full
		{`"NumericGreaterThan":{"k":"1.5"}`, map[string]string{"k": "2"}, Allow},
		{`"NumericEquals":{"k":"1e3"}`, map[string]string{"k": "1000"}, Allow},
		{`"NumericEquals":{"k":"1"}`, map[string]string{"k": "NaN"}, Deny},
		{`"Bool":{"k":"true"}`, map[string]string{"k": "TRUE"}, Allow},
		{`"Bool":{"k":"false"}`, map[string]string{"k": "false"}, Allow},
		{`"Bool":{"k":"false"}`, nil, Deny},
		{`"IpAddress":{"k":"10.0.0.0/8"}`, map[string]string{"k": "10.1.2.3"}, Allow},
		{`"IpAddress":{"k":"10.0.0.0/8"}`, map[string]string{"k": "11.1.2.3"}, Deny},
		{`"IpAddress":{"k":"10.1.2.3"}`, map[string]string{"k": "10.1.2.3"}, Allow},
		{`"IpAddress":{"k":"fd00::/8"}`, map[string]string{"k": "fd12::1"}, Allow},
		{`"IpAddress":{"k":"10.0.0.0/8"}`, map[string]string{"k": "::ffff:10.0.0.1"}, Allow},
		{`"IpAddress":{"k":"10.0.0.0/8"}`, map[string]string{"k": "not-an-ip"}, Deny},
		{`"StringEquals":{"a":"1","b":"2"}`, map[string]string{"a": "1", "b": "2"}, Allow},
		{`"StringEquals":{"a":"1","b":"2"}`, map[string]string{"a": "1"}, Deny},
		{`"StringEquals":{"a":"1"},"Bool":{"b":"true"}`, map[string]string{"a": "1", "b": "true"}, Allow},
		{`"StringEquals":{"a":"1"},"Bool":{"b":"true"}`, map[string]string{"a": "1", "b": "false"}, Deny},
	}
	for _, tt := range tests {
		doc := mustParse(t, strings.Replace(condPolicy, "%s", tt.cond, 1))
		p, err := Compile(doc, nil)
		if err != nil {
			t.Fatal(err)
		}
		var d Decision
		p.Evaluate(&Request{Action: "a", Resource: "r", Context: MapContext(tt.ctx)}, &d)
		if d.Effect != tt.want {
			t.Errorf("%s with %v: %s, want %s", tt.cond, tt.ctx, d.Effect, tt.want)
		}
	}
}

func TestUnknownOperatorFailsClosed(t *testing.T) {
	c := ccond{op: opKind(99), src: Condition{Key: "k"}}
	if c.holds(MapContext{"k": "v"}) {
		t.Error("unknown operator held")
	}
}

func TestDenyWinsAndDefaultDeny(t *testing.T) {
	doc := mustParse(t, `{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z6Mk","statements":[
		{"sid":"A1","effect":"Allow","actions":["x:*"],"resources":["**"]},
		{"sid":"A2","effect":"Allow","actions":["x:read"],"resources":["r/**"]},
		{"sid":"D1","effect":"Deny","actions":["x:read"],"resources":["r/secret/**"]},
		{"sid":"D2","effect":"Deny","actions":["*"],"resources":["r/secret/**"]}]}`)
	p, _ := Compile(doc, nil)
	var d Decision
	p.Evaluate(&Request{Action: "x:read", Resource: "r/secret/a"}, &d)
	if d.Effect != Deny || strings.Join(d.Statements(), ",") != "D1,D2" || d.Reason != ReasonDenied {
		t.Errorf("deny: %v", d.String())
	}
	p.Evaluate(&Request{Action: "x:read", Resource: "r/open"}, &d)
	if d.Effect != Allow || strings.Join(d.Statements(), ",") != "A1,A2" {
		t.Errorf("allow: %v", d.String())
	}
	p.Evaluate(&Request{Action: "y:read", Resource: "r/open"}, &d)
	if d.Effect != Deny || len(d.Statements()) != 0 || d.Reason != ReasonDefaultDeny {
		t.Errorf("default: %v", d.String())
	}
}

func TestInherits(t *testing.T) {
	docs := map[string]*Document{
		"root": mustParse(t, `{"policy_version":"2","policy_id":"root","issuer_did":"did:key:z6Mk","statements":[
			{"sid":"RootAllowRead","effect":"Allow","actions":["read","write"],"resources":["**"]},
			{"sid":"RootDenyProd","effect":"Deny","actions":["*"],"resources":["prod/**"]}]}`),
		"mid": mustParse(t, `{"policy_version":"2","policy_id":"mid","issuer_did":"did:key:z6Mk","inherits":"root","statements":[
			{"sid":"MidAllow","effect":"Allow","actions":["read","write"],"resources":["team/**","prod/**"]},
			{"sid":"MidWriteApproval","effect":"Allow","actions":["approve-me"],"resources":["**"],"conditions":{"Bool":{"Request:HasHumanApproval":"true"}}}]}`),
	}
	resolve := func(id string) (*Document, error) { return docs[id], nil }
	p, err := Compile(docs["mid"], resolve)
	if err != nil {
		t.Fatal(err)
	}
	check := func(action, res string, want Effect, sids string) {
		t.Helper()
		var d Decision
		p.Evaluate(&Request{Action: action, Resource: res}, &d)
		if d.Effect != want || strings.Join(d.Statements(), ",") != sids {
			t.Errorf("%s %s: %s", action, res, d.String())
		}
	}
	check("read", "team/a", Allow, "root/RootAllowRead,MidAllow")
	check("read", "prod/a", Deny, "root/RootDenyProd") // parent denies although the child allows
	check("read", "other/a", Deny, "")                 // the child does not allow
	check("approve-me", "x", Deny, "")                 // parent does not allow it at all

	// A cycle through two documents.
	cyc := map[string]*Document{
		"a": mustParse(t, `{"policy_version":"2","policy_id":"a","issuer_did":"did:key:z6Mk","inherits":"b","statements":[{"sid":"s","effect":"Allow","actions":["*"],"resources":["*"]}]}`),
		"b": mustParse(t, `{"policy_version":"2","policy_id":"b","issuer_did":"did:key:z6Mk","inherits":"a","statements":[{"sid":"s","effect":"Allow","actions":["*"],"resources":["*"]}]}`),
	}
	_, err = Compile(cyc["a"], func(id string) (*Document, error) { return cyc[id], nil })
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeInheritsCycle {
		t.Errorf("cycle: %v", err)
	}
	_, err = Compile(docs["mid"], func(string) (*Document, error) { return nil, nil })
	if !errors.As(err, &pe) || pe.Code != CodeInheritsMissing {
		t.Errorf("missing parent: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	base := `{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z6Mk","statements":[%s]}`
	st := `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"]}`
	tests := []struct {
		name, doc, code, path string
	}{
		{"not json", `{`, CodeInvalidJSON, ""},
		{"array", `[]`, CodeNotObject, ""},
		{"no version", `{"policy_id":"p"}`, CodeMissingField, "policy_version"},
		{"version 3", `{"policy_version":"3"}`, CodeUnsupportedVersion, "policy_version"},
		{"numeric version", `{"policy_version":2}`, CodeWrongType, "policy_version"},
		{"unknown top-level key", `{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z6Mk","statements":[` + st + `],"extra":1}`, CodeUnknownField, "extra"},
		{"unknown statement key", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"Principal":"*"}`, 1), CodeUnknownField, "statements[0].Principal"},
		{"missing statements", `{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z6Mk"}`, CodeMissingField, "statements"},
		{"empty statements", strings.Replace(base, "%s", ``, 1), CodeBadValue, "statements"},
		{"wrong type actions", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":"a","resources":["r"]}`, 1), CodeWrongType, "statements[0].actions"},
		{"numeric action", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":[1],"resources":["r"]}`, 1), CodeWrongType, "statements[0].actions[0]"},
		{"bad effect", strings.Replace(base, "%s", `{"sid":"S","effect":"deny","actions":["a"],"resources":["r"]}`, 1), CodeBadValue, "statements[0].effect"},
		{"bad glob", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["kv://***"]}`, 1), CodeBadGlob, "statements[0].resources[0]"},
		{"empty glob", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":[""],"resources":["r"]}`, 1), CodeBadValue, "statements[0].actions[0]"},
		{"unknown operator", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"DateLessThan":{"k":"v"}}}`, 1), CodeUnknownOperator, "statements[0].conditions.DateLessThan"},
		{"numeric condition value", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"NumericLessThan":{"k":131072}}}`, 1), CodeWrongType, "statements[0].conditions.NumericLessThan.k"},
		{"non-numeric NumericLessThan", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"NumericLessThan":{"k":"lots"}}}`, 1), CodeBadCondition, "statements[0].conditions.NumericLessThan.k"},
		{"bad Bool", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"Bool":{"k":"yes"}}}`, 1), CodeBadCondition, "statements[0].conditions.Bool.k"},
		{"bad CIDR", strings.Replace(base, "%s", `{"sid":"S","effect":"Allow","actions":["a"],"resources":["r"],"conditions":{"IpAddress":{"k":"10.0.0.0/"}}}`, 1), CodeBadCondition, "statements[0].conditions.IpAddress.k"},
		{"duplicate sids", strings.Replace(base, "%s", st+","+st, 1), CodeDuplicateSID, "statements[1].sid"},
		{"inherits itself", `{"policy_version":"2","policy_id":"p","issuer_did":"did:key:z6Mk","inherits":"p","statements":[` + st + `]}`, CodeInheritsCycle, "inherits"},
		{"bad issuer", `{"policy_version":"2","policy_id":"p","issuer_did":"alice","statements":[` + st + `]}`, CodeBadValue, "issuer_did"},
		{"long policy id", `{"policy_version":"2","policy_id":"` + strings.Repeat("x", 129) + `","issuer_did":"did:key:z6Mk","statements":[` + st + `]}`, CodeLimit, "policy_id"},
		{"too many statements", strings.Replace(base, "%s", strings.TrimSuffix(strings.Repeat(st+",", 65), ","), 1), CodeLimit, "statements"},
		{"oversize", `{"policy_version":"2","metadata":{"x":"` + strings.Repeat("x", MaxDocumentBytes) + `"}}`, CodeTooLarge, ""},
		{"v1 unknown key", `{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z6Mk","allowed_tools":[]}`, CodeUnknownField, "allowed_tools"},
		{"v1 bad provider", `{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z6Mk","allowed_providers":["azure"]}`, CodeBadValue, "allowed_providers[0]"},
		{"v1 bad redaction path", `{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z6Mk","redaction_rules":[{"path":"messages","action":"mask"}]}`, CodeBadValue, "redaction_rules[0].path"},
		{"v1 bad redaction action", `{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z6Mk","redaction_rules":[{"path":"$.a","action":"encrypt"}]}`, CodeBadValue, "redaction_rules[0].action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a *policy.Error", err)
			}
			if pe.Code != tt.code || pe.Path != tt.path {
				t.Errorf("got %s at %q (%s), want %s at %q", pe.Code, pe.Path, pe.Msg, tt.code, tt.path)
			}
		})
	}
}

// TestExamples runs the decision table of every example policy.
func TestExamples(t *testing.T) {
	dir := filepath.Join(testkit.RepoRoot(), "examples", "policies")
	files, _ := filepath.Glob(filepath.Join(dir, "*.wpc.json"))
	if len(files) < 3 {
		t.Fatalf("found %d example policies", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(doc, nil)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := LoadCases(strings.TrimSuffix(f, ".wpc.json") + ".cases.json")
			if err != nil {
				t.Fatal(err)
			}
			if len(cf.Cases) < 8 {
				t.Errorf("only %d cases", len(cf.Cases))
			}
			for _, r := range RunCases(p, cf) {
				if !r.Passed {
					t.Errorf("%s: %s", r.Case.Name, r.Problem)
				}
			}
		})
	}
}

func TestEvaluateAllocatesNothing(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "servicebus-send-only.wpc.json"))
	p, err := Compile(mustParse(t, string(data)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := MapContext{"ServiceBus:MessageBytes": "2048", "ServiceBus:MessagesSentInJob": "3",
		"ServiceBus:AppProperty.schema_version": "3", "ServiceBus:AppProperty.correlation_id": "c"}
	req := &Request{Action: "servicebus:send", Resource: "sb://ns/orders-staging", Context: ctx}
	var d Decision
	if n := testing.AllocsPerRun(200, func() { p.Evaluate(req, &d) }); n != 0 {
		t.Errorf("Evaluate allocates %v times", n)
	}
	if d.Effect != Allow {
		t.Errorf("%s", d.String())
	}
}

func TestEnvelopeSignVerify(t *testing.T) {
	reg, _ := signer.FromSeed(testkit.Seed(50))
	other, _ := signer.FromSeed(testkit.Seed(60))
	doc := mustParse(t, `{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z6Mk","allowed_providers":["openai"]}`)
	env, err := SignEnvelope(reg, doc, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := env.Value()
	opt := VerifyOptions{Signers: []string{reg.DID()}}
	if got, err := VerifyEnvelope(&v, doc.Hash(), opt); err != nil || got.Hash() != doc.Hash() {
		t.Fatalf("verify: %v", err)
	}
	code := func(err error) string {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return ve.Code
		}
		return "?"
	}
	if _, err := VerifyEnvelope(&v, doc.Hash(), VerifyOptions{}); code(err) != CodeAllowlistRequired {
		t.Errorf("no allowlist: %v", err)
	}
	if _, err := VerifyEnvelope(&v, doc.Hash(), VerifyOptions{AllowAnySigner: true}); err != nil {
		t.Errorf("explicit opt-out: %v", err)
	}
	if _, err := VerifyEnvelope(&v, doc.Hash(), VerifyOptions{Signers: []string{other.DID()}}); code(err) != CodeSignerNotAllowed {
		t.Errorf("other signer: %v", err)
	}
	other2 := mustParse(t, `{"policy_version":"1","policy_id":"q","issuer_did":"did:key:z6Mk"}`)
	if _, err := VerifyEnvelope(&v, other2.Hash(), opt); code(err) != CodeHashMismatch {
		t.Errorf("other hash: %v", err)
	}
	tampered := v.Clone()
	tampered.Get("payload").Set("policy_id", canon.NewString("changed"))
	if _, err := VerifyEnvelope(&tampered, doc.Hash(), opt); code(err) != CodeHashInvalid {
		t.Errorf("tampered payload: %v", err)
	}
	badSig := v.Clone()
	s := badSig.Get("signature_b64u")
	s.Str = "A" + s.Str[1:]
	if s.Str == v.Get("signature_b64u").Str {
		s.Str = "B" + s.Str[1:]
	}
	if _, err := VerifyEnvelope(&badSig, doc.Hash(), opt); code(err) != CodeSignatureInvalid {
		t.Errorf("bad signature: %v", err)
	}
	extra := v.Clone()
	extra.Set("x", canon.NewBool(true))
	if _, err := VerifyEnvelope(&extra, doc.Hash(), opt); code(err) != CodeEnvelopeInvalid {
		t.Errorf("extra field: %v", err)
	}
	if _, err := VerifyEnvelope(&v, "short", opt); code(err) != CodePolicyHashInvalid {
		t.Errorf("short hash: %v", err)
	}
}

func TestHashIsJCS(t *testing.T) {
	a := mustParse(t, `{"policy_version":"1","policy_id":"p","issuer_did":"did:key:z6Mk"}`)
	b := mustParse(t, `{ "issuer_did" : "did:key:z6Mk", "policy_id":"p", "policy_version":"1" }`)
	if a.Hash() != b.Hash() || len(a.Hash()) != 43 {
		t.Errorf("key order changed the hash: %s vs %s", a.Hash(), b.Hash())
	}
}

func TestExplain(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "kv-boundary.wpc.json"))
	p, _ := Compile(mustParse(t, string(data)), nil)
	e := p.Explain(&Request{Action: "keyvault:secrets.set", Resource: "kv://kv-prod-finance-001/secrets/agent/app/x"})
	text := e.Text()
	for _, want := range []string{"decision: needs_approval", "AllowAgentSecretWritesWithApproval (Allow): matches but needs human approval", "Request:HasHumanApproval \"true\": context absent → fails", "DenyListing (Deny): action does not match"} {
		if !strings.Contains(text, want) {
			t.Errorf("explain text lacks %q:\n%s", want, text)
		}
	}
}

// refRegexp renders a pattern with the reference's rules as a Go regular
// expression, for a differential test of the compiled matcher.
func refRegexp(p string) *regexp.Regexp {
	if p == "*" || p == "**" {
		return regexp.MustCompile(`(?s)^.*$`)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); {
		switch {
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(`[^\n\r\x{2028}\x{2029}]*`)
			i += 2
			if i < len(p) && p[i] == '/' {
				i++
			}
		case p[i] == '*':
			b.WriteString(`[^/]*`)
			i++
		case p[i] == '?':
			b.WriteString(`[^/]`)
			i++
		default:
			r, n := utf8.DecodeRuneInString(p[i:])
			b.WriteString(regexp.QuoteMeta(string(r)))
			i += n
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestGlobMatchesReferenceRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	alphabet := []string{"a", "b", "/", "*", "?", "**/", "x", "é", "\n"}
	inputs := []string{"a", "b", "/", "x", "é", "\n", "ab", "a/"}
	for n := 0; n < 3000; n++ {
		var pb strings.Builder
		for k := rng.IntN(8); k >= 0; k-- {
			pb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		pat := pb.String()
		if checkGlob(pat) != nil {
			continue
		}
		g, re := compileGlob(pat), refRegexp(pat)
		for m := 0; m < 20; m++ {
			var sb strings.Builder
			for k := rng.IntN(10); k > 0; k-- {
				sb.WriteString(inputs[rng.IntN(len(inputs))])
			}
			s := sb.String()
			if got, want := g.match(s), re.MatchString(s); got != want {
				t.Fatalf("%q ~ %q: compiled %v, reference rules %v (kind %d)", pat, s, got, want, g.kind)
			}
		}
	}
}

func TestCouldAllow(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join(testkit.RepoRoot(), "examples", "policies", "kv-boundary.wpc.json"))
	doc, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Compile(doc, nil)
	for action, want := range map[string]bool{
		"keyvault:secrets.get": true, "keyvault:secrets.set": true, // set: with approval
		"keyvault:secrets.list": false, "keyvault:secrets.purge": false, // denied on every resource
		"keyvault:secrets.recover": false, "keyvault:keys.sign": false, "model:invoke": false,
	} {
		if got := p.CouldAllow(action); got != want {
			t.Errorf("%s: %v, want %v", action, got, want)
		}
	}
}

func TestReferences(t *testing.T) {
	docs := map[string]*Document{
		"root": mustParse(t, `{"policy_version":"2","policy_id":"root","issuer_did":"did:key:z6Mk","statements":[
			{"sid":"Limit","effect":"Deny","actions":["servicebus:send"],"resources":["**"],"conditions":{"NumericGreaterThan":{"ServiceBus:MessagesSentInJob":"10"}}}]}`),
		"child": mustParse(t, `{"policy_version":"2","policy_id":"child","issuer_did":"did:key:z6Mk","inherits":"root","statements":[
			{"sid":"Send","effect":"Allow","actions":["servicebus:send"],"resources":["**"],"conditions":{"StringEquals":{"ServiceBus:AppProperty.kind":"x"}}}]}`),
	}
	p, err := Compile(docs["child"], func(id string) (*Document, error) { return docs[id], nil })
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"ServiceBus:MessagesSentInJob": true, "servicebus:messagessentinjob": true,
		"ServiceBus:AppProperty.kind": true, "ServiceBus:MessageBytes": false, "Request:HasHumanApproval": false} {
		if got := p.References(key); got != want {
			t.Errorf("References(%q) = %v", key, got)
		}
	}
	alone, _ := Compile(mustParse(t, `{"policy_version":"2","policy_id":"c","issuer_did":"did:key:z6Mk","statements":[{"sid":"A","effect":"Allow","actions":["*"],"resources":["**"]}]}`), nil)
	if alone.References("ServiceBus:MessagesSentInJob") {
		t.Error("a policy without conditions references a key")
	}
}
