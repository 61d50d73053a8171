package evidence_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/evidence"
	"github.com/clawea/clawea/internal/redact"
)

const (
	job    = "job_1"
	secret = "p@ss&w0rd/+=canary"
	label  = "kv/agent/db"
)

func registry() *redact.Registry {
	r := redact.New()
	r.Add(job, secret, label)
	return r
}

func TestCheck(t *testing.T) {
	reg := registry()
	for _, tc := range []struct {
		name string
		blob string
		bad  bool
	}{
		{"clean", `{"a":"b","n":1}`, false},
		{"marker only", `{"v":"[REDACTED:kv/agent/db]"}`, false},
		{"raw in a value", `{"a":"x ` + secret + ` y"}`, true},
		{"raw in a key", `{"` + secret + `":1}`, true},
		{"escaped as \\u0026 (encoding/json)", `{"a":"` + strings.ReplaceAll(secret, "&", `\u0026`) + `"}`, true},
		{"every char escaped", `{"a":"` + escapeAll(secret) + `"}`, true},
		{"base64", `{"a":"` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}`, true},
		{"base64url in an array", `{"a":["` + base64.RawURLEncoding.EncodeToString([]byte(secret)) + `"]}`, true},
		{"hex", `{"a":"` + hex.EncodeToString([]byte(secret)) + `"}`, true},
		{"url-encoded", `{"a":"` + url.QueryEscape(secret) + `"}`, true},
		{"not JSON, raw", `plain ` + secret, true},
		{"not JSON, clean", `plain text`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := evidence.Check(reg, job, []byte(tc.blob))
			if tc.bad != (err != nil) {
				t.Fatalf("Check = %v, want refusal %v", err, tc.bad)
			}
			if err == nil {
				return
			}
			var se *evidence.SecretError
			if !errors.Is(err, evidence.ErrSecret) || !errors.As(err, &se) || se.Label != label {
				t.Errorf("error %v (%T)", err, err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error names the secret: %v", err)
			}
		})
	}
	// Another job's secret is not this job's; a nil registry passes.
	if err := evidence.Check(reg, "job_2", []byte(secret)); err != nil {
		t.Errorf("other job: %v", err)
	}
	if err := evidence.Check(nil, job, []byte(secret)); err != nil {
		t.Errorf("nil registry: %v", err)
	}
}

func escapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(`\u00` + hex.EncodeToString([]byte{byte(r)}))
	}
	return b.String()
}

func TestRedactValue(t *testing.T) {
	reg := registry()
	v, err := canon.Parse([]byte(`{"body":"x ` + secret + `","props":{"` + secret + `":"1","` + base64.StdEncoding.EncodeToString([]byte(secret)) + `":"2"},"n":3,"list":["` + hex.EncodeToString([]byte(secret)) + `"]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, n := evidence.RedactValue(reg, job, &v)
	if n != 4 {
		t.Errorf("replaced %d, want 4", n)
	}
	raw := canon.AppendCompact(nil, &out)
	if evidence.Check(reg, job, raw) != nil {
		t.Errorf("still holds the secret: %s", raw)
	}
	want := `{"body":"x [REDACTED:kv/agent/db]","props":{"[REDACTED:kv/agent/db]":"1","[REDACTED:kv/agent/db]#2":"2"},"n":3,"list":["[REDACTED:kv/agent/db]"]}`
	if string(raw) != want {
		t.Errorf("got  %s\nwant %s", raw, want)
	}
	if _, err := canon.JCS(raw); err != nil {
		t.Errorf("not canonicalisable: %v", err)
	}
	// The input is untouched.
	if !strings.Contains(string(canon.AppendCompact(nil, &v)), secret) {
		t.Error("RedactValue changed its input")
	}
}

// FuzzCheck: the gate parses what agents post (event payloads) and what
// writers build. Whatever the input, it must not panic, and once a blob
// holds the secret raw it is refused.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"a":"b"}`))
	f.Add([]byte(`{"` + secret + `":[1,{"x":"` + secret + `"}]}`))
	f.Add([]byte(`["\u0070@ss\u0026w0rd/+=canary"]`))
	f.Add([]byte(`{"a":"\ud800"}`))
	f.Add([]byte(`not json`))
	reg := registry()
	f.Fuzz(func(t *testing.T, b []byte) {
		err := evidence.Check(reg, job, b)
		if strings.Contains(string(b), secret) && err == nil {
			t.Fatalf("not refused: %q", b)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Fatalf("the error names the secret")
		}
		if v, perr := canon.Parse(b); perr == nil {
			out, _ := evidence.RedactValue(reg, job, &v)
			if _, ok := evidence.FindValue(reg, job, &out); ok {
				t.Fatalf("RedactValue left a secret in %q", b)
			}
		}
	})
}
