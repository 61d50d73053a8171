package receipt

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/clawea/clawea/canon"
	"github.com/clawea/clawea/internal/testkit"
	"github.com/clawea/clawea/signer"
)

// TestMerkleTreeGolden rebuilds the log golden's tree from its leaves.
func TestMerkleTreeGolden(t *testing.T) {
	var g struct {
		Leaves []string `json:"leaves"`
		Proof  struct {
			LeafIndex int      `json:"leaf_index"`
			AuditPath []string `json:"audit_path"`
			Root      string   `json:"root_hash_b64u"`
		} `json:"proof"`
	}
	if err := json.Unmarshal(testkit.ReadFixture(t, "log_inclusion_proof_golden.v1.json"), &g); err != nil {
		t.Fatal(err)
	}
	tree, err := NewMerkleTree(g.Leaves)
	if err != nil {
		t.Fatal(err)
	}
	if tree.Root() != g.Proof.Root {
		t.Errorf("root %s, want %s", tree.Root(), g.Proof.Root)
	}
	if got := tree.Path(g.Proof.LeafIndex); !slices.Equal(got, g.Proof.AuditPath) {
		t.Errorf("path %v, want %v", got, g.Proof.AuditPath)
	}
}

func TestGatewayKeyOrder(t *testing.T) {
	k, _ := signer.FromSeed(testkit.Seed(100))
	g := &Gateway{ReceiptID: "r", GatewayID: "gw", Provider: "openai", Model: "m", RequestHash: "aaaaaaaa", ResponseHash: "bbbbbbbb",
		Timestamp: "2026-02-12T00:00:00.000Z", Binding: &Binding{RunID: "run", EventHash: "cccccccc", Nonce: "n"}}
	env, err := g.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	got := string(canon.AppendCompact(nil, &env.Payload))
	want := `{"receipt_version":"1","receipt_id":"r","gateway_id":"gw","provider":"openai","model":"m","request_hash_b64u":"aaaaaaaa","response_hash_b64u":"bbbbbbbb","tokens_input":0,"tokens_output":0,"latency_ms":0,"timestamp":"2026-02-12T00:00:00.000Z","binding":{"run_id":"run","event_hash_b64u":"cccccccc","nonce":"n"}}`
	if got != want {
		t.Errorf("payload:\n got %s\nwant %s", got, want)
	}
	if env.IssuedAt != g.Timestamp {
		t.Errorf("issued_at %s", env.IssuedAt)
	}
}

func TestCommitmentDisclosure(t *testing.T) {
	secret := []byte("0123456789abcdef")
	v, _ := canon.ValueOf(map[string]any{"a": 1, "b": "x"})
	c1, err := Commit("args", v, secret, "fixed-salt-0001")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := Commit("args", v, secret, "fixed-salt-0001")
	if c1.Root != c2.Root {
		t.Error("commitment is not deterministic for a fixed salt")
	}
	c3, _ := Commit("args", v, []byte("another-secret-16"), "fixed-salt-0001")
	if c3.Root == c1.Root {
		t.Error("leaf salts ignore the secret")
	}
	d, err := c1.Disclose("args.b")
	if err != nil || len(d.RedactedLeaves) != 1 || d.MerkleRoot != c1.Root {
		t.Fatalf("disclose: %+v %v", d, err)
	}
	if _, err := c1.Disclose("args.zz"); err == nil {
		t.Error("disclosed a missing leaf")
	}
	if _, err := Commit("args", v, []byte("short"), ""); err == nil {
		t.Error("short secret accepted")
	}
	_ = time.Now
}

// TestGatewayEncoderMatchesMarshal compares the direct encoder with
// canon.Marshal over receipts with and without every optional part.
func TestGatewayEncoderMatchesMarshal(t *testing.T) {
	conf := 0.5
	mi := NewModelIdentity("open\"ai", "gpt-4o\u2028mini")
	cases := []Gateway{
		{Version: "1", ReceiptID: "r", GatewayID: "g", Provider: "p", Model: "m", RequestHash: "a", ResponseHash: "b", Timestamp: "t"},
		{Version: "1", ReceiptID: "r<>&", GatewayID: "g", Provider: "p", Model: "m", RequestHash: "a", ResponseHash: "b",
			TokensInput: 1 << 40, TokensOutput: 7, LatencyMS: 123456, Timestamp: "t",
			Binding: &Binding{}, Metadata: &GatewayMetadata{}},
		{Version: "1", ReceiptID: "r", GatewayID: "g", Provider: "p", Model: "m", RequestHash: "a", ResponseHash: "b", Timestamp: "t",
			Binding: &Binding{RunID: "run", EventHash: "e", Nonce: "n\x01", PolicyHash: "ph", TokenScopeHash: "s", SpanID: "sp",
				ParentSpanID: "pp", ToolSpanID: "ts", Phase: "execution", AttributionConfidence: &conf},
			Metadata: &GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: mi.Hash(), Status: "OK", ErrorCode: "E", Streamed: true,
				Redactions: 3, Privacy: "hash_only", JobLabels: map[string]string{"zone": "eu-1", "change_ticket": "CHG-1", "a_b": "x/y@z"}}},
		{Version: "1", Binding: &Binding{SpanID: "only"}, Metadata: &GatewayMetadata{Streamed: true}},
		{Version: "1", Metadata: &GatewayMetadata{JobLabels: map[string]string{"only": "v"}}},
	}
	k, _ := signer.FromSeed(testkit.Seed(100))
	for i, g := range cases {
		want, err := canon.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.appendCompact(nil); string(got) != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
		// SignJSON relies on that: it must give Sign's envelope, byte for
		// byte (Ed25519 signatures are deterministic).
		g.Timestamp = "2026-11-22T05:00:00.000Z"
		env, err := g.Sign(k)
		if err != nil {
			t.Fatal(err)
		}
		slow, _ := env.JSON()
		fast, err := g.SignJSON(k)
		if err != nil || string(fast) != string(slow) {
			t.Errorf("case %d: SignJSON\n got %s (%v)\nwant %s", i, fast, err, slow)
		}
	}
}

