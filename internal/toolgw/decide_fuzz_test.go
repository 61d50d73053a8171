package toolgw_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/toolgw"
)

var (
	runtimeRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	toolRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
)

// FuzzParseDecideRequest: the parser never panics; what it accepts has a
// tool of the fixed alphabets, an object of params, facts that are
// booleans, and parses the same again once re-encoded.
func FuzzParseDecideRequest(f *testing.F) {
	for _, s := range []string{
		`{"tool":{"runtime":"openclaw","name":"exec","kind":"code_mode_exec"},"params":{"command":"ls"}}`,
		`{"tool":{"runtime":"openclaw","name":"read"},"params":null,"correlation":{"run_id":"r","tool_call_id":"c","session_key":"agent:main:main","agent_id":"main","trace":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"a=b"}},"facts":{"sandboxed":true,"elevated":false,"requester":{"channel":"ops","account_id":"a","sender_id":"s","sender_is_owner":true}}}`,
		`{"tool":{"runtime":"openclaw","name":"exec"},"facts":{"sandboxed":"true"}}`,
		`{"tool":{"runtime":"openclaw","name":"exec"},"tool":{"runtime":"x","name":"y"}}`,
		`{"Tool":{}}`, `[]`, `null`, `{"tool":{"runtime":"a","name":"b\u0000"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, e := toolgw.ParseDecideRequest(raw)
		if e != nil {
			if e.Code != toolgw.CodeInvalidRequest && e.Code != toolgw.CodePayloadTooLarge {
				t.Fatalf("refused with %s", e.Code)
			}
			return
		}
		if !runtimeRE.MatchString(req.Tool.Runtime) || !toolRE.MatchString(req.Tool.Name) || req.Tool.Kind != "" && !toolRE.MatchString(req.Tool.Kind) {
			t.Fatalf("accepted tool %+v", req.Tool)
		}
		if !req.Params.IsObject() {
			t.Fatalf("params of kind %v", req.Params.Kind)
		}
		if c := req.Correlation; c != nil && c.Trace != nil && len(c.Trace.Traceparent) != 55 {
			t.Fatalf("traceparent %q", c.Trace.Traceparent)
		}
		for _, s := range []string{req.Tool.Kind} {
			if strings.ContainsAny(s, "*?/") {
				t.Fatalf("glob or slash in %q", s)
			}
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		req2, e := toolgw.ParseDecideRequest(again)
		if e != nil {
			t.Fatalf("re-encoded request refused: %v (%s)", e, again)
		}
		a, b := canon.AppendJCS(nil, &req.Params), canon.AppendJCS(nil, &req2.Params)
		if req2.Tool != req.Tool || string(a) != string(b) {
			t.Fatalf("round trip changed the request: %s", again)
		}
		// An open decision keeps the compact form of its arguments and
		// parses it again at close: the same value must come back.
		kept, err := canon.Parse(canon.AppendCompact(nil, &req.Params))
		if err != nil {
			t.Fatalf("kept arguments unreadable: %v", err)
		}
		if c := canon.AppendJCS(nil, &kept); string(c) != string(a) {
			t.Fatalf("kept arguments changed: %s != %s", c, a)
		}
	})
}

// FuzzParseResultRequest: the result parser never panics and accepts
// only the three statuses and error codes of its alphabet.
func FuzzParseResultRequest(f *testing.F) {
	for _, s := range []string{
		`{"status":"success","result":{"stdout":"x"}}`,
		`{"status":"error","error_code":"ENOENT","error_message":"no such file"}`,
		`{"status":"timeout"}`, `{"status":"success","error_code":"X"}`, `{}`, `1`,
	} {
		f.Add([]byte(s))
	}
	codeRE := regexp.MustCompile(`^[A-Za-z0-9_.:-]{0,64}$`)
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, e := toolgw.ParseResultRequest(raw)
		if e != nil {
			return
		}
		switch req.Status {
		case toolgw.ResultSuccess, toolgw.ResultError, toolgw.ResultTimeout:
		default:
			t.Fatalf("status %q", req.Status)
		}
		if !codeRE.MatchString(req.ErrorCode) {
			t.Fatalf("error code %q", req.ErrorCode)
		}
	})
}

// FuzzDecideEgress drives fuzzed parameters through the real gateway for
// a job that has read the canary: a call whose parameters hold the
// canary is never allowed, and no answer quotes it.
func FuzzDecideEgress(f *testing.F) {
	e := start(f)
	_, tok := e.job(e.publish([]byte(`{"policy_version":"2","policy_id":"fuzz-rt","issuer_did":"did:web:test.example","statements":[
		{"sid":"Read","effect":"Allow","actions":["keyvault:secrets.get"],"resources":["kv://*/secrets/agent/**"]},
		{"sid":"All","effect":"Allow","actions":["tool:execute"],"resources":["tool://openclaw/*","tool://openclaw/exec"]}]}`)))
	j, ae := e.node.Tools.Authorize(context.Background(), tok)
	if ae != nil {
		f.Fatal(ae)
	}
	if _, ce := e.node.Tools.Call(context.Background(), j, "keyvault_get_secret", []byte(`{"vault":"`+vaultName+`","name":"agent/app/db-password"}`)); ce != nil {
		f.Fatal(ce)
	}
	if ans, de := e.node.Tools.DecideTool(context.Background(), j, &toolgw.DecideRequest{
		Tool: toolgw.RuntimeTool{Runtime: "openclaw", Name: "exec"}, Params: canon.Value{Kind: canon.Object}}); de != nil || ans.Decision != toolgw.DecisionAllow {
		f.Fatalf("the policy does not allow exec: %+v %v", ans, de)
	}
	for _, s := range []string{`{"command":"ls"}`, `{"command":"echo ` + dbPassword + `"}`, `{"env":{"` + dbPassword + `":1}}`, `{"a":["x",{"b":"` + dbPassword[:10] + `"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := canon.Parse(raw)
		if err != nil || !v.IsObject() {
			return
		}
		ans, de := e.node.Tools.DecideTool(context.Background(), j, &toolgw.DecideRequest{
			Tool: toolgw.RuntimeTool{Runtime: "openclaw", Name: "exec"}, Params: v})
		if de != nil {
			if strings.Contains(de.Msg, dbPassword) {
				t.Fatalf("error quotes the canary: %s", de.Msg)
			}
			if de.Code == toolgw.CodeDecisionsFull {
				t.Fatalf("the job's open decisions are not closed: %v", de)
			}
			return
		}
		if ans.Decision == toolgw.DecisionAllow {
			// Closed, so that the job stays under its bound of open decisions.
			if _, ce := e.node.Tools.CloseDecision(context.Background(), j, ans.DecisionID, &toolgw.ResultRequest{Status: toolgw.ResultSuccess, Result: canon.Value{Kind: canon.Null}}); ce != nil {
				t.Fatalf("close: %v", ce)
			}
		}
		holds := strings.Contains(string(canon.AppendCompact(nil, &v)), dbPassword)
		if holds && ans.Decision == toolgw.DecisionAllow {
			t.Fatalf("a call carrying the canary was allowed: %s", raw)
		}
		if strings.Contains(ans.Message, dbPassword) {
			t.Fatalf("answer quotes the canary: %s", ans.Message)
		}
	})
}
