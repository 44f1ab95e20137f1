package bundles

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/galley-dev/galley/internal/golden"
)

// TestManifestGolden keeps the manifest of the sample bundle, indented, in
// testdata so that a format change shows up as a readable diff next to the
// digest change in ExamplePack. Run with -update to accept a change.
func TestManifestGolden(t *testing.T) {
	b := samplePack(t)
	var got bytes.Buffer
	if err := json.Indent(&got, b.Manifest, "", "  "); err != nil {
		t.Fatal(err)
	}
	got.WriteString("\n")
	golden.Check(t, filepath.Join("testdata", "manifest.golden.json"), got.Bytes())
}
