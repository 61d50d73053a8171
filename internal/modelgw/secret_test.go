package modelgw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/clawea/clawea/internal/modelgw"
	"github.com/clawea/clawea/internal/redact"
)

// jobSecret needs escaping in every JSON encoder: HTML characters (Go),
// non-ASCII and an astral character (Python's ensure_ascii), '/' (\/) and
// a quote.
const jobSecret = `Tr0ub4dor&3/<é>😀"x`

// leaks decodes a forwarded body with encoding/json and returns the first
// string (object keys included) that holds a form of jobSecret, or "" when
// none does, failing when the body is not JSON.
func leaks(t testing.TB, body []byte) string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	forms := redact.Forms(jobSecret)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			t.Fatalf("the upstream received a body that is not JSON: %v\n%s", err, body)
		}
		if s, ok := tok.(string); ok {
			for _, f := range forms {
				if strings.Contains(s, f) {
					return s
				}
			}
		}
	}
}

// pyDumps encodes s as Python's json.dumps does by default
// (ensure_ascii): non-ASCII as lowercase \uXXXX, astral characters as
// surrogate pairs, '/' raw.
func pyDumps(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r < 0x7f:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// escapeAt encodes s with only the character at rune index i \u-escaped
// (quote and backslash escaped as JSON requires).
func escapeAt(s string, i int) string {
	var b strings.Builder
	b.WriteByte('"')
	for j, r := range []rune(s) {
		switch {
		case j == i && r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04X\u%04X`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		case j == i:
			fmt.Fprintf(&b, `\u%04X`, r)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestSecretEscapedAnyWay: a revealed secret sent JSON-escaped as Python
// and Go encoders write it, or with any one character escaped, on every
// route, streaming or not, reaches the upstream only redacted.
func TestSecretEscapedAnyWay(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	e.node.Secrets.Add(jobID, jobSecret, "kv/app/pw")
	goHTML, _ := json.Marshal("use " + jobSecret + " now") // \u0026 \u003c \u003e
	encodings := map[string]string{
		"python ensure_ascii": pyDumps("use " + jobSecret + " now"),
		"go html escaping":    string(goHTML),
	}
	for i := range utf8.RuneCountInString(jobSecret) {
		encodings[fmt.Sprintf("escaped rune %d", i)] = escapeAt(jobSecret, i)
	}
	routes := []struct{ path, model, sep string }{
		{"/v1/chat/completions", "gpt-4o-mini", ", "},
		{"/v1/proxy/openai/v1/chat/completions", "gpt-4o-mini", ","},
		{"/v1/messages", "claude-3-5-haiku-latest", ", "},
	}
	for name, str := range encodings {
		for _, rt := range routes {
			for _, stream := range []bool{false, true} {
				body := `{"model": "` + rt.model + `"` + rt.sep + `"max_tokens": 50` + rt.sep + `"stream": ` + fmt.Sprint(stream) + rt.sep +
					`"messages": [{"role": "user", "content": ` + str + `}]}`
				if !strings.Contains(name, "rune") && strings.Contains(body, jobSecret) {
					t.Fatalf("%s: the test body holds the raw secret", name)
				}
				a := e.post(rt.path, bearer(tok), body)
				if a.status != 200 {
					t.Fatalf("%s %s stream=%v: %d %s", name, rt.path, stream, a.status, a.raw)
				}
				got := e.upstream.Last().Body
				if s := leaks(t, got); s != "" || !bytes.Contains(got, []byte(redact.Marker("kv/app/pw"))) {
					t.Errorf("%s %s stream=%v: upstream received %s", name, rt.path, stream, got)
				}
			}
		}
	}
	// The Responses API, its input a string.
	a := e.post("/v1/responses", bearer(tok), `{"model":"gpt-4o-mini","input":`+pyDumps(jobSecret)+`}`)
	if got := e.upstream.Last().Body; a.status != 200 || leaks(t, got) != "" {
		t.Errorf("responses: %d, upstream received %s", a.status, got)
	}
	e.finish(jobID)
}

// TestSecretThroughSDKs: what the official SDKs send — the Anthropic SDK
// escapes '&', '<' and '>' as Go's encoding/json does — reaches the
// provider redacted.
func TestSecretThroughSDKs(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	e.node.Secrets.Add(jobID, jobSecret, "kv/app/pw")
	var sent [][]byte
	capture := func(req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(b))
		sent = append(sent, b)
	}
	oc := openai.NewClient(ooption.WithBaseURL(e.url+"/v1/"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0),
		ooption.WithMiddleware(func(req *http.Request, next ooption.MiddlewareNext) (*http.Response, error) {
			capture(req)
			return next(req)
		}))
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("the password is " + jobSecret)}}
	if _, err := oc.Chat.Completions.New(ctx, params); err != nil {
		t.Fatal(err)
	}
	checkUpstream := func(what string) {
		t.Helper()
		got := e.upstream.Last().Body
		if s := leaks(t, got); s != "" || !bytes.Contains(got, []byte(redact.Marker("kv/app/pw"))) {
			t.Errorf("%s: upstream received %s", what, got)
		}
	}
	checkUpstream("openai")
	stream := oc.Chat.Completions.NewStreaming(ctx, params)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	checkUpstream("openai streaming")

	ac := anthropic.NewClient(aoption.WithBaseURL(e.url), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0),
		aoption.WithMiddleware(func(req *http.Request, next aoption.MiddlewareNext) (*http.Response, error) {
			capture(req)
			return next(req)
		}))
	if _, err := ac.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-3-5-haiku-latest", MaxTokens: 50,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("the password is " + jobSecret))}}); err != nil {
		t.Fatal(err)
	}
	checkUpstream("anthropic")
	// openai-go writes the secret raw; anthropic-sdk-go escapes it as
	// encoding/json does (\u0026, \u003c, \u003e): the escaped path is
	// what this test is about.
	if len(sent) != 3 {
		t.Fatalf("%d SDK requests captured", len(sent))
	}
	if b := sent[2]; bytes.Contains(b, []byte(jobSecret[:10])) || !bytes.Contains(b, []byte(`\u0026`)) {
		t.Errorf("the Anthropic SDK did not HTML-escape the secret: %s", b)
	}
	e.finish(jobID)
}

// randomString encodes s as JSON, each character written one of the ways
// JSON allows, chosen at random.
func randomString(rng *rand.Rand, s string) string {
	var b strings.Builder
	b.WriteByte('"')
	hexf := func(r rune) string {
		if rng.Intn(2) == 0 {
			return fmt.Sprintf(`\u%04x`, r)
		}
		return fmt.Sprintf(`\u%04X`, r)
	}
	for _, r := range s {
		short := map[rune]string{'"': `\"`, '\\': `\\`, '\n': `\n`, '\t': `\t`, '\r': `\r`, '\b': `\b`, '\f': `\f`, '/': `\/`}[r]
		switch {
		case r > 0xFFFF && rng.Intn(2) == 0:
			r -= 0x10000
			b.WriteString(hexf(0xD800+(r>>10)) + hexf(0xDC00+(r&0x3FF)))
		case r <= 0xFFFF && rng.Intn(3) == 0:
			b.WriteString(hexf(r))
		case short != "" && (r != '/' || rng.Intn(2) == 0):
			b.WriteString(short)
		case r < 0x20:
			b.WriteString(hexf(r))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestSecretProperty: for random JSON encodings of bodies holding a form
// of the job's secret (in a value, a key, a nested tool-call argument
// string), on random routes, streaming or not, the body the upstream
// receives, decoded, holds no form of the secret.
func TestSecretProperty(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	e.node.Secrets.Add(jobID, jobSecret, "kv/app/pw")
	forms := redact.Forms(jobSecret)
	seed := rand.Int63()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	ws := func() string { return []string{"", " ", "\n  ", "\t"}[rng.Intn(4)] }
	iterations := 150
	if testing.Short() {
		iterations = 30
	}
	for i := range iterations {
		form := forms[rng.Intn(len(forms))]
		text := []string{"", "pre ", "a\u2028b ", "é😀 "}[rng.Intn(4)] + form + []string{"", " post", "/\\", "&<>"}[rng.Intn(4)]
		var content string
		switch rng.Intn(3) {
		case 0:
			content = randomString(rng, text)
		case 1: // a tool call's arguments: JSON in a string
			inner := `{"q":` + randomString(rng, text) + `}`
			content = randomString(rng, inner)
		default:
			content = randomString(rng, "see key")
		}
		key := randomString(rng, "note")
		if rng.Intn(4) == 0 {
			key = randomString(rng, text)
		}
		stream := rng.Intn(2) == 0
		path, model := "/v1/chat/completions", "gpt-4o-mini"
		if rng.Intn(3) == 0 {
			path, model = "/v1/messages", "claude-3-5-haiku-latest"
		}
		body := "{" + ws() + randomString(rng, "model") + ws() + ":" + ws() + randomString(rng, model) + "," + ws() +
			`"max_tokens":` + ws() + "50," + `"stream":` + fmt.Sprint(stream) + "," +
			`"metadata":{` + key + ":" + ws() + "1.50e1}," +
			`"messages":[{"role":"user","content":` + ws() + content + ws() + "}]" + ws() + "}"
		if !json.Valid([]byte(body)) {
			t.Fatalf("generator wrote invalid JSON: %s", body)
		}
		a := e.post(path, bearer(tok), body)
		if a.status != 200 {
			t.Fatalf("iteration %d (%s): %d %s\n%s", i, path, a.status, a.raw, body)
		}
		got := e.upstream.Last().Body
		if s := leaks(t, got); s != "" {
			t.Fatalf("iteration %d: a form of the secret reached the upstream in %q\nsent %s\ngot %s", i, s, body, got)
		}
		// A nested document is checked decoded too.
		var m struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
		}
		json.Unmarshal(got, &m)
		if len(m.Messages) == 1 && json.Valid([]byte(m.Messages[0].Content)) && leaks(t, []byte(m.Messages[0].Content)) != "" {
			t.Fatalf("iteration %d: a form of the secret reached the upstream in a nested document: %s", i, got)
		}
	}
	e.finish(jobID)
}

// TestNotScannableRefused: a body that only decodes one way in some
// decoders (a lone surrogate) is refused, counted and recorded, and the
// upstream never sees it, when the job has secrets.
func TestNotScannableRefused(t *testing.T) {
	e := start(t, nil)
	jobID, tok := e.job(e.publish(testPolicy), nil)
	e.node.Secrets.Add(jobID, jobSecret, "kv/app/pw")
	before := e.upstream.Requests()
	for _, body := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tr0ub4dor\ud800&3/<é>😀\"x"}]}`,
		`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"\udc00"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"{\"a\":\"\\ud800\"}"}]}`,
	} {
		a := e.post("/v1/chat/completions", bearer(tok), body)
		if a.status != 400 || a.code != modelgw.CodeRequestNotScannable {
			t.Errorf("%s: %d %s", body, a.status, a.raw)
		}
	}
	if e.upstream.Requests() != before {
		t.Error("an unscannable body reached the upstream")
	}
	var refused int
	for _, ev := range e.events(jobID) {
		if ev["_type"] == modelgw.EventLLMRefused && ev["code"] == modelgw.CodeRequestNotScannable {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d refusals recorded, want 3", refused)
	}
	// A job without secrets has nothing to leak: such a body goes through.
	_, clean := e.job(e.publish(testPolicy), nil)
	if a := e.post("/v1/chat/completions", bearer(clean), `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\ud800"}]}`); a.status != 200 {
		t.Errorf("job without secrets: %d %s", a.status, a.raw)
	}
	e.finish(jobID)
}
