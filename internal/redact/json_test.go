package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// escapeAll writes s as a JSON string with every character \u-escaped
// (surrogate pairs for astral characters).
func escapeAll(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r > 0xFFFF {
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04X\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	b.WriteByte('"')
	return b.String()
}

func TestJSONDecodedValues(t *testing.T) {
	const sec = "s3cr&t/<é>😀"
	r := New()
	r.Add("j", sec, "v/k")
	goHTML, _ := json.Marshal(sec) // \u0026, \u003c, \u003e
	cases := map[string]string{
		"plain":         `{"a":"x ` + sec + ` y"}`,
		"go html":       `{"a":` + string(goHTML) + `}`,
		"all escaped":   `{"a":` + escapeAll(sec) + `}`,
		"solidus":       `{"a":"s3cr&t\/<\u00e9>\ud83d\ude00"}`,
		"python ascii":  `{"a": "s3cr&t/<\u00e9>\ud83d\ude00"}`,
		"one escaped":   `{"a":"\u0073` + sec[1:] + `"}`,
		"key":           `{` + escapeAll(sec) + `:1}`,
		"array":         `[1,"` + sec + `",2]`,
		"base64":        `["` + base64.StdEncoding.EncodeToString([]byte(sec)) + `"]`,
		"base64 escape": `["` + strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(sec)), "/", `\/`) + `"]`,
		"hex":           `["\u0037` + hex.EncodeToString([]byte(sec))[1:] + `"]`,
		"nested args":   `{"arguments":"{\"p\":\"\\u0073` + sec[1:] + `\"}"}`,
	}
	for name, in := range cases {
		out, n, err := r.JSON("j", []byte(in))
		if err != nil || n < 1 {
			t.Errorf("%s: n=%d err=%v", name, n, err)
			continue
		}
		if !json.Valid(out) {
			t.Errorf("%s: invalid output %s", name, out)
		}
		if label, ok, err := r.FindJSON("j", out); ok || err != nil {
			t.Errorf("%s: %s still holds a form of %s (%v)", name, out, label, err)
		}
		if label, ok, err := r.FindJSON("j", []byte(in)); !ok || label != "v/k" || err != nil {
			t.Errorf("%s: FindJSON on the input: %q %v %v", name, label, ok, err)
		}
		if !strings.Contains(string(out), Marker("v/k")) {
			t.Errorf("%s: no marker in %s", name, out)
		}
	}
}

func TestJSONCopiesTheRest(t *testing.T) {
	r := New()
	r.Add("j", "hunter2-hunter2", "v/pw")
	in := `{ "n": 1.0e+02, "m" : -0, "big": 12345678901234567890123, "s": "\u00e9\/", "t": true, "p": "hunter\u0032-hunter2!" }`
	out, n, err := r.JSON("j", []byte(in))
	want := `{ "n": 1.0e+02, "m" : -0, "big": 12345678901234567890123, "s": "\u00e9\/", "t": true, "p": "[REDACTED:v/pw]!" }`
	if err != nil || n != 1 || string(out) != want {
		t.Errorf("got %s (%d, %v)\nwant %s", out, n, err, want)
	}
	// Nothing matched: the same slice.
	in2 := []byte(`{"a":"\u0068unter"}`)
	if out, n, err := r.JSON("j", in2); err != nil || n != 0 || &out[0] != &in2[0] {
		t.Errorf("unchanged input: %s %d %v", out, n, err)
	}
}

// A secret holding characters JSON must escape is found decoded and its
// marker is written as a valid string.
func TestJSONSecretNeedingEscapes(t *testing.T) {
	r := New()
	r.Add("j", "a\"b\\c\nd\x01e", "v/q")
	in, _ := json.Marshal(map[string]string{"k": "pre a\"b\\c\nd\x01e post"})
	out, n, err := r.JSON("j", in)
	var got map[string]string
	if err != nil || n != 1 || json.Unmarshal(out, &got) != nil || got["k"] != "pre "+Marker("v/q")+" post" {
		t.Errorf("got %s %d %v", out, n, err)
	}
}

func TestJSONRefusesAmbiguousInput(t *testing.T) {
	r := New()
	r.Add("j", "secret-value", "v/s")
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	for _, in := range []string{
		``, `{`, `{"a":}`, `{"a":1,}`, `[1 2]`, `"abc`, `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"a":"\ud800"}`, `{"a":"\udc00x"}`, `{"a":"\ud800\u0041"}`, `{"a":"` + "\xff" + `"}`,
		`{"a":"` + "\x01" + `"}`, `01`, `1.`, `-`, `1e`, `tru`, `nul`, `{} {}`, deep,
		`{"a":"[` + strings.Repeat("[", MaxDepth) + `"}`,
	} {
		if _, _, err := r.JSON("j", []byte(in)); !errors.Is(err, ErrNotScannable) {
			t.Errorf("%q: err = %v", in, err)
		}
		if _, _, err := r.FindJSON("j", []byte(in)); !errors.Is(err, ErrNotScannable) {
			t.Errorf("FindJSON %q: err = %v", in, err)
		}
	}
	// Nested strings that are not JSON are text.
	if out, n, err := r.JSON("j", []byte(`["{not json secret-value"]`)); err != nil || n != 1 || string(out) != `["{not json [REDACTED:v/s]"]` {
		t.Errorf("text in braces: %s %d %v", out, n, err)
	}
}

