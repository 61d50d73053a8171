package verify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Manifest is a conformance manifest (manifest.v1.json).
type Manifest struct {
	ManifestVersion string `json:"manifest_version"`
	Protocol        struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"protocol"`
	GeneratedAt string   `json:"generated_at"`
	Vectors     []Vector `json:"vectors"`
}

// Vector is one conformance case.
type Vector struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Path     string `json:"path"`
	Expected struct {
		Valid      bool            `json:"valid"`
		ReasonCode json.RawMessage `json:"reason_code"`
	} `json:"expected"`
}

// Codes returns the accepted reason codes (a string means one code).
func (v *Vector) Codes() ([]string, error) {
	var one string
	if err := json.Unmarshal(v.Expected.ReasonCode, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(v.Expected.ReasonCode, &many); err != nil {
		return nil, fmt.Errorf("vector %s: reason_code must be a string or a list", v.Name)
	}
	return many, nil
}

// VectorResult is the outcome of one vector.
type VectorResult struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Expected string   `json:"expected"`
	Got      string   `json:"got"`
	Passed   bool     `json:"passed"`
	Codes    []string `json:"expected_codes"`
	Detail   string   `json:"detail,omitempty"`
}

// LoadManifest reads and checks a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	if m.ManifestVersion != "1" {
		return nil, fmt.Errorf("manifest %s: manifest_version must be \"1\"", path)
	}
	if len(m.Vectors) == 0 {
		return nil, fmt.Errorf("manifest %s: no vectors", path)
	}
	return &m, nil
}

// ManifestTime returns the manifest's generated_at, the default
// verification time of a conformance run.
func (m *Manifest) ManifestTime() (time.Time, error) {
	t, ok := parseLenientDate(m.GeneratedAt)
	if !ok {
		return time.Time{}, fmt.Errorf("manifest generated_at %q does not parse", m.GeneratedAt)
	}
	return t, nil
}

// RunVector checks one vector the way the reference runner does: the
// verdict must match expected.valid and the reason code must be one of the
// expected codes. Commit signatures run without the trust config.
func RunVector(v *Vector, root string, opt Options) VectorResult {
	codes, err := v.Codes()
	res := VectorResult{Name: v.Name, Kind: v.Kind, Codes: codes}
	if v.Expected.Valid {
		res.Expected = "PASS OK"
	} else {
		res.Expected = "FAIL " + fmt.Sprint(codes)
	}
	if err != nil {
		res.Got, res.Detail = "ERROR", err.Error()
		return res
	}
	kind, err := ParseKind(v.Kind)
	if err != nil || kind == KindAuto {
		res.Got, res.Detail = "ERROR", fmt.Sprintf("unknown vector kind %q", v.Kind)
		return res
	}
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(v.Path)))
	if err != nil {
		res.Got, res.Detail = "ERROR", err.Error()
		return res
	}
	if kind == KindCommitSig {
		opt.Config = Config{}
	}
	out := Check(data, kind, opt)
	res.Got = out.Status + " " + out.ReasonCode
	res.Detail = out.Reason
	res.Passed = (out.Status == StatusPass) == v.Expected.Valid && out.Status != StatusError && contains(codes, out.ReasonCode)
	return res
}
