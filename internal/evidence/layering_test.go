package evidence_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

// gateways are the packages that serve agents' calls. They record through
// evidence.Chain and read jobs from the store; none may depend on the job
// service (internal/jobs), directly or through another package, so that a
// gateway runs without it and cannot reach the job service's writes.
var gateways = []string{"internal/modelgw", "internal/toolgw", "internal/mcpproxy"}

// deps lists the packages pkg imports, transitively, from its non-test
// files (go list -deps).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./"+pkg)
	cmd.Dir = testkit.RepoRoot()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestGatewaysDoNotImportJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const jobs = module + "/internal/jobs"
	for _, gw := range gateways {
		d := deps(t, gw)
		if !slices.Contains(d, module+"/"+gw) {
			t.Fatalf("go list -deps %s does not list the package itself: %v", gw, d)
		}
		if slices.Contains(d, jobs) {
			t.Errorf("%s depends on %s (non-test imports): gateways record through internal/evidence and read jobs from the store", gw, jobs)
		}
	}
	// The check must be able to see the dependency: the server runs the
	// job service, and the two recording gateways use the chain.
	if !slices.Contains(deps(t, "internal/server"), jobs) {
		t.Errorf("go list -deps internal/server does not list %s: the check is not looking", jobs)
	}
	for _, gw := range []string{"internal/modelgw", "internal/toolgw"} {
		if !slices.Contains(deps(t, gw), module+"/internal/evidence") {
			t.Errorf("%s does not depend on internal/evidence: how does it record?", gw)
		}
	}
}
