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
	// TrustedRoot, when set, is a Sigstore trusted_root.json stored in the
	// archive (see KindTrustedRoot). It must parse; import uses it only
	// when pinned by its sha256.
	TrustedRoot []byte
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
	// TrustedRoot is the sha256 of the trusted root stored, "" for none.
	TrustedRoot digest.Digest `json:"trustedRoot,omitempty"`
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
	rc := c.registry(ref.Registry)
	res, err := export(ctx, rc, ref, out, o)
	if err != nil {
		return nil, rc.Fail("export", ref.Name(), err)
	}
	return res, nil
}

func export(ctx context.Context, rc *registry.Client, ref registry.Reference, out string, o ExportOptions) (*ExportResult, error) {
	if fi, err := os.Stat(out); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s: it is not a regular file", bundles.ErrRefuseOverwrite, out)
	}
	if o.TrustedRoot != nil {
		if _, err := sign.ParseTrustedRoot(o.TrustedRoot); err != nil {
			return nil, err
		}
	}
	// The layer streams to a file beside out, checked as it arrives, then
	// into the archive: memory stays flat in the bundle's size.
	b, err := rc.PullTo(ctx, ref, filepath.Dir(out))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	res := &ExportResult{Bundle: ref.WithDigest(b.Digest()), Images: []ExportedImage{}}
	if ref.Tag != "" {
		res.Tags = []string{ref.Tag}
	}
	var images []registry.Image
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
			im, err := registry.ParseImage(s)
			if err != nil {
				return nil, fmt.Errorf("%s lists a bad image: %w", bundles.IndexPath, err)
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
	w := newLayoutWriter(f, rc)
	if err := w.writeFile(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"`+ocispec.ImageLayoutVersion+`"}`)); err != nil {
		return nil, err
	}

	// The bundle, its signatures and referrers.
	m, err := bundles.Validate(b.Manifest)
	if err != nil {
		return nil, err
	}
	if err := w.writeBlob(m.Config, b.Config); err != nil {
		return nil, err
	}
	if err := w.writeLayer(b); err != nil {
		return nil, err
	}
	if err := w.writeBlob(b.Descriptor, b.Manifest); err != nil {
		return nil, err
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
	bundleSrc, err := w.source(ref)
	if err != nil {
		return nil, err
	}
	// The signatures and referrers are one operation, each image another:
	// --timeout bounds each.
	sctx, cancel := rc.Begin(ctx)
	if res.Signatures, err = w.copySignature(sctx, bundleSrc, b.Descriptor); err == nil {
		res.Referrers, err = w.copyReferrers(sctx, bundleSrc, b.Descriptor)
	}
	cancel()
	if err != nil {
		return nil, err
	}

	if o.TrustedRoot != nil {
		if res.TrustedRoot, err = w.writeTrustedRoot(o.TrustedRoot); err != nil {
			return nil, err
		}
	}

	for _, im := range images {
		ictx, cancel := rc.Begin(ctx)
		e, err := w.copyImage(ictx, im, o.Platforms)
		cancel()
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
	rc      *registry.Client
	written map[digest.Digest]bool
	dirs    map[string]bool
	entries []ocispec.Descriptor
}

func newLayoutWriter(w io.Writer, rc *registry.Client) *layoutWriter {
	return &layoutWriter{tw: tar.NewWriter(w), rc: rc, written: map[digest.Digest]bool{}, dirs: map[string]bool{}}
}

// source is a repository export reads from.
type source struct {
	rc   *registry.Client
	ref  registry.Reference
	repo *remote.Repository
}

func (w *layoutWriter) source(ref registry.Reference) (*source, error) {
	repo, err := w.rc.Repository(ref)
	if err != nil {
		return nil, err
	}
	return &source{rc: w.rc, ref: ref, repo: repo}, nil
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

// writeLayer streams b's layer into the tar, checking it on the way.
func (w *layoutWriter) writeLayer(b *bundles.Bundle) error {
	desc := b.LayerDescriptor
	if w.written[desc.Digest] {
		return nil
	}
	name := blobName(desc.Digest)
	r, err := b.OpenLayer()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := w.header(name, desc.Size); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := bundles.CopyVerified(w.tw, r, "layer", desc); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	w.written[desc.Digest] = true
	return nil
}

// copyBlob streams a blob from src into the tar, checking it on the way.
// A transfer cut short is resumed where it stopped (a Range request) when
// the registry allows it, else tried again from the start while nothing
// has reached the tar.
func (w *layoutWriter) copyBlob(ctx context.Context, src *source, what string, desc ocispec.Descriptor) error {
	if w.written[desc.Digest] {
		w.rc.Skipped("pull", what, desc)
		return nil
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s digest %q: %w", what, desc.Digest, err)
	}
	if err := w.header(blobName(desc.Digest), desc.Size); err != nil {
		return fmt.Errorf("writing %s: %w", blobName(desc.Digest), err)
	}
	body := &resumable{}
	r := newVerifyingReader(w.rc.ProgressReader(body, "pull", what, desc), what, desc)
	err := src.rc.Step(ctx, src.ref, what+" "+desc.Digest.String(), func(ctx context.Context) error {
		rc, err := src.repo.Blobs().Fetch(ctx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := body.resume(rc); err != nil {
			return err
		}
		_, err = io.Copy(w.tw, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("copying %s %s: %w", what, desc.Digest, err)
	}
	w.written[desc.Digest] = true
	return nil
}

// errNoResume: a blob transfer broke after bytes reached the archive, and
// the registry cannot send the rest alone.
var errNoResume = errors.New("the registry does not serve byte ranges, so the transfer cannot resume: run export again")

// resumable reads a blob across tries: each try's body continues where
// the previous one stopped.
type resumable struct {
	r io.Reader
	n int64
}

func (b *resumable) resume(rc io.Reader) error {
	if b.n > 0 {
		s, ok := rc.(io.Seeker)
		if !ok {
			return errNoResume
		}
		if _, err := s.Seek(b.n, io.SeekStart); err != nil {
			return err
		}
	}
	b.r = rc
	return nil
}

func (b *resumable) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// fetchManifest reads a manifest by descriptor, checked and bounded.
func (src *source) fetchManifest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > maxMetadataSize {
		return nil, fmt.Errorf("manifest %s is %d bytes, limit is %d", desc.Digest, desc.Size, maxMetadataSize)
	}
	var data []byte
	err := src.rc.Step(ctx, src.ref, "manifest "+desc.Digest.String(), func(ctx context.Context) error {
		rc, err := src.repo.Manifests().Fetch(ctx, desc)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(newVerifyingReader(rc, "manifest", desc))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetching manifest %s: %w", desc.Digest, err)
	}
	return data, nil
}

// resolveManifest fetches the manifest reference names (a tag or digest)
// and checks it against the digest the registry announced.
func (src *source) resolveManifest(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	var (
		desc ocispec.Descriptor
		data []byte
	)
	err := src.rc.Step(ctx, src.ref, "manifest "+reference, func(ctx context.Context) error {
		var (
			rc  io.ReadCloser
			err error
		)
		desc, rc, err = src.repo.Manifests().FetchReference(ctx, reference)
		if err != nil {
			return err
		}
		defer rc.Close()
		if desc.Size > maxMetadataSize {
			return fmt.Errorf("manifest %s is %d bytes, limit is %d", desc.Digest, desc.Size, maxMetadataSize)
		}
		data, err = io.ReadAll(newVerifyingReader(rc, "manifest", desc))
		return err
	})
	return desc, data, err
}

// copyGraph copies the manifest desc (data, when already fetched) and
// everything it references, children first, each blob once.
func (w *layoutWriter) copyGraph(ctx context.Context, src *source, desc ocispec.Descriptor, data []byte) error {
	if w.written[desc.Digest] {
		// Reported, so that the end summary can count what images share.
		w.rc.Skipped("pull", what(desc), desc)
		return nil
	}
	if !isManifest(desc.MediaType) {
		return w.copyBlob(ctx, src, what(desc), desc)
	}
	if data == nil {
		var err error
		if data, err = src.fetchManifest(ctx, desc); err != nil {
			return err
		}
	}
	children, err := successors(desc.MediaType, data)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	for _, ch := range children {
		if err := w.copyGraph(ctx, src, ch, nil); err != nil {
			return err
		}
	}
	return w.writeBlob(desc, data)
}

// copySignature copies the cosign signature manifest of the bundle (tag
// sha256-<hex>.sig), which referrers-based copies miss, and returns how
// many signatures it holds.
func (w *layoutWriter) copySignature(ctx context.Context, src *source, bundle ocispec.Descriptor) (int, error) {
	tag := sign.SignatureTag(bundle.Digest)
	desc, data, err := src.resolveManifest(ctx, tag)
	if errors.Is(err, registry.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the signatures (tag %s): %w", tag, err)
	}
	if err := w.copyGraph(ctx, src, desc, data); err != nil {
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
func (w *layoutWriter) copyReferrers(ctx context.Context, src *source, bundle ocispec.Descriptor) (int, error) {
	var refs []ocispec.Descriptor
	err := src.rc.Step(ctx, src.ref, "referrers of "+bundle.Digest.String(), func(ctx context.Context) error {
		refs = nil
		return src.repo.Referrers(ctx, ocispec.Descriptor{MediaType: bundle.MediaType, Digest: bundle.Digest, Size: bundle.Size}, "", func(rs []ocispec.Descriptor) error {
			refs = append(refs, rs...)
			return nil
		})
	})
	if err != nil && !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, errdef.ErrUnsupported) {
		return 0, fmt.Errorf("listing referrers: %w", err)
	}
	for _, r := range refs {
		if !isManifest(r.MediaType) {
			continue
		}
		if err := w.copyGraph(ctx, src, r, nil); err != nil {
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
func (w *layoutWriter) copyImage(ctx context.Context, im registry.Image, platforms []Platform) (*ExportedImage, error) {
	ref := im.Reference()
	src, err := w.source(ref)
	if err != nil {
		return nil, err
	}
	reference := ref.Tag
	if ref.Digest != "" {
		reference = ref.Digest.String()
	}
	desc, data, err := src.resolveManifest(ctx, reference)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref.Name(), err)
	}
	if ref.Digest != "" && desc.Digest != ref.Digest {
		return nil, fmt.Errorf("asked for %s, the registry answered with %s", ref.Digest, desc.Digest)
	}
	if !isManifest(desc.MediaType) {
		return nil, fmt.Errorf("%w: media type %q", ErrUnsupported, desc.MediaType)
	}
	e := &ExportedImage{Ref: im.Original, Digest: desc.Digest, MediaType: desc.MediaType}
	entry := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Annotations: map[string]string{
		AnnotationKind:           KindImage,
		AnnotationImage:          im.Original,
		AnnotationContainerdName: im.Name(),
	}}
	if isIndex(desc.MediaType) && len(platforms) > 0 {
		filtered, children, err := filterIndex(data, platforms)
		if err != nil {
			return nil, err
		}
		for _, ch := range children {
			if err := w.copyGraph(ctx, src, ch, nil); err != nil {
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
		entry.Annotations[AnnotationContainerdName] = named.Name()
		data = filtered
	} else if err := w.copyGraph(ctx, src, desc, data); err != nil {
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
