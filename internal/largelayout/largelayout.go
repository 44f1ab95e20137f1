// Package largelayout writes an OCI image layout holding one galley bundle
// whose layer is as large as galley accepts (1 GiB of files), for the
// benchmarks that check memory stays flat in a bundle's size
// (registry.BenchmarkLargeLayer, `make bench`). The layer is streamed to
// disk: writing it costs no more memory than reading it should.
package largelayout

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles"
)

// Files and FileSize shape the layer: FileSize is DefaultLimits'
// MaxFileSize and Files of them add up to its MaxTotalSize, so the bundle
// is the largest a pull unpacks by default.
const (
	Files    = 16
	FileSize = 64 << 20
)

// Write writes the layout to dir (which must not exist) and returns the
// layer's descriptor. The files are pseudo-random, so incompressible: the
// layer is stored, not compressed (about 1 GiB + 80 KiB), and the same
// bytes every time.
func Write(dir string) (ocispec.Descriptor, error) {
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return ocispec.Descriptor{}, err
	}
	layer, err := writeLayer(blobs)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("writing the layer: %w", err)
	}
	config := []byte("{}")
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    bundles.ManifestMediaType,
		ArtifactType: bundles.ArtifactType,
		Config:       ocispec.Descriptor{MediaType: bundles.ConfigMediaType, Digest: digest.FromBytes(config), Size: int64(len(config))},
		Layers:       []ocispec.Descriptor{layer},
		Annotations:  map[string]string{ocispec.AnnotationCreated: "1970-01-01T00:00:00Z", ocispec.AnnotationTitle: "large"},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md := ocispec.Descriptor{MediaType: bundles.ManifestMediaType, ArtifactType: bundles.ArtifactType, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	index, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for name, data := range map[string][]byte{
		filepath.Join(blobs, digest.FromBytes(config).Encoded()): config,
		filepath.Join(blobs, md.Digest.Encoded()):                manifest,
		filepath.Join(dir, ocispec.ImageIndexFile):               index,
		filepath.Join(dir, ocispec.ImageLayoutFile):              []byte(`{"imageLayoutVersion":"` + ocispec.ImageLayoutVersion + `"}`),
	} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return layer, nil
}

func writeLayer(blobs string) (ocispec.Descriptor, error) {
	f, err := os.CreateTemp(blobs, "layer-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	defer f.Close()
	h := digest.Canonical.Digester()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h.Hash()), 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.NoCompression)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	tw := tar.NewWriter(gz)
	rng := rand.NewChaCha8([32]byte{'g', 'a', 'l', 'l', 'e', 'y'})
	buf := make([]byte, 1<<20)
	for i := range Files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("data/file%02d.bin", i), Size: FileSize, Mode: 0o644}); err != nil {
			return ocispec.Descriptor{}, err
		}
		for n := 0; n < FileSize; n += len(buf) {
			_, _ = rng.Read(buf)
			if _, err := tw.Write(buf); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
	}
	for _, close := range []func() error{tw.Close, gz.Close, bw.Flush} {
		if err := close(); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{MediaType: bundles.LayerMediaType, Digest: h.Digest(), Size: fi.Size()}
	if err := os.Rename(f.Name(), filepath.Join(blobs, d.Digest.Encoded())); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}
