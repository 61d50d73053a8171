package bundle

import (
	"errors"
	"testing"

	"github.com/clawea/clawea/b64u"
)

func TestUnanchoredRoot(t *testing.T) {
	a := []byte(`{"receipt_id":"se_b","z":1,"a":"x"}`)
	b := []byte(`{ "a" : "y", "receipt_id" : "se_a" }`)
	// The root is SHA-256 of the JCS array, sorted by receipt_id; it does
	// not depend on the order given or the records' whitespace.
	want := b64u.SHA256([]byte(`[{"a":"y","receipt_id":"se_a"},{"a":"x","receipt_id":"se_b","z":1}]`))
	for _, in := range [][][]byte{{a, b}, {b, a}} {
		got, err := UnanchoredRoot(in)
		if err != nil || got != want {
			t.Fatalf("root %s %v, want %s", got, err, want)
		}
	}
	if got, _ := UnanchoredRoot(nil); got != b64u.SHA256([]byte(`[]`)) {
		t.Errorf("empty root %s", got)
	}
	for _, bad := range []string{`[]`, `{"a":1}`, `{"receipt_id":""}`, `{"receipt_id":1}`, `{`} {
		if _, err := UnanchoredRoot([][]byte{[]byte(bad)}); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	u, err := NewUnanchored([][]byte{a, b})
	if err != nil || u.Count != 2 || u.Root != want || u.Version != "1" {
		t.Fatalf("entry %+v %v", u, err)
	}
	if u, _ := NewUnanchored(nil); u != nil {
		t.Errorf("an entry for no records: %+v", u)
	}
	if err := CheckUnanchored(u, [][]byte{b, a}); err != nil {
		t.Errorf("matching records: %v", err)
	}
	for name, recs := range map[string][][]byte{
		"one missing": {a},
		"one changed": {a, []byte(`{"a":"Y","receipt_id":"se_a"}`)},
		"one added":   {a, b, []byte(`{"receipt_id":"se_c"}`)},
	} {
		if err := CheckUnanchored(u, recs); !errors.Is(err, ErrUnanchoredMismatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := CheckUnanchored(nil, [][]byte{a}); !errors.Is(err, ErrUnanchoredMismatch) {
		t.Errorf("records and no entry: %v", err)
	}
	if err := CheckUnanchored(&Unanchored{Version: "2", Count: 2, Root: want}, [][]byte{a, b}); !errors.Is(err, ErrUnanchoredMismatch) {
		t.Errorf("unknown version: %v", err)
	}
}

// FuzzUnanchoredRoot feeds arbitrary records (they arrive beside a bundle,
// from anyone): no panic; a root, when there is one, does not depend on
// the records' order, and the entry made from them checks against them.
func FuzzUnanchoredRoot(f *testing.F) {
	f.Add(`{"receipt_id":"a"}`, `{"receipt_id":"b","x":[1,2]}`)
	f.Add(`{"receipt_id":"a"}`, `{"receipt_id":"a"}`)
	f.Add(`{"receipt_id":"\ud800"}`, `{"receipt_id":"é","n":1e400}`)
	f.Add(`[`, `null`)
	f.Fuzz(func(t *testing.T, x, y string) {
		recs := [][]byte{[]byte(x), []byte(y)}
		r1, err1 := UnanchoredRoot(recs)
		r2, err2 := UnanchoredRoot([][]byte{[]byte(y), []byte(x)})
		if (err1 == nil) != (err2 == nil) || r1 != r2 {
			t.Fatalf("order changes the root: %q %v / %q %v", r1, err1, r2, err2)
		}
		if err1 != nil {
			return
		}
		u, err := NewUnanchored(recs)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckUnanchored(u, recs); err != nil {
			t.Fatal(err)
		}
	})
}
