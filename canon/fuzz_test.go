package canon

import (
	"bytes"
	"encoding/json"
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
