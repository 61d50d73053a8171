package fakemodel

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(m *Model, body string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body)))
	return w
}

func TestScript(t *testing.T) {
	m := &Model{Script: []Step{{Tool: "keyvault_get_secret", Args: map[string]any{"vault": "v"}}, {Text: "done"}}}
	w := post(m, `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"function":{"name":"exec"}},{"function":{"name":"clawea__keyvault_get_secret"}}]}`)
	var out struct {
		Choices []struct {
			Message struct {
				Content   *string `json:"content"`
				ToolCalls []struct {
					ID       string `json:"id"`
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Choices) != 1 {
		t.Fatalf("%v: %s", err, w.Body)
	}
	c := out.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Name != "clawea__keyvault_get_secret" ||
		c.Message.ToolCalls[0].Function.Arguments != `{"vault":"v"}` || c.Message.ToolCalls[0].ID != CallID(0, "keyvault_get_secret") {
		t.Fatalf("step 0: %s", w.Body)
	}
	// With one tool result, the next step: text, streamed.
	w = post(m, `{"model":"m","stream":true,"messages":[{"role":"tool","tool_call_id":"`+CallID(0, "keyvault_get_secret")+`","content":[{"type":"text","text":"R"}]}]}`)
	if !strings.Contains(w.Body.String(), `"content":"done"`) || !strings.HasSuffix(w.Body.String(), "data: [DONE]\n\n") {
		t.Fatalf("step 1: %s", w.Body)
	}
	if got := m.ToolResults()[CallID(0, "keyvault_get_secret")]; got != "R" {
		t.Fatalf("tool result %q", got)
	}
	// A tool that is not offered ends the script with a message saying so.
	m = &Model{Script: []Step{{Tool: "nope"}}}
	if w := post(m, `{"messages":[]}`); !strings.Contains(w.Body.String(), "FAKE-MODEL: no offered tool") {
		t.Fatalf("missing tool: %s", w.Body)
	}
	// An exact name wins over a suffix.
	if got := pick([]string{"file_write", "clawea__write", "write"}, "write"); got != "write" {
		t.Fatalf("pick: %q", got)
	}
	if got := pick([]string{"file_write", "clawea__write"}, "write"); got != "clawea__write" {
		t.Fatalf("pick: %q", got)
	}
	if w := post(m, `{`); w.Code != http.StatusBadRequest {
		t.Fatalf("bad json: %d", w.Code)
	}
}

func FuzzServe(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"tool","content":"x"}],"tools":[{"function":{"name":"a__b"}}]}`))
	f.Add([]byte(`{"stream":true,"messages":[{"role":"tool","content":[{"type":"text","text":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m := &Model{Script: []Step{{Tool: "b", Args: map[string]any{"k": 1}}, {Text: "t"}}}
		w := httptest.NewRecorder()
		m.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)))
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d", w.Code)
		}
		m.ToolResults()
	})
}
