package toolgw_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestToolsListGolden: the tools/list answer (names, descriptions, actions,
// schemas and order of the Key Vault and Service Bus tools) is what clients
// saw before the tools moved into their connectors, byte for byte. The file
// was written by the code before the move; CLAWEA_UPDATE_GOLDEN=1 rewrites
// it after a deliberate change.
func TestToolsListGolden(t *testing.T) {
	e := start(t)
	raw, err := json.Marshal(e.node.Tools.Tools(nil))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	json.Indent(&got, raw, "", " ")
	got.WriteByte('\n')
	path := filepath.Join("testdata", "tools_list.json")
	if os.Getenv("CLAWEA_UPDATE_GOLDEN") == "1" {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("tools/list differs from %s:\n%s", path, got.Bytes())
	}
}
