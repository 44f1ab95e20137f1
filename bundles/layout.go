package bundles

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tagPattern is the tag grammar of the OCI distribution spec.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// maxIndexSize bounds index.json and oci-layout when reading a layout.
const maxIndexSize = 4 << 20

// WriteLayout writes b as an OCI image layout in dir: oci-layout,
// index.json and blobs/<alg>/<hex> for the manifest, config and layer.
// index.json lists the manifest once per tag, sorted, with the tag in
// org.opencontainers.image.ref.name, or once without annotations when there
// are no tags; its bytes depend only on b and the set of tags.
//
// The layout is built in a new directory beside dir and then renamed into
// place. If dir exists it must be empty or an OCI image layout (holding
// only oci-layout, index.json, blobs and oras's ingest directory); anything
// else is refused with ErrRefuseOverwrite and left untouched.
func WriteLayout(dir string, b *Bundle, tags ...string) error {
	if err := b.Verify(); err != nil {
		return fmt.Errorf("writing layout %s: %w", dir, err)
	}
	index, err := layoutIndex(b, tags)
	if err != nil {
		return fmt.Errorf("writing layout %s: %w", dir, err)
	}
	dir = filepath.Clean(dir)
	if err := checkReplaceableLayout(dir); err != nil {
		return err
	}
	tmp, err := mkdirTemp(dir, "layout", dirMode)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	layoutFile, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}
	// The layer streams from its file when it has one, checked again on
	// the way: a file changed since the bundle was made is caught here.
	layer, err := b.OpenLayer()
	if err != nil {
		return fmt.Errorf("writing layout %s: %w", dir, err)
	}
	defer layer.Close()
	layerPath := filepath.Join(tmp, filepath.FromSlash(blobPath(b.LayerDescriptor.Digest)))
	if err := writeFileSyncFrom(layerPath, func(w io.Writer) error {
		return CopyVerified(w, layer, "layer", b.LayerDescriptor)
	}); err != nil {
		return fmt.Errorf("writing layout %s: %w", dir, err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{blobPath(b.Descriptor.Digest), b.Manifest},
		{blobPath(emptyConfigDescriptor.Digest), b.Config},
		// The index and oci-layout last: a reader that sees them can
		// find every blob.
		{ocispec.ImageIndexFile, index},
		{ocispec.ImageLayoutFile, layoutFile},
	}
	for _, f := range files {
		if err := writeFileSync(filepath.Join(tmp, filepath.FromSlash(f.name)), f.data); err != nil {
			return fmt.Errorf("writing layout %s: %w", dir, err)
		}
	}
	if err := replaceDir(tmp, dir, checkReplaceableLayout); err != nil {
		return err
	}
	done = true
	return nil
}

func layoutIndex(b *Bundle, tags []string) ([]byte, error) {
	tags = slices.Clone(tags)
	slices.Sort(tags)
	tags = slices.Compact(tags)
	desc := manifestDescriptor(b.Manifest)
	var manifests []ocispec.Descriptor
	for _, tag := range tags {
		if !tagPattern.MatchString(tag) {
			return nil, fmt.Errorf("invalid tag %q: want letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'", tag)
		}
		d := desc
		d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
		manifests = append(manifests, d)
	}
	if len(manifests) == 0 {
		manifests = []ocispec.Descriptor{desc}
	}
	return json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	})
}

