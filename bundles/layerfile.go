package bundles

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A layer may be as large as MaxLayerSize, so the paths that move bundles
// (pack to a layout, read a layout, push, pull, export) keep it in a file
// and stream it: memory stays flat in the bundle's size. Bundle.Layer, the
// bytes in memory, remains for bundles packed in memory, whose tree is in
// memory anyway.

// OpenLayer opens the compressed layer: LayerFile when set, else Layer.
func (b *Bundle) OpenLayer() (io.ReadCloser, error) {
	if b.LayerFile == "" {
		return io.NopCloser(bytes.NewReader(b.Layer)), nil
	}
	f, err := os.Open(b.LayerFile)
	if err != nil {
		return nil, fmt.Errorf("opening the layer: %w", err)
	}
	return f, nil
}

// Close removes the layer file when the bundle owns it (TempLayer: made by
// PackWith with LayerDir, or by a streamed pull). A layout's blob is left
// alone. Close is safe to call more than once and on in-memory bundles.
func (b *Bundle) Close() error {
	if !b.TempLayer || b.LayerFile == "" {
		return nil
	}
	err := os.Remove(b.LayerFile)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	b.TempLayer = false
	return err
}

// verifyLayer checks the layer, wherever it is held, against desc.
func (b *Bundle) verifyLayer(desc ocispec.Descriptor) error {
	if b.LayerFile == "" {
		return verifyBlob("layer", desc, b.Layer)
	}
	r, err := b.OpenLayer()
	if err != nil {
		return err
	}
	defer r.Close()
	return CopyVerified(io.Discard, r, "layer", desc)
}

// CopyVerified copies at most desc.Size+1 bytes of r to w and checks them
// against desc: a reader with more, fewer or other bytes than desc
// describes gives a *DigestMismatchError, after the bytes went to w (write
// to a temporary file and drop it on error: see SpoolBlob).
func CopyVerified(w io.Writer, r io.Reader, what string, desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s digest %q: %w", what, desc.Digest, err)
	}
	h := desc.Digest.Algorithm().Hash()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, desc.Size+1))
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", what, desc.Digest, err)
	}
	got := digest.NewDigest(desc.Digest.Algorithm(), h)
	if n != desc.Size || got != desc.Digest {
		return &DigestMismatchError{Blob: what, Want: desc.Digest, Got: got, WantSize: desc.Size, GotSize: n}
	}
	return nil
}

// SpoolBlob copies r into a new temporary file in dir ("" for the system's
// temporary directory), checking it against desc while it streams, and
// returns the file's name. On any failure, a digest mismatch included, the
// file is removed: nothing unchecked is left behind.
func SpoolBlob(dir, what string, r io.Reader, desc ocispec.Descriptor) (string, error) {
	f, err := os.CreateTemp(dir, ".galley-"+what+"-*")
	if err != nil {
		return "", fmt.Errorf("creating a file for the %s: %w", what, err)
	}
	name := f.Name()
	err = CopyVerified(f, r, what, desc)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the %s to %s: %w", what, name, cerr)
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// writeLayerFile writes t's layer (WriteTar) to a new temporary file in
// dir, hashing it on the way, and returns the file's name and descriptor.
func writeLayerFile(dir string, t *Tree) (string, ocispec.Descriptor, error) {
	f, err := os.CreateTemp(dir, ".galley-layer-*")
	if err != nil {
		return "", ocispec.Descriptor{}, fmt.Errorf("creating the layer file: %w", err)
	}
	name := f.Name()
	d := digest.Canonical.Digester()
	// flate hands its output over in small pieces: buffer them into
	// fewer writes.
	bw := bufio.NewWriterSize(f, 1<<16)
	cw := &countingWriter{w: io.MultiWriter(bw, d.Hash())}
	err = WriteTar(cw, t)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing the layer file %s: %w", name, cerr)
	}
	if err != nil {
		_ = os.Remove(name)
		return "", ocispec.Descriptor{}, err
	}
	return name, ocispec.Descriptor{MediaType: LayerMediaType, Digest: d.Digest(), Size: cw.n}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
