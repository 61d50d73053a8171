package connector

import (
	"strings"
	"testing"

	"github.com/clawea/clawea/canon"
)

func args(t testing.TB, raw string) *Args {
	v, err := canon.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return NewArgs(v)
}

// TestArgsKeepTheFirstRefusal: the first failed check is the refusal; later
// reads return zero values.
func TestArgsKeepTheFirstRefusal(t *testing.T) {
	a := args(t, `{"s":1,"n":"x"}`)
	if a.Str("s", true, 10) != "" || a.Err() == nil || !strings.Contains(a.Err().Msg, `"s" must be a string`) {
		t.Fatalf("first: %v", a.Err())
	}
	if a.Num("n", 7, 0, 9) != 7 || !strings.Contains(a.Err().Msg, `"s"`) {
		t.Fatalf("kept: %v", a.Err())
	}
	a = args(t, `{"s":"","n":10}`)
	if a.Str("s", true, 10); a.Err() == nil || a.Err().Code != CodeInvalidArguments {
		t.Fatalf("empty required: %v", a.Err())
	}
	a = args(t, `{"n":10}`)
	if a.Num("n", 1, 0, 9); a.Err() == nil {
		t.Fatal("out of range")
	}
	a = args(t, `{"s":"abcdef"}`)
	if a.Str("s", false, 5); a.Err() == nil {
		t.Fatal("too long")
	}
	tl := &Tool{Name: "t", Params: []Param{{Name: "s"}}}
	a = args(t, `{"s":"x","z":1}`)
	if a.Closed(tl); a.Err() == nil || !strings.Contains(a.Err().Msg, `unknown argument "z" for t`) {
		t.Fatalf("closed: %v", a.Err())
	}
}

func TestCanonRewrites(t *testing.T) {
	fold := func(s string) (string, error) {
		if strings.ContainsAny(s, " /") {
			return "", ErrNotCanonical
		}
		return strings.ToLower(s), nil
	}
	a := args(t, `{"name":"ABC"}`)
	if got := a.Canon("name", true, 10, "a name", fold); got != "abc" || a.V.Get("name").Str != "abc" {
		t.Fatalf("canon: %q %s", got, canon.AppendCompact(nil, &a.V))
	}
	a = args(t, `{"name":"a b\u200b"}`)
	if a.Canon("name", true, 10, "a name", fold); a.Err() == nil || !strings.Contains(a.Err().Msg, `(got "a b\u200b")`) {
		t.Fatalf("refusal: %v", a.Err())
	}
}

func TestInputSchema(t *testing.T) {
	tl := &Tool{Params: []Param{{Name: "b", Type: "string", Desc: "B", Required: true}, {Name: "a", Type: "object", Desc: "A", Required: true},
		{Name: "m", Type: "string", Desc: "M", Enum: []string{"x", "y"}}}}
	s := tl.InputSchema()
	if req := s["required"].([]string); len(req) != 2 || req[0] != "a" || req[1] != "b" || s["additionalProperties"] != false {
		t.Errorf("schema: %v", s)
	}
	if (&Tool{Schema: map[string]any{"type": "object"}}).InputSchema()["properties"] != nil {
		t.Error("a tool's own schema is given as is")
	}
}

// FuzzArgs reads untrusted argument objects: never a panic; a refusal is
// always INVALID_ARGUMENTS; a string read is valid UTF-8 within its bound,
// and a number within its range.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{`{"s":"x","n":3}`, `{"s":"\ud800"}`, `{"s":null,"n":1e400}`, `{"n":-1.5}`, `{"s":"` + strings.Repeat("a", 70) + `"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := canon.Parse([]byte(raw))
		if err != nil || !v.IsObject() {
			return
		}
		a := NewArgs(v)
		s := a.Str("s", false, 64)
		n := a.Num("n", 5, 0, 100)
		c := a.Canon("c", false, 64, "lower", func(s string) (string, error) { return strings.ToLower(s), nil })
		if e := a.Err(); e != nil {
			if e.Code != CodeInvalidArguments {
				t.Fatalf("code %s", e.Code)
			}
			return
		}
		if len(s) > 64 || n < 0 || n > 100 || c != strings.ToLower(c) {
			t.Fatalf("%q %d %q", s, n, c)
		}
		if c != "" && a.V.Get("c").Str != c {
			t.Fatal("not rewritten")
		}
	})
}
