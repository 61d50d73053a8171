package canon

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCanonicalize checks that both forms are fixed points (canonicalising
// the output again changes nothing), that they are valid JSON whenever the
// input is accepted, and that the parser never accepts what encoding/json
// rejects as syntax.
//
//	go test ./canon -run '^$' -fuzz FuzzCanonicalize -fuzztime 60s
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":[1e21,1e-7,-0,0.1],"a":"\u2028<>&\u0001\ud800","10":1}`,
		`[{"\uFB33":1,"\ud83d\ude00":2}]`, `"x"`, `1.5e300`, `{"a":{"a":{"a":[]}}}`,
		`{"a":1,"a":2}`, `[true,false,null]`, `"\udc00\ud800"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			if json.Valid(data) && utf8.Valid(data) && !bytes.Contains(data, []byte("\ufeff")) {
				// Only depth may make us stricter than encoding/json on valid UTF-8.
				if se, ok := err.(*SyntaxError); !ok || se.Msg != ErrTooDeep.Error() {
					t.Fatalf("rejected valid JSON %q: %v", data, err)
				}
			}
			return
		}
		c1 := AppendCompact(nil, &v)
		c2, err := Compact(c1)
		if err != nil {
			t.Fatalf("compact output does not parse: %q: %v", c1, err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("compact not a fixed point:\n%q\n%q", c1, c2)
		}
		j1 := AppendJCS(nil, &v)
		j2, err := JCS(j1)
		if err != nil {
			t.Fatalf("JCS output does not parse: %q: %v", j1, err)
		}
		if !bytes.Equal(j1, j2) {
			t.Fatalf("JCS not a fixed point:\n%q\n%q", j1, j2)
		}
		if !json.Valid(c1) || !json.Valid(j1) {
			t.Fatalf("invalid JSON written: %q / %q", c1, j1)
		}
	})
}

// FuzzValid holds Valid to Parse: it accepts exactly what Parse accepts.
//
//	go test ./canon -run '^$' -fuzz FuzzValid -fuzztime 60s
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-0.5e+3,"\u00e9\n",true,false,null,{}],"b":{"c":[]}}`, ` [ 1 , 2 ] `, `"\ud800"`, `-`, `01`, `1.`, `1e`,
		`{"a" 1}`, `{"a":1,}`, `[1,]`, `[1}`, `{"a":1]`, "\"\xed\xa0\x80\"", "\"\xff\"", "\"\x01\"", `tru`, `nul`, `{}x`,
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
		strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), `[{"a":[{"b":[]}]},[]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse(data)
		if got := Valid(data); got != (err == nil) {
			t.Fatalf("Valid(%q) = %v, Parse error: %v", data, got, err)
		}
	})
}

// FuzzMembers holds Members to Parse: it accepts exactly the objects Parse
// accepts, and each member it returns is the value Parse keeps for it.
//
//	go test ./canon -run '^$' -fuzz FuzzMembers -fuzztime 60s
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"prompt_tokens":9},"id":"x","usage":{"a":[1,{"b":2}]}}`, ` { "a" : [ ] , "b" : { } , "c" : "\"}" } `,
		`{"us\u0061ge":1,"usage":2,"usage":3}`, `{}`, `[{"usage":1}]`, `{"a":{"usage":1}}`, `"usage"`, `{"a":1,}`, `{"a":1}x`,
	} {
		f.Add([]byte(s), "usage")
	}
	f.Fuzz(func(t *testing.T, data []byte, extra string) {
		v, err := Parse(data)
		keys := []string{extra, "usage", "a"}
		if err == nil && v.Kind == Object {
			for _, m := range v.Members {
				keys = append(keys, m.Key)
			}
		}
		vals, ok := Members(data, keys...)
		if ok != (err == nil && v.Kind == Object) {
			t.Fatalf("Members(%q) ok = %v; Parse: %v, kind %v", data, ok, err, v.Kind)
		}
		if !ok {
			return
		}
		for i, k := range keys {
			want := v.Get(k)
			if (vals[i] == nil) != (want == nil) {
				t.Fatalf("member %q of %q: got %q, Parse has %v", k, data, vals[i], want != nil)
			}
			if want == nil {
				continue
			}
			got, err := Parse(vals[i])
			if err != nil || !bytes.Equal(AppendCompact(nil, &got), AppendCompact(nil, want)) {
				t.Fatalf("member %q of %q: got %q (%v)", k, data, vals[i], err)
			}
		}
	})
}
