package demo

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/clawea/clawea/verify"
)

// TestDemoBundlePassesStrict runs the demo end to end (model gateway, tool
// gateway, approval, custodial agent) and checks that its bundle passes
// strict mode with the completeness checks, that pinning its agent removes
// the warning, and that pinning another agent refuses it.
func TestDemoBundlePassesStrict(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Run(ctx, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("demo: %v (%+v)", err, s)
	}
	raw, err := os.ReadFile(s.BundlePath)
	if err != nil {
		t.Fatal(err)
	}
	urm, err := os.ReadFile(s.URMPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := verify.LoadConfig(s.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	opt := verify.Options{Strict: true, URM: urm, Config: cfg}
	out := verify.Check(raw, verify.KindProofBundle, opt)
	if out.Status != verify.StatusPass || len(out.Warnings) != 1 || out.Verification.ToolReceipts == 0 || out.Verification.ReceiptsVerified == 0 {
		t.Fatalf("unpinned: %s %s %s warnings %q", out.Status, out.ReasonCode, out.Reason, out.Warnings)
	}
	opt.Config.AgentSigners = []string{s.AgentDID}
	if out := verify.Check(raw, verify.KindProofBundle, opt); out.Status != verify.StatusPass || len(out.Warnings) != 0 {
		t.Fatalf("pinned: %s %s warnings %q", out.Status, out.ReasonCode, out.Warnings)
	}
	opt.Config.AgentSigners = []string{s.ApproverDID}
	if out := verify.Check(raw, verify.KindProofBundle, opt); out.ReasonCode != verify.SignerNotPinned {
		t.Fatalf("another agent pinned: %s %s", out.Status, out.ReasonCode)
	}
}
