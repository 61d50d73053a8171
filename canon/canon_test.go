package canon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os/exec"
	"strings"
	"testing"
)

// Expected outputs below were produced by Node.js 20:
// JSON.stringify(JSON.parse(input)).
func TestCompactNumbers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1e21", "1e+21"},
		{"1e20", "100000000000000000000"},
		{"1e-7", "1e-7"},
		{"0.0000001", "1e-7"},
		{"1e-6", "0.000001"},
		{"0.000001", "0.000001"},
		{"-0", "0"},
		{"-0.0", "0"},
		{"0.1", "0.1"},
		{"0.30000000000000004", "0.30000000000000004"},
		{"123456789012345678901", "123456789012345680000"},
		{"12345678901234567890", "12345678901234567000"},
		{"1.5e-7", "1.5e-7"},
		{"5e-324", "5e-324"},
		{"1.7976931348623157e308", "1.7976931348623157e+308"},
		{"1e400", "null"},
		{"-1e400", "null"},
		{"9007199254740993", "9007199254740992"},
		{"1E2", "100"},
		{"2.5e+25", "2.5e+25"},
		{"-1.25e-10", "-1.25e-10"},
		{"1.0", "1"},
		{"333333333.3333333", "333333333.3333333"},
		{"1e+30", "1e+30"},
		{"4.35", "4.35"},
		{"123e-20", "1.23e-18"},
		{"0.000001234", "0.000001234"},
		{"-123.456", "-123.456"},
		{"100", "100"},
		{"-7", "-7"},
		{"999999999999999", "999999999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Compact([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Compact(%s) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestNumberArithmeticResults(t *testing.T) {
	a, b := 0.1, 0.2 // variables: constant arithmetic would be exact
	tests := []struct {
		f    float64
		want string
	}{
		{a + b, "0.30000000000000004"},
		{1.0 / 3, "0.3333333333333333"},
		{math.Pow(2, 53) + 2, "9007199254740994"},
		{-1e-7, "-1e-7"},
		{math.Copysign(0, -1), "0"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
	}
	for _, tt := range tests {
		if got := string(AppendNumber(nil, tt.f)); got != tt.want {
			t.Errorf("AppendNumber(%v) = %s, want %s", tt.f, got, tt.want)
		}
	}
	// 0.1+0.2 written out by Go must come back the same after parsing.
	x := 0.1
	y := 0.2
	in, _ := json.Marshal(x + y)
	got, err := Compact(in)
	if err != nil || string(got) != "0.30000000000000004" {
		t.Errorf("Compact(%s) = %s, %v", in, got, err)
	}
}

func TestCompactStrings(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"line separators stay raw", `"\u2028\u2029"`, "\"\u2028\u2029\""},
		{"html characters stay raw", `"<>&"`, `"<>&"`},
		{"controls", `"\u0000\u001f\u007f"`, "\"\\u0000\\u001f\x7f\""},
		{"short escapes", `"\b\f\n\r\t\/"`, `"\b\f\n\r\t/"`},
		{"surrogate pair", `"\ud83d\ude00"`, "\"\U0001F600\""},
		{"max pair", `"\uDBFF\uDFFF"`, "\"\U0010FFFF\""},
		{"lone high", `"\ud800"`, `"\ud800"`},
		{"lone low then lone high", `"\udc00x\ud800"`, `"\udc00x\ud800"`},
		{"uppercase lone", `"\uD834"`, `"\ud834"`},
		{"non-ASCII raw", `"é中"`, `"é中"`},
		{"escaped non-ASCII", `"\u00e9"`, `"é"`},
		{"non-BMP raw", "\"\U0001D11E\"", "\"\U0001D11E\""},
		{"quote and backslash", `"a\"b\\c"`, `"a\"b\\c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compact([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Compact(%s) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCompactKeyOrder(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"document order", `{"b":1, "a":2}`, `{"b":1,"a":2}`},
		{"duplicate keeps first slot, last value", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
		{"array-index keys first", `{"b":1,"10":2,"a":3,"2":4,"b":5}`, `{"2":4,"10":2,"b":5,"a":3}`},
		{"non-index numeric-looking keys", `{"b":1,"01":2,"4294967295":3,"4294967294":4}`, `{"4294967294":4,"b":1,"01":2,"4294967295":3}`},
		{"nested", "{ \"z\" : [ 1 , { \"y\":null,\"x\":true } ] }", `{"z":[1,{"y":null,"x":true}]}`},
		{"empty containers", `{"a":{},"b":[]}`, `{"a":{},"b":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compact([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDuplicateKeysLargeObject(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 100; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k` + string(rune('A'+i%26)) + string(rune('a'+i/26)) + `":1`)
	}
	b.WriteString(`,"kAa":2}`)
	v, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Members) != 100 || v.Members[0].Value.Num != 2 {
		t.Fatalf("members=%d first=%v", len(v.Members), v.Members[0].Value.Num)
	}
}

func TestJCS(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"sorted", `{"b":1,"a":2,"c":{"z":1,"y":2}}`, `{"a":2,"b":1,"c":{"y":2,"z":1}}`},
		// RFC 8785 §3.2.3: sorting is by UTF-16 code units, so U+1F600
		// (D83D DE00) sorts before U+FB33 although its code point is larger.
		{"utf16 order", "{\"\uFB33\":1,\"\U0001F600\":2,\"a\":3}", "{\"a\":3,\"\U0001F600\":2,\"\uFB33\":1}"},
		{"numbers", `{"n":[1e+30,333333333.3333333,-0,1E-7]}`, `{"n":[1e+30,333333333.3333333,0,1e-7]}`},
		{"index keys sorted as strings", `{"10":1,"2":2,"a":3}`, `{"10":1,"2":2,"a":3}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := JCS([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"trailing comma", `[1,]`},
		{"trailing data", `{} x`},
		{"single quote", `{'a':1}`},
		{"leading zero", `01`},
		{"bare dot", `1.`},
		{"no exponent digits", `1e`},
		{"raw control", "\"a\x01b\""},
		{"bad escape", `"\x"`},
		{"short unicode", `"\u12"`},
		{"invalid utf8", "\"\xff\""},
		{"raw surrogate bytes", "\"\xed\xa0\x80\""},
		{"too deep", deep},
		{"nan", `NaN`},
		{"unterminated", `{"a":`},
		{"bom", "\ufeff{}"},
		{"plus sign", `+1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error = %v, want a SyntaxError", tt.in, err)
			}
		})
	}
}

