package envelope

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

func TestCheckDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		in, path, key string // key "" means no duplicate
	}{
		{`{}`, "", ""},
		{`[]`, "", ""},
		{`"x"`, "", ""},
		{` {"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]} `, "", ""},
		{`{"a":1,"a":2}`, "", "a"},
		{`{"a":1,"\u0061":2}`, "", "a"},
		{`{"signer_did":"x","payload":{},"signer_did":"y"}`, "", "signer_did"},
		{`{"payload":{"receipts":[{},{"payload":{"k":1,"k":1}}]}}`, "payload.receipts[1].payload", "k"},
		{`[1,[2,{"x":{"y":0,"y":0}}]]`, "[1][1].x", "y"},
		{`{"\ud800":1,"\udc00":2}`, "", ""},   // two different lone surrogates
		{`{"\ud83d\ude00":1,"😀":2}`, "", "😀"}, // a pair and the raw character
		{`{"a\"b":1,"a\u0022b":2}`, "", `a"b`},
		{`{"k0":0,"k1":0,"k2":0,"k3":0,"k4":0,"k5":0,"k6":0,"k7":0,"k8":0,"k9":0,"k10":0,"k11":0,"k12":0,"k13":0,"k14":0,"k15":0,"k16":0,"k17":0,"k5":1}`, "", "k5"},
		{`{"a":{"x":1},"b":{"x":1}}`, "", ""}, // same key in sibling objects
	} {
		err := CheckDuplicateKeys([]byte(tc.in))
		var dk *DuplicateKeyError
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: unexpected %v", tc.in, err)
		case tc.key != "" && !errors.As(err, &dk):
			t.Errorf("%s: got %v, want a duplicate %q", tc.in, err, tc.key)
		case tc.key != "" && (dk.Key != tc.key || dk.Path != tc.path || !errors.Is(err, ErrDuplicateKey)):
			t.Errorf("%s: got key %q at %q, want %q at %q", tc.in, dk.Key, dk.Path, tc.key, tc.path)
		}
	}
	for _, bad := range []string{``, `{`, `{"a"}`, `{"a":}`, `[1,]`, `{"a":1,}`, `"abc`, `{"a":1}x`, `[1 2]`, `{"a\q":1}`} {
		if err := CheckDuplicateKeys([]byte(bad)); err == nil || errors.Is(err, ErrDuplicateKey) {
			t.Errorf("%q: got %v, want a syntax error", bad, err)
		}
	}
}

// TestParseRefusesDuplicateKeys: a signed envelope with a second
// signer_did (or payload) is refused by Parse, whichever copy a parser
// would keep; the envelope as signed parses.
func TestParseRefusesDuplicateKeys(t *testing.T) {
	key, err := signer.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := signer.Generate()
	env, err := Sign(key, TypeGateway, map[string]any{"receipt_id": "r1"}, Options{IssuedAt: time.Unix(1e9, 0)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := env.JSON()
	if _, err := Parse(raw); err != nil {
		t.Fatalf("signed envelope: %v", err)
	}
	signerField := `"signer_did":"` + key.DID() + `"`
	for name, forged := range map[string]string{
		"signer_did": strings.Replace(string(raw), signerField, signerField+`,"signer_did":"`+other.DID()+`"`, 1),
		"payload":    strings.Replace(string(raw), `"payload_hash_b64u"`, `"payload":{"receipt_id":"r2"},"payload_hash_b64u"`, 1),
	} {
		if forged == string(raw) {
			t.Fatalf("%s: edit did not apply", name)
		}
		// The last-wins parse still verifies when the first copy is the
		// signed one: this is why duplicates must be refused.
		if _, err := Parse([]byte(forged)); !errors.Is(err, ErrDuplicateKey) {
			t.Errorf("%s: Parse = %v, want ErrDuplicateKey", name, err)
		}
	}
}

// TestNoDuplicatesInFixtures: the conformance fixtures have none (so
// refusing duplicates changes no reference verdict).
func TestNoDuplicatesInFixtures(t *testing.T) {
	for _, rel := range []string{"protocol-conformance/proof_bundle_pass.v1.json", "export_bundle_golden.v1.json"} {
		if err := CheckDuplicateKeys(testkit.ReadFixture(t, rel)); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
}

// jsonDuplicate is an independent detector built on encoding/json's
// tokenizer (which decodes invalid surrogates to U+FFFD, so it can see
// more duplicates than canon's decoding, never fewer).
func jsonDuplicate(data []byte) (dup bool, ok bool) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false, true
		}
		if err != nil {
			return false, false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}})
				if top != nil && top.obj {
					top.expect = true
				}
				stack[len(stack)-1].expect = true
				continue
			case '[':
				stack = append(stack, &frame{})
				if top != nil && top.obj {
					top.expect = true
				}
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.obj && top.expect {
				if top.keys[v] {
					return true, true
				}
				top.keys[v] = true
				top.expect = false
				continue
			}
		}
		if top != nil && top.obj {
			top.expect = true
		}
	}
}

// FuzzCheckDuplicateKeys: never panics; agrees with canon.Parse on what is
// JSON; a duplicate it reports is one encoding/json's tokenizer sees too,
// and without \u escapes (where the decodings agree) it misses none.
//
//	go test ./envelope -run '^$' -fuzz FuzzCheckDuplicateKeys -fuzztime 30s
func FuzzCheckDuplicateKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `{"\u0061":1,"a":2}`, `[{"x":1},{"x":1}]`, `{"\ud800":1,"\udc00":1}`} {
		f.Add([]byte(s))
	}
	f.Add(testkit.ReadFixture(f, "protocol-conformance/proof_bundle_pass.v1.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckDuplicateKeys(data)
		isDup := errors.Is(err, ErrDuplicateKey)
		_, perr := canon.Parse(data)
		if perr == nil && err != nil && !isDup {
			t.Fatalf("canon parses it but the scanner says %v", err)
		}
		if perr != nil {
			return
		}
		jdup, ok := jsonDuplicate(data)
		if !ok {
			return
		}
		if isDup && !jdup {
			t.Fatalf("scanner reports %v; encoding/json sees no duplicate", err)
		}
		if jdup && !isDup && !strings.Contains(string(data), `\u`) {
			t.Fatalf("encoding/json sees a duplicate the scanner missed")
		}
	})
}
