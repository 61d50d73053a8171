package redact

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestHiddenBehindEscapes: a secret written inside a plain string behind
// JSON escapes (as encoding/json writes `&`), or behind percent-escapes in
// lower case or in part, is found, and the string holding it is replaced
// whole, in plain text, in JSON strings (at any depth of escaping) and in
// log lines.
func TestHiddenBehindEscapes(t *testing.T) {
	const sec = "Tr0ub4dor&3-correct-horse/+="
	r := New()
	r.Add("j", sec, "v/db")
	goEsc, _ := json.Marshal(sec) // "Tr0ub4dor\u00263-correct-horse/+="
	inner := string(goEsc[1 : len(goEsc)-1])
	texts := map[string]string{
		"json escape in text":    "pw=" + inner,
		"every char escaped":     "pw=" + strings.Trim(escapeAll(sec), `"`),
		"escaped slash":          "pw=" + strings.ReplaceAll(sec, "/", `\/`),
		"lower-case percent":     "pw=" + strings.NewReplacer("&", "%26", "/", "%2f", "+", "%2b", "=", "%3d").Replace(sec),
		"partly percent-encoded": "pw=" + strings.Replace(sec, "+", "%2B", 1),
	}
	for name, text := range texts {
		if _, ok := r.Find("j", text); !ok {
			t.Errorf("%s: Find misses %q", name, text)
		}
		if got, n := r.String("j", text); got != Marker("v/db") || n == 0 {
			t.Errorf("%s: String(%q) = %q, %d", name, text, got, n)
		}
		raw, _ := json.Marshal(map[string]any{"body": text, "n": 1.50})
		out, n, err := r.JSON("j", raw)
		if err != nil || n == 0 || strings.Contains(string(out), "correct-horse") || !strings.Contains(string(out), `"n":1.5`) {
			t.Errorf("%s: JSON(%s) = %s, %d, %v", name, raw, out, n, err)
		}
		if _, ok, err := r.FindJSON("j", raw); !ok || err != nil {
			t.Errorf("%s: FindJSON misses %s", name, raw)
		}
		if got := r.Any("line " + text); strings.Contains(got, "correct-horse") {
			t.Errorf("%s: Any(%q) = %q", name, text, got)
		}
	}
	// Text with escapes but no secret is left alone.
	for _, text := range []string{`a\u0026b`, "100%", "%zz", `\`, `\u12`, `\ud800`, "a%2Fb"} {
		if got, n := r.String("j", text); got != text || n != 0 {
			t.Errorf("String(%q) = %q, %d", text, got, n)
		}
	}
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`a\u0026b`, `\ud83d\ude00`, `\ud800x`, "%2f%zz%", `\`, `\u`, "+%2B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Undoing escapes never panics and never grows the text beyond
		// what a rune per byte allows; a text without escapes is its own
		// only variant.
		for _, v := range unescapedVariants(s) {
			if len(v) > 3*len(s)+3 {
				t.Fatalf("variant of %q grew to %d bytes", s, len(v))
			}
		}
		if !strings.ContainsAny(s, `\%`) && len(unescapedVariants(s)) != 0 {
			t.Fatalf("variants of %q without escapes", s)
		}
	})
}

// TestLogLinesScopedToTheirJob: a value one job registered does not blank
// out another job's log lines; lines about no job are redacted with every
// job's secrets.
func TestLogLinesScopedToTheirJob(t *testing.T) {
	r := New()
	r.Add("job_a", "job_c_is_here", "v/poison")
	r.Add("job_b", "b-secret-value", "v/b")
	var buf strings.Builder
	log := slog.New(r.Handler(slog.NewTextHandler(&buf, nil)))
	log.Info("call job_c_is_here", "job_id", "job_c", "note", "b-secret-value")
	log.Info("orphan job_c_is_here b-secret-value")
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[0], "call job_c_is_here") || !strings.Contains(lines[0], "b-secret-value") {
		t.Errorf("job c's line was redacted with other jobs' values: %s", lines[0])
	}
	if strings.Contains(lines[1], "job_c_is_here") || strings.Contains(lines[1], "b-secret-value") {
		t.Errorf("a line about no job kept a secret: %s", lines[1])
	}
}

// TestEmbeddedBase64: a secret base64-encoded inside longer text (HTTP
// Basic credentials, a .env file) is found at every byte alignment.
func TestEmbeddedBase64(t *testing.T) {
	const sec = "Tr0ub4dor&3-correct-horse"
	r := New()
	r.Add("j", sec, "v/db")
	for _, prefix := range []string{"", "a", "ab", "user:", "DB_PASSWORD=", "x\n"} {
		for _, suffix := range []string{"", "\n", "!", "~~"} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
				text := "Basic " + enc.EncodeToString([]byte(prefix+sec+suffix))
				if _, ok := r.Find("j", text); !ok {
					t.Errorf("base64 of %q+secret+%q not found: %s", prefix, suffix, text)
				}
				if got, _ := r.String("j", text); strings.Contains(got, enc.EncodeToString([]byte(sec))[4:20]) {
					t.Errorf("not redacted: %s", got)
				}
			}
		}
	}
	// Short secrets register no embedded cores that would match ordinary
	// base64 by chance.
	if n := len(embeddedBase64([]byte("abc"))); n != 0 {
		t.Errorf("%d embedded forms for a 3-byte value", n)
	}
}
