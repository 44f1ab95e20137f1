package airgap

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// Annotation keys of the archive's index.json entries, and of a relocated
// bundle's manifest.
const (
	// AnnotationKind says what an entry is: KindBundle, KindSignature,
	// KindReferrer or KindImage.
	AnnotationKind = "dev.galley.airgap.kind"
	// AnnotationRepository is the repository a bundle was exported from,
	// host/path.
	AnnotationRepository = "dev.galley.airgap.repository"
	// AnnotationSubject is the bundle digest a signature or referrer is
	// for.
	AnnotationSubject = "dev.galley.airgap.subject"
	// AnnotationImage is an image reference exactly as bundle.json writes
	// it.
	AnnotationImage = "dev.galley.airgap.image"
	// AnnotationSourceDigest is the digest of the multi-arch index an
	// image entry was cut down from (ExportOptions.Platforms).
	AnnotationSourceDigest = "dev.galley.airgap.source-digest"
	// AnnotationContainerdName is the image name containerd and docker
	// load an OCI archive under.
	AnnotationContainerdName = "io.containerd.image.name"

	// AnnotationRelocatedFrom, on a relocated bundle's manifest, is the
	// digest of the bundle it was rewritten from.
	AnnotationRelocatedFrom = "dev.galley.relocated-from"
	// AnnotationRelocatedFromRepository is the repository that bundle
	// was exported from.
	AnnotationRelocatedFromRepository = "dev.galley.relocated-from.repository"
)

// Values of AnnotationKind.
const (
	KindBundle    = "bundle"
	KindSignature = "signature"
	KindReferrer  = "referrer"
	KindImage     = "image"
)

// ExportOptions tune Export.
type ExportOptions struct {
	// WithImages adds every image listed in the bundle's bundle.json.
	WithImages bool
	// Platforms, when set, keeps only these platforms of multi-arch
	// images. Each index is replaced by one listing those platforms (and
	// their attestations): a new digest, which the relocated bundle pins.
	// Single-platform images are kept as they are.
	Platforms []Platform
}

// ExportResult says what Export wrote.
type ExportResult struct {
	// Bundle is the exported bundle, pinned by digest.
	Bundle registry.Reference `json:"-"`
	Tags   []string           `json:"tags"`
	// Signatures counts the cosign signatures of the bundle carried along
	// (layers of its .sig manifest); Referrers its OCI 1.1 referrers.
	Signatures int             `json:"signatures"`
	Referrers  int             `json:"referrers"`
	Images     []ExportedImage `json:"images"`
	// Blobs counts the blobs written, each once; Bytes is the file size.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
}

// ExportedImage is one image of an export.
type ExportedImage struct {
	// Ref is the reference as bundle.json writes it.
	Ref       string        `json:"ref"`
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	// SourceDigest is the multi-arch index Digest was cut down from.
	SourceDigest digest.Digest `json:"sourceDigest,omitempty"`
	// Platforms lists the platforms of a multi-arch image.
	Platforms []string `json:"platforms,omitempty"`
}

// Export writes the bundle ref names, with its cosign signatures and OCI
// referrers and, with o.WithImages, every image its bundle.json lists, to
// the file out as an OCI image layout tar (see the package documentation).
// Blobs stream from the registries to the file, each read once and checked
// against its digest, so memory does not grow with the images' size. The
// file is written beside out under a temporary name and renamed into place
// at the end: a failed or interrupted export leaves nothing, and running it
// again starts over. An existing regular file at out is replaced.
func (c *Client) Export(ctx context.Context, ref registry.Reference, out string, o ExportOptions) (*ExportResult, error) {
	res, err := c.export(ctx, ref, out, o)
	if err != nil {
		return nil, &registry.Error{Op: "export", Ref: ref.Name(), Err: err}
	}
	return res, nil
}

