package verify

import (
	"path/filepath"
	"testing"

	"github.com/clawea/clawea/internal/testkit"
)

func conformanceOptions(t *testing.T) (*Manifest, string, Options) {
	t.Helper()
	root := testkit.ProtocolDir(t)
	m, err := LoadManifest(testkit.Fixture(t, "protocol-conformance/manifest.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(testkit.Fixture(t, "protocol-conformance/clawverify.config.conformance.v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	at, err := m.ManifestTime()
	if err != nil {
		t.Fatal(err)
	}
	return m, root, Options{Config: cfg, Now: at}
}

// TestConformanceManifest runs all 40 manifest vectors at the manifest's
// generation time.
func TestConformanceManifest(t *testing.T) {
	m, root, opt := conformanceOptions(t)
	if len(m.Vectors) != 40 {
		t.Errorf("manifest has %d vectors, want 40", len(m.Vectors))
	}
	for i := range m.Vectors {
		v := &m.Vectors[i]
		t.Run(v.Name, func(t *testing.T) {
			r := RunVector(v, root, opt)
			if !r.Passed {
				t.Errorf("expected %s, got %s (%s)", r.Expected, r.Got, r.Detail)
			}
		})
	}
}

// TestConformanceAtCurrentTime shows why the runner defaults to the
// manifest's time: the aggregate vectors with an expires_at now in the past
// rightly fail with EXPIRED_TTL at a later clock.
func TestConformanceAtCurrentTime(t *testing.T) {
	m, root, opt := conformanceOptions(t)
	at, _ := parseLenientDate("2026-11-22T00:00:00Z")
	opt.Now = at
	expired := 0
	for i := range m.Vectors {
		r := RunVector(&m.Vectors[i], root, opt)
		if r.Got == "FAIL EXPIRED_TTL" {
			expired++
		}
	}
	if expired != 6 {
		t.Errorf("%d vectors expired at the later time, want 6", expired)
	}
	_ = filepath.Join
}