// BenchmarkGatewaySign signs a model call's receipt as the model gateway
// does (SignJSON), and the generic way (Sign, then JSON).
func BenchmarkGatewaySign(b *testing.B) {
	k, _ := signer.FromSeed(testkit.Seed(100))
	mi := NewModelIdentity("openai", "gpt-4o-mini")
	g := Gateway{ReceiptID: "rcpt_0123456789abcdef0123456789abcdef", GatewayID: k.DID(), Provider: "openai", Model: "gpt-4o-mini",
		RequestHash: "FsKGxfPJ_zbl_8nnxERCFldcVv3gY7k4cTZBInlwNvc", ResponseHash: "6EgSG1eajIkQr_xFGTYUeConIr2zdNqLT2hOOCdK2X0",
		TokensInput: 120, TokensOutput: 240, LatencyMS: 3, Timestamp: "2026-11-22T05:00:00.000Z",
		Binding: &Binding{RunID: "job_0123", EventHash: "aZsDHND_Dur_-rzESbVR-iRmQsUCGQen2a4gVrd5McA", Nonce: "n", PolicyHash: "gjQS0erLZ5ViIOUylZ8BBGAwV8iHBIY8o4580Yj9qBI",
			TokenScopeHash: "XxYckUmILg4QEkvF3VwR8Pvo7EUu3VK87HawHpJSyzM", SpanID: "llm_evt_000002", ParentSpanID: "llm_evt_000001"},
		Metadata: &GatewayMetadata{ModelIdentity: &mi, ModelIdentityHash: mi.Hash(), Status: "OK", Privacy: "hash_only"}}
	b.Run("SignJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.SignJSON(k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Sign+JSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			env, err := g.Sign(k)
			if err != nil {
				b.Fatal(err)
			}
			env.JSON()
		}
	})
}

// BenchmarkCommit commits to a Key Vault get's result (seven leaves), as
// the tool gateway does for every call.
func BenchmarkCommit(b *testing.B) {
	v, err := canon.Parse([]byte(`{"vault":"kv-prod-finance-001","name":"agent/app/db-password","version":"0f3c2a9b8e7d6c5b4a39281706f5e4d3",
		"value":"[REDACTED:kv-prod-finance-001/agent/app/db-password]","content_type":"text/plain","enabled":true,"updated":"2026-11-22T03:57:32Z"}`))
	if err != nil {
		b.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Commit("result", v, secret, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLeafHashFastPath: the direct leaf and root encodings equal the
// generic JCS ones.
func TestLeafHashFastPath(t *testing.T) {
	for _, doc := range []string{`"x"`, `1e21`, `-0.5`, `null`, `true`, `{"b":[1,{"z":"\u2028","a":"é"}],"a":"\ud83d\ude00"}`, `"</script>\u0000"`} {
		v, err := canon.Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		leaf := DisclosedLeaf{Type: v.Kind.String(), Value: v, Salt: "c2FsdA"}
		obj := canon.Value{Kind: canon.Object, Members: []canon.Member{
			{Key: "type", Value: canon.NewString(leaf.Type)}, {Key: "value", Value: v}, {Key: "salt_b64u", Value: canon.NewString(leaf.Salt)}}}
		if got, want := LeafHash("result.é", leaf), LeafHashOf("result.é", &obj); got != want {
			t.Errorf("%s: leaf hash %s, generic %s", doc, got, want)
		}
	}
	hashes := []string{"b", "a", "\u00e9", "Z", "\U0001F600", "\uff61"}
	arr := canon.Value{Kind: canon.Array}
	sorted := slices.Clone(hashes)
	slices.SortFunc(sorted, canon.CompareUTF16)
	for _, h := range sorted {
		arr.Items = append(arr.Items, canon.NewString(h))
	}
	if got, want := Root(hashes), HashJSON(arr); got != want {
		t.Errorf("root %s, generic %s", got, want)
	}
}