func (c *Client) export(ctx context.Context, ref registry.Reference, out string, o ExportOptions) (*ExportResult, error) {
	if fi, err := os.Stat(out); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s: it is not a regular file", bundles.ErrRefuseOverwrite, out)
	}
	b, err := c.reg.Pull(ctx, ref)
	if err != nil {
		return nil, err
	}
	res := &ExportResult{Bundle: ref.WithDigest(b.Digest()), Images: []ExportedImage{}}
	if ref.Tag != "" {
		res.Tags = []string{ref.Tag}
	}
	var images []imageRef
	if o.WithImages {
		tree, err := b.Tree(bundles.DefaultLimits)
		if err != nil {
			return nil, fmt.Errorf("reading the bundle: %w", err)
		}
		idx, err := bundles.ReadIndex(tree)
		if err != nil {
			return nil, err
		}
		// Parse them all before writing anything.
		for _, s := range idx.Images {
			im, err := parseImage(s)
			if err != nil {
				return nil, fmt.Errorf("%s lists an invalid %w", bundles.IndexPath, err)
			}
			images = append(images, im)
		}
	}

	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", out, err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := newLayoutWriter(f, c)
	if err := w.writeFile(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
		return nil, err
	}

	// The bundle, its signatures and referrers.
	m, err := bundles.Validate(b.Manifest)
	if err != nil {
		return nil, err
	}
	for _, blob := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{m.Config, b.Config}, {m.Layers[0], b.Layer}, {b.Descriptor, b.Manifest}} {
		if err := w.writeBlob(blob.desc, blob.data); err != nil {
			return nil, err
		}
	}
	bundleEntry := func(tag string) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: b.Descriptor.MediaType, ArtifactType: b.Descriptor.ArtifactType, Digest: b.Digest(), Size: b.Descriptor.Size,
			Annotations: map[string]string{AnnotationKind: KindBundle, AnnotationRepository: ref.Repo()}}
		if tag != "" {
			d.Annotations[ocispec.AnnotationRefName] = tag
		}
		return d
	}
	if len(res.Tags) == 0 {
		w.entries = append(w.entries, bundleEntry(""))
	}
	for _, t := range res.Tags {
		w.entries = append(w.entries, bundleEntry(t))
	}
	rem := c.remotes(ref.Registry)
	repo, err := rem.repository(ref)
	if err != nil {
		return nil, err
	}
	if res.Signatures, err = w.copySignature(ctx, repo, b.Descriptor); err != nil {
		return nil, err
	}
	if res.Referrers, err = w.copyReferrers(ctx, repo, b.Descriptor); err != nil {
		return nil, err
	}

	for _, im := range images {
		e, err := w.copyImage(ctx, rem, im, o.Platforms)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Original, err)
		}
		res.Images = append(res.Images, *e)
	}

	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: w.entries,
	})
	if err != nil {
		return nil, err
	}
	if err := w.writeFile(ocispec.ImageIndexFile, index); err != nil {
		return nil, err
	}
	if err := w.tw.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	// Sync before the rename, so the name never points at a file the
	// disk does not hold yet.
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	done = true
	res.Blobs, res.Bytes = len(w.written), fi.Size()
	return res, nil
}

// layoutWriter writes an OCI image layout as a tar stream, each blob once.
type layoutWriter struct {
	tw      *tar.Writer
	c       *Client
	written map[digest.Digest]bool
	dirs    map[string]bool
	entries []ocispec.Descriptor
}

func newLayoutWriter(w io.Writer, c *Client) *layoutWriter {
	return &layoutWriter{tw: tar.NewWriter(w), c: c, written: map[digest.Digest]bool{}, dirs: map[string]bool{}}
}

// epoch is the modification time of every entry: the tar depends on its
// content only.
var epoch = time.Unix(0, 0).UTC()

func (w *layoutWriter) header(name string, size int64) error {
	for _, d := range []string{path.Dir(path.Dir(name)), path.Dir(name)} {
		if d == "." || w.dirs[d] {
			continue
		}
		w.dirs[d] = true
		if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	return w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: epoch})
}

