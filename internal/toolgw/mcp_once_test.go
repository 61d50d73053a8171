package toolgw_test

import (
	"context"
	"net/http/httptest"
	"testing"
)

// TestMCPReceiptsOnceAndFinished: one tools/call leaves exactly one receipt
// on each path; after the job finished, both paths answer alike.
func TestMCPReceiptsOnceAndFinished(t *testing.T) {
	e := start(t)
	jobID, tok := e.job(e.publish([]byte(fsPolicy)))
	g := e.node.Tools
	direct := httptest.NewServer(g.MCPHandler())
	defer direct.Close()
	sdk := httptest.NewServer(g.MCPHandlerSDK())
	defer sdk.Close()
	count := func() int {
		items, err := e.node.Store.ListItems(context.Background(), jobID)
		if err != nil {
			t.Fatal(err)
		}
		return len(items)
	}
	for _, c := range mcpDirectCases()[:3] {
		n0 := count()
		postMCP(t, direct.URL, tok, c)
		n1 := count()
		postMCP(t, sdk.URL, tok, c)
		n2 := count()
		t.Logf("%s: items added direct %d, sdk %d", c.name, n1-n0, n2-n1)
		if n1-n0 != n2-n1 || n1-n0 != 1 {
			t.Errorf("%s: receipts direct %d sdk %d", c.name, n1-n0, n2-n1)
		}
	}
	e.finish(jobID)
	for _, c := range mcpDirectCases()[:4] {
		got, want := postMCP(t, direct.URL, tok, c), postMCP(t, sdk.URL, tok, c)
		t.Logf("after finish %s: direct %d %.160s | sdk %d %.160s", c.name, got.status, got.raw, want.status, want.raw)
		if got.raw != want.raw || got.status != want.status {
			t.Errorf("divergence after finish")
		}
	}
}