func TestEncoderSpans(t *testing.T) {
	in := `{"r":[{"payload":{"a":1,"b":"x"}},{"payload":{"c":[1,2]}}]}`
	v, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	r := v.Get("r")
	e := Encoder{Track: []*Value{r.Items[0].Get("payload"), r.Items[1].Get("payload")}}
	out := e.AppendCompact(nil, &v)
	if string(out) != in {
		t.Fatalf("out = %s", out)
	}
	for i, want := range []string{`{"a":1,"b":"x"}`, `{"c":[1,2]}`} {
		sp := e.Spans[i]
		if got := string(out[sp.Start:sp.End]); got != want {
			t.Errorf("span %d = %s, want %s", i, got, want)
		}
	}
}

// TestWriteCompact checks that streaming with pre-encoded arrays writes
// exactly what AppendCompact returns, nested arrays and odd keys included.
func TestWriteCompact(t *testing.T) {
	in := `{"2":0,"a":[{"x":"\u2028"},[1,[2]],"s"],"b":{"c":[true,null],"d":[]},"1":-0}`
	v, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := AppendCompact(nil, &v)
	for _, arr := range []*Value{v.Get("a"), v.Get("b").Get("c"), v.Get("b").Get("d")} {
		pre := make([][]byte, len(arr.Items))
		for i := range arr.Items {
			pre[i] = AppendCompact(nil, &arr.Items[i])
		}
		e := Encoder{Pre: map[*Value][][]byte{arr: pre}}
		var got bytes.Buffer
		if err := e.WriteCompact(&got, &v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("got  %s\nwant %s", got.Bytes(), want)
		}
	}
	e := Encoder{Track: []*Value{&v}}
	if err := e.WriteCompact(io.Discard, &v); err == nil {
		t.Fatal("WriteCompact with Track set did not fail")
	}
}

func TestCompareUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"a", "b", -1},
		{"", "a", -1},
		{"ab", "a", 1},
		{"\U0001F600", "\uFB33", -1},
		{"\uFB33", "\U0001F600", 1},
		{"\U0001F600", "\U0001F600", 0},
		{"\xed\xa0\x80", "\U0001F600", -1}, // lone D800 < D83D
	}
	for _, tt := range tests {
		if got := CompareUTF16(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareUTF16(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestAgainstNode compares the two forms with Node.js on every protocol
// fixture when Node is installed; it is the reference runtime's own
// JSON.stringify, so any disagreement is ours.
func TestAgainstNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; differential check skipped")
	}
	inputs := []string{
		`{"b":[1e21,1e-7,-0,0.1,5e-324,123e-20],"a":"\u2028<>&\u0001\ud800\ud83d\ude00","10":1,"2":{"y":1,"x":2}}`,
		`[{"\uFB33":1,"\ud83d\ude00":2,"a":3},"\u007f",true,null,[]]`,
		`{"k":12345678901234567890,"m":0.000001234,"n":1.7976931348623157e308,"o":1e400}`,
	}
	script := `let d='';process.stdin.on('data',c=>d+=c).on('end',()=>{const v=JSON.parse(d);` +
		`const j=x=>x===null||typeof x!=='object'?JSON.stringify(x):Array.isArray(x)?'['+x.map(j).join(',')+']':` +
		`'{'+Object.keys(x).sort().map(k=>JSON.stringify(k)+':'+j(x[k])).join(',')+'}';` +
		`process.stdout.write(JSON.stringify(v)+'\n'+j(v))})`
	for _, in := range inputs {
		cmd := exec.Command(node, "-e", script)
		cmd.Stdin = strings.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node: %v", err)
		}
		parts := bytes.SplitN(out, []byte("\n"), 2)
		compact, _ := Compact([]byte(in))
		jcs, _ := JCS([]byte(in))
		if !bytes.Equal(compact, parts[0]) {
			t.Errorf("compact:\n got %s\nnode %s", compact, parts[0])
		}
		if !bytes.Equal(jcs, parts[1]) {
			t.Errorf("jcs:\n got %s\nnode %s", jcs, parts[1])
		}
	}
}

// BenchmarkValid checks a 2 KiB envelope-like document, against
// encoding/json's Valid.
func BenchmarkValid(b *testing.B) {
	doc := []byte(`{"envelope_version":"1","envelope_type":"gateway_receipt","payload":{"receipt_version":"1","receipt_id":"rcpt_0123456789abcdef0123456789abcdef","gateway_id":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","provider":"openai","model":"gpt-4o-mini","request_hash_b64u":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","response_hash_b64u":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","tokens_input":9,"tokens_output":140,"latency_ms":3,"timestamp":"2026-11-22T09:00:00.000Z","binding":{"run_id":"run_0123456789","event_hash_b64u":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","policy_hash":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","token_scope_hash_b64u":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","span_id":"llm_evt_000001"},"metadata":{"model_identity":{"provider":"openai","name":"gpt-4o-mini","tier":"closed_opaque"},"status":"OK","streamed":false,"privacy":"hash_only"}},"payload_hash_b64u":"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU","hash_algorithm":"SHA-256","signature_b64u":"` +
		strings.Repeat("A", 86) + `","algorithm":"Ed25519","signer_did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","issued_at":"2026-11-22T09:00:00.000Z"}`)
	b.Run("canon", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !json.Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
}