func (w *layoutWriter) writeFile(name string, data []byte) error {
	if err := w.header(name, int64(len(data))); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

func blobName(d digest.Digest) string {
	return path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

// writeBlob writes a blob held in memory, once.
func (w *layoutWriter) writeBlob(desc ocispec.Descriptor, data []byte) error {
	if w.written[desc.Digest] {
		return nil
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest || int64(len(data)) != desc.Size {
		return &bundles.DigestMismatchError{Blob: "blob", Want: desc.Digest, Got: got, WantSize: desc.Size, GotSize: int64(len(data))}
	}
	if err := w.writeFile(blobName(desc.Digest), data); err != nil {
		return err
	}
	w.written[desc.Digest] = true
	return nil
}

// copyBlob streams a blob from repo into the tar, checking it on the way.
func (w *layoutWriter) copyBlob(ctx context.Context, repo *remote.Repository, what string, desc ocispec.Descriptor) error {
	if w.written[desc.Digest] {
		w.c.progress(registry.Progress{Op: "pull", What: what, Digest: desc.Digest, Size: desc.Size, Done: desc.Size, Skipped: true})
		return nil
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s digest %q: %w", what, desc.Digest, err)
	}
	rc, err := repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		return fmt.Errorf("fetching %s %s: %w", what, desc.Digest, err)
	}
	defer rc.Close()
	if err := w.header(blobName(desc.Digest), desc.Size); err != nil {
		return fmt.Errorf("writing %s: %w", blobName(desc.Digest), err)
	}
	r := newVerifyingReader(w.c.progressReader(rc, registry.Progress{Op: "pull", What: what, Digest: desc.Digest, Size: desc.Size}), what, desc)
	if _, err := io.Copy(w.tw, r); err != nil {
		return fmt.Errorf("copying %s %s: %w", what, desc.Digest, err)
	}
	w.written[desc.Digest] = true
	return nil
}

// fetchManifest reads a manifest by descriptor, checked and bounded.
func fetchManifest(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxMetadataSize {
		return nil, fmt.Errorf("manifest %s is %d bytes, limit is %d", desc.Digest, desc.Size, maxMetadataSize)
	}
	rc, err := repo.Manifests().Fetch(ctx, desc)
	if err != nil {
		return nil, fmt.Errorf("fetching manifest %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	return io.ReadAll(newVerifyingReader(rc, "manifest", desc))
}

// resolveManifest fetches the manifest reference names (a tag or digest)
// and checks it against the digest the registry announced.
func resolveManifest(ctx context.Context, repo *remote.Repository, reference string) (ocispec.Descriptor, []byte, error) {
	desc, rc, err := repo.Manifests().FetchReference(ctx, reference)
	if err != nil {
		return desc, nil, err
	}
	defer rc.Close()
	if desc.Size > maxMetadataSize {
		return desc, nil, fmt.Errorf("manifest %s is %d bytes, limit is %d", desc.Digest, desc.Size, maxMetadataSize)
	}
	data, err := io.ReadAll(newVerifyingReader(rc, "manifest", desc))
	return desc, data, err
}

// copyGraph copies the manifest desc (data, when already fetched) and
// everything it references, children first, each blob once.
func (w *layoutWriter) copyGraph(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, data []byte) error {
	if w.written[desc.Digest] {
		return nil
	}
	if !isManifest(desc.MediaType) {
		return w.copyBlob(ctx, repo, what(desc), desc)
	}
	if data == nil {
		var err error
		if data, err = fetchManifest(ctx, repo, desc); err != nil {
			return err
		}
	}
	children, err := successors(desc.MediaType, data)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	for _, ch := range children {
		if err := w.copyGraph(ctx, repo, ch, nil); err != nil {
			return err
		}
	}
	return w.writeBlob(desc, data)
}

// copySignature copies the cosign signature manifest of the bundle (tag
// sha256-<hex>.sig), which referrers-based copies miss, and returns how
// many signatures it holds.
func (w *layoutWriter) copySignature(ctx context.Context, repo *remote.Repository, bundle ocispec.Descriptor) (int, error) {
	tag := sign.SignatureTag(bundle.Digest)
	desc, data, err := resolveManifest(ctx, repo, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the signatures (tag %s): %w", tag, err)
	}
	if err := w.copyGraph(ctx, repo, desc, data); err != nil {
		return 0, fmt.Errorf("copying the signatures (tag %s): %w", tag, err)
	}
	desc.Annotations = map[string]string{AnnotationKind: KindSignature, AnnotationSubject: bundle.Digest.String(), ocispec.AnnotationRefName: tag}
	w.entries = append(w.entries, desc)
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, fmt.Errorf("decoding the signature manifest: %w", err)
	}
	n := 0
	for _, l := range m.Layers {
		if _, ok := l.Annotations[sign.SignatureAnnotation]; ok {
			n++
		}
	}
	return n, nil
}

// copyReferrers copies the OCI 1.1 referrers of the bundle (through the
// referrers API, or the tag schema on registries without it).
func (w *layoutWriter) copyReferrers(ctx context.Context, repo *remote.Repository, bundle ocispec.Descriptor) (int, error) {
	var refs []ocispec.Descriptor
	err := repo.Referrers(ctx, ocispec.Descriptor{MediaType: bundle.MediaType, Digest: bundle.Digest, Size: bundle.Size}, "", func(rs []ocispec.Descriptor) error {
		refs = append(refs, rs...)
		return nil
	})
	if err != nil && !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, errdef.ErrUnsupported) {
		return 0, fmt.Errorf("listing referrers: %w", err)
	}
	for _, r := range refs {
		if !isManifest(r.MediaType) {
			continue
		}
		if err := w.copyGraph(ctx, repo, r, nil); err != nil {
			return 0, fmt.Errorf("copying referrer %s: %w", r.Digest, err)
		}
		e := ocispec.Descriptor{MediaType: r.MediaType, ArtifactType: r.ArtifactType, Digest: r.Digest, Size: r.Size,
			Annotations: map[string]string{AnnotationKind: KindReferrer, AnnotationSubject: bundle.Digest.String()}}
		w.entries = append(w.entries, e)
	}
	return len(refs), nil
}

// copyImage copies one image, cutting a multi-arch index down to
// platforms when given.
func (w *layoutWriter) copyImage(ctx context.Context, rem *remotes, im imageRef, platforms []Platform) (*ExportedImage, error) {
	src := im.source()
	repo, err := rem.repository(src)
	if err != nil {
		return nil, err
	}
	reference := src.Tag
	if src.Digest != "" {
		reference = src.Digest.String()
	}
	desc, data, err := resolveManifest(ctx, repo, reference)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", src.Name(), err)
	}
	if src.Digest != "" && desc.Digest != src.Digest {
		return nil, fmt.Errorf("asked for %s, the registry answered with %s", src.Digest, desc.Digest)
	}
	if !isManifest(desc.MediaType) {
		return nil, fmt.Errorf("%w: media type %q", ErrUnsupported, desc.MediaType)
	}
	e := &ExportedImage{Ref: im.Original, Digest: desc.Digest, MediaType: desc.MediaType}
	entry := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Annotations: map[string]string{
		AnnotationKind:           KindImage,
		AnnotationImage:          im.Original,
		AnnotationContainerdName: im.name(),
	}}
	if isIndex(desc.MediaType) && len(platforms) > 0 {
		filtered, children, err := filterIndex(data, platforms)
		if err != nil {
			return nil, err
		}
		for _, ch := range children {
			if err := w.copyGraph(ctx, repo, ch, nil); err != nil {
				return nil, err
			}
		}
		nd := ocispec.Descriptor{MediaType: desc.MediaType, Digest: digest.FromBytes(filtered), Size: int64(len(filtered))}
		if err := w.writeBlob(nd, filtered); err != nil {
			return nil, err
		}
		e.SourceDigest, e.Digest = desc.Digest, nd.Digest
		entry.Digest, entry.Size = nd.Digest, nd.Size
		entry.Annotations[AnnotationSourceDigest] = desc.Digest.String()
		// The name no longer carries the original digest.
		named := im
		named.Digest = ""
		entry.Annotations[AnnotationContainerdName] = named.name()
		data = filtered
	} else if err := w.copyGraph(ctx, repo, desc, data); err != nil {
		return nil, err
	}
	if isIndex(desc.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err == nil {
			for _, m := range idx.Manifests {
				if m.Annotations[buildkitReferenceType] == "" {
					e.Platforms = append(e.Platforms, platformString(m.Platform))
				}
			}
		}
	}
	w.entries = append(w.entries, entry)
	return e, nil
}
