package bundles

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A layer packed to a file is the same bytes, so the same digests, as one
// packed in memory; Close removes the file and nothing else is left.
func TestPackToLayerFile(t *testing.T) {
	mem := samplePack(t)
	dir := t.TempDir()
	b, err := PackWith(sampleTree(t), sampleMetadata, PackOptions{LayerDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b.Layer != nil || b.LayerFile == "" || !b.TempLayer || filepath.Dir(b.LayerFile) != dir {
		t.Fatalf("Layer %d bytes, LayerFile %q, TempLayer %v: want the layer in a temporary file in %s", len(b.Layer), b.LayerFile, b.TempLayer, dir)
	}
	if b.Digest() != mem.Digest() || !bytes.Equal(b.Manifest, mem.Manifest) || b.LayerDescriptor.Digest != mem.LayerDescriptor.Digest ||
		!bytes.Equal(layerBytes(t, b), mem.Layer) {
		t.Fatalf("packed to a file: %s, in memory: %s", b.Digest(), mem.Digest())
	}
	if err := b.Verify(); err != nil {
		t.Fatal(err)
	}
	tree, err := b.Tree(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(treeMap(tree), treeMap(sampleTree(t))) {
		t.Error("the tree read back from the layer file differs")
	}

	out := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(out, b, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLayout(out, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != mem.Digest() || !bytes.Equal(layerBytes(t, got), mem.Layer) {
		t.Fatalf("layout written from a layer file reads back as %s", got.Digest())
	}
	// A layout's blob is not the bundle's to remove.
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(got.LayerFile); err != nil {
		t.Fatalf("Close of a bundle read from a layout removed its blob: %v", err)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if left := listDir(t, dir); len(left) != 0 {
		t.Errorf("after Close the layer directory holds %q, want nothing", left)
	}
}

// A layer file changed after packing is refused by Verify and by
// WriteLayout, which leaves no layout behind.
func TestLayerFileChanged(t *testing.T) {
	b, err := PackWith(sampleTree(t), sampleMetadata, PackOptions{LayerDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data := layerBytes(t, b)
	data[len(data)/2] ^= 1
	if err := os.WriteFile(b.LayerFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var dm *DigestMismatchError
	if err := b.Verify(); !errors.As(err, &dm) || dm.Blob != "layer" {
		t.Fatalf("Verify of a changed layer file = %v, want a layer *DigestMismatchError", err)
	}
	parent := t.TempDir()
	if err := WriteLayout(filepath.Join(parent, "out"), b); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("WriteLayout = %v, want ErrDigestMismatch", err)
	}
	if left := listDir(t, parent); len(left) != 0 {
		t.Errorf("a refused WriteLayout left %q", left)
	}
}

// SpoolBlob keeps a blob that matches its descriptor and leaves nothing
// for one that does not.
func TestSpoolBlob(t *testing.T) {
	body := []byte("layer bytes")
	good := ocispec.Descriptor{Digest: digest.FromBytes(body), Size: int64(len(body))}
	for _, tc := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"same", body, true},
		{"one byte changed", []byte("layer bytez"), false},
		{"short", body[:4], false},
		{"long", append(bytes.Clone(body), '!'), false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			name, err := SpoolBlob(dir, "layer", bytes.NewReader(tc.data), good)
			if !tc.ok {
				if !errors.Is(err, ErrDigestMismatch) {
					t.Fatalf("SpoolBlob = %q, %v; want ErrDigestMismatch", name, err)
				}
				if left := listDir(t, dir); len(left) != 0 {
					t.Fatalf("a refused blob left %q", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(name); !bytes.Equal(got, body) || !strings.HasPrefix(filepath.Base(name), ".galley-layer-") {
				t.Fatalf("spooled %q to %s", got, name)
			}
		})
	}
}
