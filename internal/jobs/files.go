package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clawea/clawea/envelope"
)

// WriteBundles writes finished bundles as files a verifier picks up: the
// proof bundle as <job>-bundle.json with <job>-urm.json and
// <job>-trust-pulse.json beside it (clawea verify loads the URM found
// there), members of a long job as <job>-part<N>-bundle.json, and the
// aggregate as <job>-aggregate.json. A bundle's unanchored records (see
// FinishedBundle) go beside it as <base>-unanchored.json, a JSON array. It
// returns the paths written.
func WriteBundles(dir, jobID string, bs []FinishedBundle) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	write := func(path string, data []byte) error {
		if err := os.WriteFile(path, append(bytes.TrimRight(data, "\n"), '\n'), 0o644); err != nil {
			return err
		}
		written = append(written, path)
		return nil
	}
	multi := len(bs) > 1
	for _, b := range bs {
		base := filepath.Join(dir, jobID)
		pretty, err := envelope.Indent(b.Envelope)
		if err != nil {
			return written, err
		}
		if b.Part < 0 {
			if err := write(base+"-aggregate.json", pretty); err != nil {
				return written, err
			}
			continue
		}
		if multi {
			base = fmt.Sprintf("%s-part%d", base, b.Part)
		}
		if err := write(base+"-bundle.json", pretty); err != nil {
			return written, err
		}
		if len(b.URM) > 0 {
			if err := write(base+"-urm.json", b.URM); err != nil {
				return written, err
			}
		}
		if len(b.TrustPulse) > 0 {
			if err := write(base+"-trust-pulse.json", b.TrustPulse); err != nil {
				return written, err
			}
		}
		if len(b.UnanchoredRecords) > 0 {
			raw, err := json.MarshalIndent(b.UnanchoredRecords, "", "  ")
			if err != nil {
				return written, err
			}
			if err := write(base+"-unanchored.json", raw); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}
