package airgap

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/galley-dev/galley/bundles"
)

// maxMetadataSize bounds what is read into memory from an archive or a
// registry: index.json, oci-layout and each manifest.
const maxMetadataSize = 4 << 20

// Archive is an export file opened for reading. OpenArchive has checked
// every blob against its digest and that every manifest listed in
// index.json has all it references, so a damaged or tampered file is
// refused before anything reads from it. Blobs are read in place from the
// file, never loaded whole. It implements oras's content.ReadOnlyStorage.
type Archive struct {
	f     *os.File
	path  string
	index ocispec.Index
	blobs map[digest.Digest]blobEntry
}

var _ content.ReadOnlyStorage = (*Archive)(nil)

// blobEntry is where a blob's bytes are in the tar file.
type blobEntry struct {
	offset, size int64
}

// OpenArchive opens and checks the export file at name: a tar of an OCI
// image layout (entries may start with "./"). It reads the whole file once,
// hashing every blob, and fails with ErrCorrupt (and a
// *bundles.DigestMismatchError for a blob whose content does not match its
// name) when anything is wrong: nothing has been trusted yet at that point.
// The file must stay unchanged while the Archive is open; every read checks
// the digest again.
func OpenArchive(name string) (*Archive, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening archive: %w", err)
	}
	a := &Archive{f: f, path: name, blobs: map[digest.Digest]blobEntry{}}
	if err := a.scan(); err != nil {
		f.Close()
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	if err := a.checkGraph(); err != nil {
		f.Close()
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	return a, nil
}

// Close closes the file.
func (a *Archive) Close() error { return a.f.Close() }

// Manifests returns the entries of index.json: what the archive was made
// for, with their AnnotationKind.
func (a *Archive) Manifests() []ocispec.Descriptor { return a.index.Manifests }

// Exists reports whether the archive holds the blob desc names with its
// size.
func (a *Archive) Exists(_ context.Context, desc ocispec.Descriptor) (bool, error) {
	e, ok := a.blobs[desc.Digest]
	return ok && e.size == desc.Size, nil
}

// Fetch returns the blob desc names, read from the file and checked again
// against the digest as it is read: the last Read fails with a
// *bundles.DigestMismatchError should the file have changed since
// OpenArchive.
func (a *Archive) Fetch(_ context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	e, ok := a.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("%s: %w in archive %s", desc.Digest, errdef.ErrNotFound, a.path)
	}
	if e.size != desc.Size {
		return nil, fmt.Errorf("%s: descriptor says %d bytes, archive %s holds %d: %w", desc.Digest, desc.Size, a.path, e.size, ErrCorrupt)
	}
	return io.NopCloser(newVerifyingReader(io.NewSectionReader(a.f, e.offset, e.size), "blob", desc)), nil
}

// readBlob reads a small blob (a manifest, a config, a payload) whole.
func (a *Archive) readBlob(desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size > limit {
		return nil, fmt.Errorf("%s %s is %d bytes, limit is %d: %w", desc.MediaType, desc.Digest, desc.Size, limit, ErrCorrupt)
	}
	rc, err := a.Fetch(context.Background(), desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// scan reads the tar once: oci-layout and index.json into memory, every
// blob hashed and its offset recorded.
func (a *Archive) scan() error {
	cr := &countingReader{r: a.f}
	tr := tar.NewReader(cr)
	var layoutFile, indexFile []byte
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: reading tar: %w", ErrCorrupt, err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if seen[name] {
			return fmt.Errorf("%w: entry %q appears twice", ErrCorrupt, hdr.Name)
		}
		seen[name] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if name != "." && name != ocispec.ImageBlobsDir && path.Dir(name) != ocispec.ImageBlobsDir {
				return fmt.Errorf("%w: unexpected directory %q (not an OCI image layout)", ErrCorrupt, hdr.Name)
			}
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("%w: entry %q is not a regular file or directory", ErrCorrupt, hdr.Name)
		}
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return fmt.Errorf("%w: entry %q is a sparse file", ErrCorrupt, hdr.Name)
			}
		}
		switch {
		case name == ocispec.ImageLayoutFile:
			if layoutFile, err = readAtMost(tr, hdr.Size, name); err != nil {
				return err
			}
		case name == ocispec.ImageIndexFile:
			if indexFile, err = readAtMost(tr, hdr.Size, name); err != nil {
				return err
			}
		case path.Dir(path.Dir(name)) == ocispec.ImageBlobsDir:
			d := digest.NewDigestFromEncoded(digest.Algorithm(path.Base(path.Dir(name))), path.Base(name))
			if err := d.Validate(); err != nil {
				return fmt.Errorf("%w: blob %q: %w", ErrCorrupt, hdr.Name, err)
			}
			offset := cr.n
			h := d.Algorithm().Hash()
			n, err := io.Copy(h, tr)
			if err != nil {
				return fmt.Errorf("%w: reading blob %s: %w", ErrCorrupt, d, err)
			}
			if got := digest.NewDigest(d.Algorithm(), h); got != d {
				dm := &bundles.DigestMismatchError{Blob: "blob", Want: d, Got: got, WantSize: n, GotSize: n}
				return fmt.Errorf("%w: %w", ErrCorrupt, dm)
			}
			a.blobs[d] = blobEntry{offset: offset, size: n}
		default:
			return fmt.Errorf("%w: unexpected entry %q (not an OCI image layout)", ErrCorrupt, hdr.Name)
		}
	}
	if layoutFile == nil {
		return fmt.Errorf("%w: no %s (not an OCI image layout tar)", ErrCorrupt, ocispec.ImageLayoutFile)
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(layoutFile, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("%w: %s is not imageLayoutVersion %s", ErrCorrupt, ocispec.ImageLayoutFile, ocispec.ImageLayoutVersion)
	}
	if indexFile == nil {
		return fmt.Errorf("%w: no %s", ErrCorrupt, ocispec.ImageIndexFile)
	}
	if err := json.Unmarshal(indexFile, &a.index); err != nil {
		return fmt.Errorf("%w: decoding %s: %w", ErrCorrupt, ocispec.ImageIndexFile, err)
	}
	if a.index.SchemaVersion != 2 {
		return fmt.Errorf("%w: %s schemaVersion is %d, want 2", ErrCorrupt, ocispec.ImageIndexFile, a.index.SchemaVersion)
	}
	return nil
}

