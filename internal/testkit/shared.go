// Package testkit holds helpers shared by clawea's tests.
package testkit

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SharedDir returns the shared test-data directory (CLAWEA_SHARED, default
// ../shared relative to the repository root). When it is missing the test is
// skipped with a clear message, or fails when CLAWEA_REQUIRE_SHARED=1 (CI).
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CLAWEA_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "..", "shared")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		msg := "shared test data not found at " + dir + " (set CLAWEA_SHARED to the shared folder)"
		if os.Getenv("CLAWEA_REQUIRE_SHARED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// ProtocolDir returns the claw-protocol folder inside the shared directory.
func ProtocolDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(SharedDir(t), "claw-protocol")
}

// Fixture returns the path of a file under claw-protocol/packages/schema/fixtures.
func Fixture(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(ProtocolDir(t), "packages", "schema", "fixtures", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CLAWEA_REQUIRE_SHARED") == "1" {
			t.Fatalf("fixture missing: %v", err)
		}
		t.Skipf("fixture missing: %v", err)
	}
	return p
}

// ReadFixture reads a fixture file.
func ReadFixture(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Seed returns 32 bytes start, start+1, …, the deterministic seeds of the
// conformance vectors (agent: 1, gateway: 100).
func Seed(start byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}
