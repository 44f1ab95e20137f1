package bundles

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

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
	golden := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("manifest differs from %s (run go test -update if the change is intended):\n%s", golden, got.Bytes())
	}
}