// checkGraph checks that every manifest index.json lists is in the
// archive with everything it references (foreign layers aside, which
// registries do not serve either).
func (a *Archive) checkGraph() error {
	checked := map[digest.Digest]bool{}
	var check func(desc ocispec.Descriptor, from string) error
	check = func(desc ocispec.Descriptor, from string) error {
		if checked[desc.Digest] {
			return nil
		}
		if err := desc.Digest.Validate(); err != nil {
			return fmt.Errorf("%w: %s references digest %q: %w", ErrCorrupt, from, desc.Digest, err)
		}
		e, ok := a.blobs[desc.Digest]
		if !ok {
			return fmt.Errorf("%w: %s references %s, which is not in the archive", ErrCorrupt, from, desc.Digest)
		}
		if e.size != desc.Size {
			return fmt.Errorf("%w: %s says %s is %d bytes, the archive holds %d", ErrCorrupt, from, desc.Digest, desc.Size, e.size)
		}
		checked[desc.Digest] = true
		if !isManifest(desc.MediaType) {
			return nil
		}
		data, err := a.readBlob(desc, maxMetadataSize)
		if err != nil {
			return err
		}
		children, err := successors(desc.MediaType, data)
		if err != nil {
			return fmt.Errorf("%w: manifest %s: %w", ErrCorrupt, desc.Digest, err)
		}
		for _, c := range children {
			if err := check(c, "manifest "+desc.Digest.String()); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range a.index.Manifests {
		if err := check(d, ocispec.ImageIndexFile); err != nil {
			return err
		}
	}
	return nil
}

func readAtMost(r io.Reader, size int64, name string) ([]byte, error) {
	if size > maxMetadataSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit is %d", ErrCorrupt, name, size, maxMetadataSize)
	}
	b, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrCorrupt, name, err)
	}
	return b, nil
}

// countingReader counts the bytes read through it. archive/tar reads
// exactly the header blocks and then the entry data, so after Next the
// count is the offset of the entry's data.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// verifyingReader passes a blob through, and fails the Read that reaches
// its end (or goes past its size) when the bytes do not match the
// descriptor, so a consumer streaming it never completes with wrong
// content.
type verifyingReader struct {
	r    io.Reader
	what string
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
}

func newVerifyingReader(r io.Reader, what string, desc ocispec.Descriptor) *verifyingReader {
	return &verifyingReader{r: io.LimitReader(r, desc.Size+1), what: what, desc: desc, h: desc.Digest.Algorithm().Hash()}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.desc.Size {
		return n, &bundles.DigestMismatchError{Blob: v.what, Want: v.desc.Digest, WantSize: v.desc.Size, GotSize: v.n}
	}
	if errors.Is(err, io.EOF) {
		got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h)
		if v.n != v.desc.Size || got != v.desc.Digest {
			return n, &bundles.DigestMismatchError{Blob: v.what, Want: v.desc.Digest, Got: got, WantSize: v.desc.Size, GotSize: v.n}
		}
	}
	return n, err
}
