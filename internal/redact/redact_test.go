package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

const (
	secret = "p@ss/word+=\"é\n"
	label  = "kv-prod/agent/app/db"
)

func TestEveryForm(t *testing.T) {
	r := New()
	r.Add("job", secret, label)
	for _, f := range []string{
		secret,
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.RawURLEncoding.EncodeToString([]byte(secret)),
		hex.EncodeToString([]byte(secret)),
		strings.ToUpper(hex.EncodeToString([]byte(secret))),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		`p@ss/word+=\"é\n`, // JSON-escaped
	} {
		out, n := r.String("job", "before "+f+" after")
		if out != "before "+Marker(label)+" after" || n != 1 {
			t.Errorf("%q: got %q (%d)", f, out, n)
		}
	}
}

func TestJobsAreSeparate(t *testing.T) {
	r := New()
	r.Add("a", "alpha-secret", "v/a")
	if out, n := r.String("b", "alpha-secret"); out != "alpha-secret" || n != 0 {
		t.Errorf("job b saw job a's secret redacted: %q", out)
	}
	if got := r.Any("x alpha-secret"); got != "x "+Marker("v/a") {
		t.Errorf("Any: %q", got)
	}
	r.Forget("a")
	if r.Known("a") {
		t.Error("forgotten job still known")
	}
	if got := r.Any("alpha-secret"); got != "alpha-secret" {
		t.Errorf("after Forget: %q", got)
	}
}

func TestShortAndLongerForms(t *testing.T) {
	r := New()
	r.Add("j", "abc", "v/short") // below MinLength itself
	if out, _ := r.String("j", "abc"); out != "abc" {
		t.Errorf("a 3-byte value is redacted everywhere: %q", out)
	}
	if out, _ := r.String("j", "YWJj 616263"); out != Marker("v/short")+" "+Marker("v/short") {
		t.Errorf("its longer encodings: %q", out)
	}
	// A value that contains another registered value is replaced whole.
	r.Add("j", "token-1234", "v/inner")
	r.Add("j", "outer-token-1234-end", "v/outer")
	if out, n := r.String("j", "[outer-token-1234-end] token-1234"); out != "["+Marker("v/outer")+"] "+Marker("v/inner") || n != 2 {
		t.Errorf("nested: %q %d", out, n)
	}
}

func TestBytesUnchangedIsSameSlice(t *testing.T) {
	r := New()
	r.Add("j", "secret-value", "v/s")
	in := []byte("nothing here")
	if out, n := r.Bytes("j", in); &out[0] != &in[0] || n != 0 {
		t.Error("unchanged input was copied")
	}
	if out, n := r.Bytes("j", []byte("a secret-value")); string(out) != "a "+Marker("v/s") || n != 1 {
		t.Errorf("Bytes: %q %d", out, n)
	}
}

func TestLogHandler(t *testing.T) {
	r := New()
	r.Add("j", "hunter2-hunter2", "v/pw")
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil)))
	log.With("pre", "hunter2-hunter2").WithGroup("g").Info("login hunter2-hunter2",
		"s", "x hunter2-hunter2", "err", errors.New("bad hunter2-hunter2"),
		slog.Group("inner", "k", "aHVudGVyMi1odW50ZXIy"), "n", 7)
	if strings.Contains(buf.String(), "hunter2") || strings.Contains(buf.String(), "aHVudGVyMi1odW50ZXIy") {
		t.Errorf("log line: %s", buf.String())
	}
	if strings.Count(buf.String(), "[REDACTED:v/pw]") != 5 || !strings.Contains(buf.String(), `"n":7`) {
		t.Errorf("log line: %s", buf.String())
	}
}

// FuzzRedact: once a value is registered, none of its forms survives in
// the redacted text outside the markers, whatever surrounds it.
func FuzzRedact(f *testing.F) {
	f.Add("hunter2-hunter2", "a hunter2-hunter2 b", "x")
	f.Add("p@ss word", "p%40ss+word p@ss%20word cEBzcyB3b3Jk", "q")
	f.Add("aaaa", "aaaaaaaaa", "")
	f.Add("é\"\\\n", `\u00e9\"\\\n`, "label/x")
	f.Fuzz(func(t *testing.T, value, text, name string) {
		if strings.ContainsAny(value, "[]\x00") || strings.ContainsAny(name, "[]\x00") {
			return // forms made of marker text are out of scope
		}
		r := New()
		r.Add("j", value, name)
		forms := Forms(value)
		in := text
		for i, f := range forms {
			if i%2 == 0 {
				in = f + in
			} else {
				in += f
			}
		}
		out, n := r.String("j", in)
		if len(forms) > 0 && n < 1 {
			t.Fatalf("nothing redacted in %q", in)
		}
		rest := strings.ReplaceAll(out, Marker(name), "\x00")
		for _, f := range forms {
			if strings.Contains(rest, f) {
				t.Fatalf("form %q of %q survives in %q", f, value, out)
			}
		}
	})
}