// blobPath is the slash-separated path of a blob inside a layout.
func blobPath(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func writeFileSync(name string, data []byte) error {
	return writeFileSyncFrom(name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileSyncFrom creates name with what write writes, and syncs it.
func writeFileSyncFrom(name string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(name), dirMode); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	// Sync so that after the rename the layout is complete on disk, not
	// merely named.
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkReplaceableLayout accepts a missing or empty directory, or one that
// holds an OCI image layout and nothing else.
func checkReplaceableLayout(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := checkIsDir(dir, fi); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	refuse := func(why string) error {
		return fmt.Errorf("%w %s: %s; remove it or choose another directory", ErrRefuseOverwrite, dir, why)
	}
	hasLayoutFile := false
	for _, e := range entries {
		switch name, isDir := e.Name(), e.Type().IsDir(); {
		case name == ocispec.ImageLayoutFile && e.Type().IsRegular():
			hasLayoutFile = true
		case name == ocispec.ImageIndexFile && e.Type().IsRegular():
		case (name == ocispec.ImageBlobsDir || name == "ingest") && isDir:
		default:
			return refuse(fmt.Sprintf("it is not an OCI image layout (it holds %q)", name))
		}
	}
	if !hasLayoutFile {
		return refuse("it is not an OCI image layout (no oci-layout file)")
	}
	if err := readLayoutFile(os.DirFS(dir)); err != nil {
		return refuse(err.Error())
	}
	return nil
}

// ReadLayout reads a bundle from the OCI image layout in dir. ref is a tag
// (matched against org.opencontainers.image.ref.name), a digest, or "" for
// the only manifest in the index. Every blob is checked against its digest
// and size (*DigestMismatchError) and the manifest with Validate
// (ErrNotBundle). Blobs are read through an os.Root, so symlinks cannot
// lead outside dir.
func ReadLayout(dir, ref string) (*Bundle, error) {
	b, err := readLayout(dir, ref)
	if err != nil {
		if ref == "" {
			return nil, fmt.Errorf("reading layout %s: %w", dir, err)
		}
		return nil, fmt.Errorf("reading %s from layout %s: %w", ref, dir, err)
	}
	return b, nil
}

func readLayout(dir, ref string) (*Bundle, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	fsys := root.FS()
	if err := readLayoutFile(fsys); err != nil {
		return nil, err
	}
	indexData, err := readAtMost(fsys, ocispec.ImageIndexFile, maxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotLayout, err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(indexData, &index); err != nil {
		return nil, fmt.Errorf("%w: decoding index.json: %w", ErrNotLayout, err)
	}
	if index.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: index.json schemaVersion is %d, want 2", ErrNotLayout, index.SchemaVersion)
	}
	desc, err := resolve(fsys, index.Manifests, ref)
	if err != nil {
		return nil, err
	}
	if desc.MediaType != ManifestMediaType {
		return nil, fmt.Errorf("%w: %s has mediaType %q, want %q", ErrNotBundle, desc.Digest, desc.MediaType, ManifestMediaType)
	}
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest %s is %d bytes, limit is %d", ErrNotBundle, desc.Digest, desc.Size, MaxManifestSize)
	}
	manifest, err := readBlob(fsys, "manifest", desc)
	if err != nil {
		return nil, err
	}
	m, err := Validate(manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	config, err := readBlob(fsys, "config", m.Config)
	if err != nil {
		return nil, err
	}
	if m.Layers[0].Size > MaxLayerSize {
		return nil, fmt.Errorf("%w: layer %s is %d bytes, limit is %d", ErrLimitExceeded, m.Layers[0].Digest, m.Layers[0].Size, MaxLayerSize)
	}
	if err := checkBlob(fsys, "layer", m.Layers[0]); err != nil {
		return nil, err
	}
	return &Bundle{
		Manifest:        manifest,
		Descriptor:      manifestDescriptor(manifest),
		Config:          config,
		LayerFile:       filepath.Join(dir, filepath.FromSlash(blobPath(m.Layers[0].Digest))),
		LayerDescriptor: ocispec.Descriptor{MediaType: LayerMediaType, Digest: m.Layers[0].Digest, Size: m.Layers[0].Size},
	}, nil
}

// readLayoutFile checks the oci-layout file of a layout.
func readLayoutFile(fsys fs.FS) error {
	data, err := readAtMost(fsys, ocispec.ImageLayoutFile, maxIndexSize)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotLayout, err)
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("%w: decoding oci-layout: %w", ErrNotLayout, err)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("%w: oci-layout imageLayoutVersion is %q, want %q", ErrNotLayout, l.Version, ocispec.ImageLayoutVersion)
	}
	return nil
}

// resolve finds the manifest descriptor ref names in an index.
func resolve(fsys fs.FS, manifests []ocispec.Descriptor, ref string) (ocispec.Descriptor, error) {
	var found []ocispec.Descriptor
	add := func(d ocispec.Descriptor) {
		if !slices.ContainsFunc(found, func(f ocispec.Descriptor) bool { return f.Digest == d.Digest }) {
			found = append(found, d)
		}
	}
	isDigest := strings.Contains(ref, ":")
	for _, d := range manifests {
		switch {
		case ref == "",
			isDigest && d.Digest.String() == ref,
			!isDigest && d.Annotations[ocispec.AnnotationRefName] == ref:
			add(d)
		}
	}
	switch {
	case len(found) == 1:
		if err := found[0].Digest.Validate(); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%w: index.json digest %q: %w", ErrNotLayout, found[0].Digest, err)
		}
		return found[0], nil
	case len(found) > 1 && ref == "":
		return ocispec.Descriptor{}, fmt.Errorf("index.json lists %d manifests; name one by tag or digest", len(found))
	case len(found) > 1:
		return ocispec.Descriptor{}, fmt.Errorf("%w: tag %q names %d different manifests in index.json", ErrNotLayout, ref, len(found))
	case ref == "":
		return ocispec.Descriptor{}, fmt.Errorf("%w: index.json lists no manifests", ErrNotFound)
	case isDigest:
		// The index lists entry points only; a digest may still name a
		// manifest stored in blobs/. Read it to learn its size.
		d, err := digest.Parse(ref)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("invalid digest %q: %w", ref, err)
		}
		fi, err := fs.Stat(fsys, blobPath(d))
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%w: no manifest %s in index.json or blobs", ErrNotFound, d)
		}
		return ocispec.Descriptor{MediaType: ManifestMediaType, Digest: d, Size: fi.Size()}, nil
	default:
		return ocispec.Descriptor{}, fmt.Errorf("%w: no tag %q in index.json", ErrNotFound, ref)
	}
}

