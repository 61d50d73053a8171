package policy

import "testing"

// CouldAllowOn lists a proxied MCP tool only when an Allow could match
// its resource and no unconditional Deny covers it; conditional denies and
// inherited parents are taken into account.
func TestCouldAllowOn(t *testing.T) {
	doc := mustParse(t, `{"policy_version":"2","policy_id":"p","issuer_did":"did:web:x","statements":[
		{"sid":"Fs","effect":"Allow","actions":["mcp:call"],"resources":["mcp://fs/*"]},
		{"sid":"Everything","effect":"Allow","actions":["mcp:*"],"resources":["mcp://every/**"]},
		{"sid":"NoWrite","effect":"Deny","actions":["mcp:call"],"resources":["mcp://fs/write_file"]},
		{"sid":"NoPrivate","effect":"Deny","actions":["mcp:call"],"resources":["mcp://fs/read_text_file"],
		 "conditions":{"StringLike":{"mcp:arg.Path":"**/private/**"}}},
		{"sid":"NoEnv","effect":"Deny","actions":["*"],"resources":["mcp://every/get-env"]}]}`)
	p, err := Compile(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[string]bool{
		"mcp://fs/read_text_file": true,  // conditional deny
		"mcp://fs/write_file":     false, // unconditional deny
		"mcp://every/echo":        true,
		"mcp://every/get-env":     false,
		"mcp://other/echo":        false, // no allow matches
		"mcp://fs/a/b":            false, // * stops at /
	} {
		if got := p.CouldAllowOn("mcp:call", res); got != want {
			t.Errorf("%s: %v, want %v", res, got, want)
		}
	}
	if p.CouldAllowOn("keyvault:secrets.get", "mcp://fs/read_text_file") {
		t.Error("another action")
	}
	// MCP:Arg.<name> is a known prefix: the name compiles in lower case.
	if !p.References("MCP:Arg.path") {
		t.Error("MCP:Arg.path not referenced")
	}
	var d Decision
	p.Evaluate(&Request{Action: "mcp:call", Resource: "mcp://fs/read_text_file", Context: MapContext(map[string]string{"MCP:Arg.path": "/r/private/x"})}, &d)
	if d.Effect != Deny {
		t.Errorf("argument condition: %v", d.Effect)
	}
	if k, ok := CanonicalKey("mcp:SERVER"); !ok || k != "MCP:Server" {
		t.Errorf("MCP:Server: %q %v", k, ok)
	}
}