func TestJSONNoSecretsIsFree(t *testing.T) {
	r := New()
	in := []byte(`not json at all`)
	if out, n, err := r.JSON("j", in); err != nil || n != 0 || &out[0] != &in[0] {
		t.Errorf("JSON without secrets: %s %d %v", out, n, err)
	}
	if _, ok, err := r.FindJSON("j", in); ok || err != nil {
		t.Errorf("FindJSON without secrets: %v %v", ok, err)
	}
	if _, ok := r.Find("j", "x"); ok {
		t.Error("Find without secrets")
	}
}

func TestFind(t *testing.T) {
	r := New()
	r.Add("j", "alpha-secret", "v/a")
	r.Add("j", "beta-secret!", "v/b")
	for s, want := range map[string]string{
		"x alpha-secret y": "v/a",
		"YmV0YS1zZWNyZXQh": "v/b",
		"beta-secret%21":   "v/b",
		"nothing":          "",
	} {
		if label, ok := r.Find("j", s); label != want || ok != (want != "") {
			t.Errorf("Find(%q) = %q %v", s, label, ok)
		}
	}
	if _, ok := r.Find("other", "alpha-secret"); ok {
		t.Error("another job's secret found")
	}
}

// FuzzJSON: for any document, JSON either refuses it (it is not JSON that
// decodes one way) or returns JSON whose token stream is the input's with
// each string's secret forms replaced, and no decoded string of it holds a
// form.
func FuzzJSON(f *testing.F) {
	f.Add("hunter2-hunter2", []byte(`{"a":"hunter2-hunter2","b":[1,2.50,{"hunter2-hunter2":null}]}`))
	f.Add("s3cr&t/<é>", []byte(`{"a":"s3cr\u0026t\/\u003c\u00e9\u003e"}`))
	f.Add("p@ss", []byte(`["cEBzcw==","70407373","p%40ss"]`))
	f.Add("abcd", []byte(`{"args":"{\"k\":\"\\u0061bcd\"}"}`))
	f.Add("abcd", []byte(`{"a":"\ud800"}`))
	f.Add("😀😀", []byte(`"\ud83d\ude00\uD83D\uDE00"`))
	f.Fuzz(func(t *testing.T, value string, doc []byte) {
		if value == "" || strings.ContainsAny(value, "[]\x00") || !utf8.ValidString(value) {
			return // no secret (nothing is scanned) or out of scope
		}
		r := New()
		r.Add("j", value, "L")
		forms := Forms(value)
		for _, fm := range forms {
			if strings.Contains(Marker("L"), fm) {
				return // a form inside the marker text
			}
		}
		out, n, err := r.JSON("j", doc)
		if err != nil {
			if !errors.Is(err, ErrNotScannable) {
				t.Fatalf("error %v does not wrap ErrNotScannable", err)
			}
			if json.Valid(doc) && utf8.Valid(doc) && !bytes.Contains(bytes.ToLower(doc), []byte(`\ud`)) &&
				bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) <= MaxDepth {
				t.Fatalf("valid document refused: %v", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q", out)
		}
		if n == 0 && !bytes.Equal(out, doc) {
			t.Fatalf("n=0 but output changed")
		}
		di, do := json.NewDecoder(bytes.NewReader(doc)), json.NewDecoder(bytes.NewReader(out))
		di.UseNumber()
		do.UseNumber()
		for {
			a, ea := di.Token()
			b, eb := do.Token()
			if ea == io.EOF && eb == io.EOF {
				break
			}
			if ea != nil || eb != nil {
				t.Fatalf("token streams differ: %v %v", ea, eb)
			}
			sa, oka := a.(string)
			sb, okb := b.(string)
			if oka != okb {
				t.Fatalf("token %v became %v", a, b)
			}
			if !oka {
				if a != b {
					t.Fatalf("token %v became %v", a, b)
				}
				continue
			}
			noForm(t, r, forms, sb, 0)
			if sa != sb && !strings.Contains(sb, Marker("L")) {
				t.Fatalf("string %q changed to %q without a marker", sa, sb)
			}
			if t0 := strings.TrimLeft(sa, " \t\r\n"); t0 == "" || t0[0] != '{' && t0[0] != '[' {
				if want := r.jobs["j"].rep.Replace(sa); sb != want {
					t.Fatalf("string %q became %q, want %q", sa, sb, want)
				}
			}
		}
	})
}

// noForm fails if s, or a JSON document it holds (to the levels JSON
// scans), has a secret form outside the markers.
func noForm(t *testing.T, r *Registry, forms []string, s string, level int) {
	rest := strings.ReplaceAll(s, Marker("L"), "\x00")
	for _, fm := range forms {
		if strings.Contains(rest, fm) {
			t.Fatalf("form %q survives in %q", fm, s)
		}
	}
	if t0 := strings.TrimLeft(s, " \t\r\n"); level >= maxNested || t0 == "" || t0[0] != '{' && t0[0] != '[' || !json.Valid([]byte(s)) {
		return
	}
	d := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		if str, ok := tok.(string); ok {
			noForm(t, r, forms, str, level+1)
		}
	}
}