// readBlob reads a blob and checks it against desc.
func readBlob(fsys fs.FS, what string, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s digest %q: %w", ErrNotBundle, what, desc.Digest, err)
	}
	name := blobPath(desc.Digest)
	data, err := readAtMost(fsys, name, desc.Size)
	if errors.Is(err, ErrLimitExceeded) {
		// Report the real size without reading a blob that may be huge.
		got := desc.Size + 1
		if fi, err := fs.Stat(fsys, name); err == nil {
			got = fi.Size()
		}
		return nil, &DigestMismatchError{Blob: what, Want: desc.Digest, WantSize: desc.Size, GotSize: got}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s blob: %w", what, err)
	}
	if err := verifyBlob(what, desc, data); err != nil {
		return nil, err
	}
	return data, nil
}

// checkBlob checks a blob against desc by streaming it through a hash:
// the layer, which may be large, is not loaded.
func checkBlob(fsys fs.FS, what string, desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: %s digest %q: %w", ErrNotBundle, what, desc.Digest, err)
	}
	f, err := fsys.Open(blobPath(desc.Digest))
	if err != nil {
		return fmt.Errorf("reading %s blob: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s blob: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("reading %s blob: %s is not a regular file", what, blobPath(desc.Digest))
	}
	if fi.Size() != desc.Size {
		// Report the real size without reading a blob that may be huge.
		return &DigestMismatchError{Blob: what, Want: desc.Digest, WantSize: desc.Size, GotSize: fi.Size()}
	}
	return CopyVerified(io.Discard, f, what, desc)
}

// readAtMost reads a whole file, failing with ErrLimitExceeded if it holds
// more than limit bytes.
func readAtMost(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(&limitedReader{r: f, what: name + " is", limit: limit})
	if err != nil {
		return nil, err
	}
	return data, nil
}
