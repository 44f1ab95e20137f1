package airgap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Verifier, when set, must verify the bundle's signature in the
	// archive (a Sigstore bundle referrer, else the cosign .sig manifest,
	// as cosign v3 verify --key does) before anything is pushed.
	Verifier signature.Verifier
	// TrustedRootSHA256, when set, pins the trusted root the archive
	// carries: Import refuses the archive unless it holds a root of this
	// sha256, then verifies the bundle keyless against that root and
	// Identity. It excludes Verifier. Without the pin the carried root is
	// never used.
	TrustedRootSHA256 digest.Digest
	Identity          sign.Identity
	// Signer, when set, signs the relocated bundle, in SignatureFormat
	// (see registry.PublishOptions; the default is a Sigstore bundle).
	Signer          signature.SignerVerifier
	SignatureFormat string
	// Concurrency bounds the blobs uploaded at once; 0 means 3.
	Concurrency int
	// Force lets a version tag of the relocated bundle that already names
	// other content move. Without it Import refuses, as push does, before
	// anything is pushed.
	Force bool
}

// ImportResult says what Import did.
type ImportResult struct {
	// Original is the bundle as exported, pushed by digest with its
	// signature; Relocated the rewritten bundle, under Tags.
	Original, Relocated registry.Reference
	Tags                []registry.TagUpdate
	// Verified: ImportOptions.Verifier verified the original signature.
	Verified bool
	// TrustedRoot is the archive's trusted_root.json when it matched
	// ImportOptions.TrustedRootSHA256 (to create the Secret Flux's
	// verify.trustedRootSecretRef names), nil otherwise.
	TrustedRoot []byte
	// SignatureTag is the relocated bundle's signature tag, when signed in
	// the legacy format; SignatureFormat is the format, "" when unsigned.
	SignatureTag    string
	SignatureFormat string
	Images          []ImportedImage
	// Missing lists the images bundle.json names that the archive does
	// not hold (exported without images): their references are left as
	// they were.
	Missing []string
	// Changed lists the bundle files the relocation rewrote.
	Changed []string
	// Blob counts over images, bundles and signatures. A blob the
	// registry had already, or mounted from another repository, is
	// skipped.
	BlobsPushed, BlobsSkipped int
	BytesPushed, BytesSkipped int64
}

// ImportedImage is one image of an import.
type ImportedImage struct {
	// Source is the reference as the original bundle writes it;
	// Reference is what the relocated bundle writes instead.
	Source    string `json:"source"`
	Reference string `json:"reference"`
	// Tag is the tag pushed beside the digest, "" for none.
	Tag string `json:"tag,omitempty"`
	// Pushed is false when the registry had the whole image already.
	Pushed bool `json:"pushed"`
}

// Import installs the export archive at name into the registry and
// repository prefix of to (no tag or digest), as the package documentation
// describes. Nothing is pushed until the archive has passed OpenArchive's
// checks, the bundle's signature has verified (with o.Verifier), every
// destination is valid, and the relocated bundle is built and signed
// locally. Pushes go in an order that leaves no reference to missing
// content: images, the original bundle and its signatures, the relocated
// bundle, its tags, its signature. Running it again pushes only what is
// missing.
func (c *Client) Import(ctx context.Context, name string, to registry.Reference, o ImportOptions) (*ImportResult, error) {
	rc := c.registry(to.Registry)
	res, err := importArchive(ctx, rc, name, to, o)
	if err != nil {
		return nil, rc.Fail("import", name, err)
	}
	return res, nil
}

// archivedBundle is the bundle of an archive and what goes with it.
type archivedBundle struct {
	bundle     *bundles.Bundle
	repository string // host/path it was exported from
	tags       []string
	signature  *ocispec.Descriptor
	referrers  []ocispec.Descriptor
	images     []ocispec.Descriptor
}

func importArchive(ctx context.Context, rc *registry.Client, name string, to registry.Reference, o ImportOptions) (*ImportResult, error) {
	if to.Tag != "" || to.Digest != "" {
		return nil, fmt.Errorf("the destination %s names a tag or digest: give oci://<registry>/<prefix>", to)
	}
	a, err := OpenArchive(name)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	ab, err := readBundle(a)
	if err != nil {
		return nil, err
	}
	b := ab.bundle
	res := &ImportResult{Images: []ImportedImage{}}

	if o.TrustedRootSHA256 != "" {
		if o.Verifier != nil {
			return nil, errors.New("a pinned trusted root and a verifier exclude each other")
		}
		tr, data, err := a.CheckTrustedRoot(o.TrustedRootSHA256)
		if err != nil {
			return nil, err
		}
		if o.Verifier, err = sign.NewKeylessVerifier(tr, o.Identity); err != nil {
			return nil, err
		}
		res.TrustedRoot = data
	}
	if o.Verifier != nil {
		if err := verifyArchived(ctx, a, ab, o.Verifier); err != nil {
			return nil, err
		}
		res.Verified = true
	}

	// Plan everything before the first push.
	tree, err := b.Tree(bundles.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", b.Digest(), err)
	}
	idx, err := bundles.ReadIndex(tree)
	if err != nil {
		return nil, err
	}
	bundlePath := repositoryPath(ab.repository)
	if bundlePath == "" {
		// An archive galley did not write (a tarred bundle build
		// layout, say): the stack names the repository.
		bundlePath = idx.Stack.Name
	}
	bundleDst, err := Destination(to, bundlePath)
	if err != nil {
		return nil, err
	}
	res.Original = bundleDst.WithDigest(b.Digest())
	type plannedImage struct {
		desc ocispec.Descriptor
		dst  registry.Reference
		out  ImportedImage
	}
	var plan []plannedImage
	relocation := Relocation{Images: map[string]string{}, Source: registry.Scheme + bundleDst.Repo()}
	tagged := map[string]digest.Digest{}
	for _, e := range ab.images {
		src := e.Annotations[AnnotationImage]
		im, err := registry.ParseImage(src)
		if err != nil {
			return nil, fmt.Errorf("archive entry %s: %w", e.Digest, err)
		}
		dst, err := Destination(to, im.Path)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", src, err)
		}
		if im.Tag != "" {
			key := dst.Repo() + ":" + im.Tag
			if d, ok := tagged[key]; ok && d != e.Digest {
				return nil, fmt.Errorf("images from different registries both go to %s, as %s and %s: import them under different prefixes", key, d, e.Digest)
			}
			tagged[key] = e.Digest
		}
		out := ImportedImage{Source: src, Reference: RelocatedImage(dst, e.Digest), Tag: im.Tag}
		relocation.Images[src] = out.Reference
		if im.Digest != "" && im.Tag != "" {
			// bundle.json may pin repo:tag@digest where the manifests
			// say repo:tag (a build that resolved tags): both become
			// the pinned reference.
			if base, _, _ := strings.Cut(src, "@"); !slices.ContainsFunc(ab.images, func(o ocispec.Descriptor) bool { return o.Annotations[AnnotationImage] == base }) {
				relocation.Images[base] = out.Reference
			}
		}
		plan = append(plan, plannedImage{desc: e, dst: dst, out: out})
	}
	for _, im := range idx.Images {
		if _, ok := relocation.Images[im]; !ok {
			res.Missing = append(res.Missing, im)
		}
	}
	rel, err := Relocate(tree, relocation)
	if err != nil {
		return nil, err
	}
	res.Changed = rel.Changed
	relocated, err := repack(b, rel.Tree, ab.repository)
	if err != nil {
		return nil, err
	}
	res.Relocated = bundleDst.WithDigest(relocated.Digest())
	tags := ab.tags
	if len(tags) == 0 {
		if v := versionOf(b); v != "" {
			tags = []string{v}
		}
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("the bundle has no tag in the archive and no version to tag it with")
	}
	// The relocated bundle is released as push releases one: the version
	// rule is checked and the bundle signed now, before the first image
	// goes up.
	pub, err := rc.Prepare(ctx, relocated, bundleDst.WithTag(tags[0]), registry.PublishOptions{Tags: tags[1:], Signer: o.Signer, SignatureFormat: o.SignatureFormat, Force: o.Force})
	if err != nil {
		return nil, err
	}

	// Push.
	cp := newCopier(rc, a, o.Concurrency)
	for _, p := range plan {
		// Each image is one operation: --timeout bounds each.
		pushed, err := cp.pushTagged(ctx, p.dst, p.desc, p.out.Tag)
		if err != nil {
			return nil, fmt.Errorf("pushing image %s to %s: %w", p.out.Source, p.dst.Repo(), err)
		}
		p.out.Pushed = pushed
		res.Images = append(res.Images, p.out)
	}

	pr, err := rc.Push(ctx, b, bundleDst)
	if err != nil {
		return nil, err
	}
	cp.count(pr)
	if ab.signature != nil {
		if _, err := cp.pushTagged(ctx, bundleDst, *ab.signature, sign.SignatureTag(b.Digest())); err != nil {
			return nil, fmt.Errorf("pushing the bundle's signature: %w", err)
		}
	}
	for _, r := range ab.referrers {
		if _, err := cp.pushTagged(ctx, bundleDst, r, ""); err != nil {
			return nil, fmt.Errorf("pushing referrer %s: %w", r.Digest, err)
		}
	}
	pres, err := pub.Push(ctx)
	if pres == nil {
		return nil, err
	}
	cp.count(&pres.PushResult)
	res.Tags = pres.Tags
	res.SignatureTag = pres.SignatureTag
	res.SignatureFormat = pres.SignatureFormat
	if err != nil {
		return nil, err
	}
	res.BlobsPushed, res.BlobsSkipped = cp.pushed, cp.skipped
	res.BytesPushed, res.BytesSkipped = cp.bytesPushed, cp.bytesSkipped
	return res, nil
}

// readBundle finds the bundle of an archive and reads it whole (a bundle
// is small; images are not read here).
func readBundle(a *Archive) (*archivedBundle, error) {
	ab := &archivedBundle{}
	var bundleDesc *ocispec.Descriptor
	for _, e := range a.Manifests() {
		kind := e.Annotations[AnnotationKind]
		if kind == "" && e.ArtifactType == bundles.ArtifactType {
			kind = KindBundle
		}
		switch kind {
		case KindBundle:
			if bundleDesc != nil && bundleDesc.Digest != e.Digest {
				return nil, fmt.Errorf("the archive holds two bundles, %s and %s: import one archive per bundle", bundleDesc.Digest, e.Digest)
			}
			bundleDesc = &e
			if t := e.Annotations[ocispec.AnnotationRefName]; t != "" && !slices.Contains(ab.tags, t) {
				ab.tags = append(ab.tags, t)
			}
			if r := e.Annotations[AnnotationRepository]; r != "" {
				ab.repository = r
			}
		case KindImage:
			if e.Annotations[AnnotationImage] == "" {
				return nil, fmt.Errorf("%w: image entry %s has no %s annotation", ErrCorrupt, e.Digest, AnnotationImage)
			}
			ab.images = append(ab.images, e)
		}
	}
	if bundleDesc == nil {
		return nil, fmt.Errorf("%w: the archive holds no galley bundle", bundles.ErrNotFound)
	}
	for _, e := range a.Manifests() {
		if e.Annotations[AnnotationSubject] != bundleDesc.Digest.String() {
			continue
		}
		switch e.Annotations[AnnotationKind] {
		case KindSignature:
			ab.signature = &e
		case KindReferrer:
			ab.referrers = append(ab.referrers, e)
		}
	}
	manifest, err := a.readBlob(*bundleDesc, bundles.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := bundles.Validate(manifest)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundleDesc.Digest, err)
	}
	config, err := a.readBlob(m.Config, m.Config.Size)
	if err != nil {
		return nil, err
	}
	layer, err := a.readBlob(m.Layers[0], bundles.MaxLayerSize)
	if err != nil {
		return nil, err
	}
	ab.bundle = &bundles.Bundle{
		Manifest:        manifest,
		Descriptor:      ocispec.Descriptor{MediaType: bundles.ManifestMediaType, ArtifactType: bundles.ArtifactType, Digest: bundleDesc.Digest, Size: int64(len(manifest))},
		Config:          config,
		Layer:           layer,
		LayerDescriptor: ocispec.Descriptor{MediaType: bundles.LayerMediaType, Digest: m.Layers[0].Digest, Size: m.Layers[0].Size},
	}
	if err := ab.bundle.Verify(); err != nil {
		return nil, err
	}
	return ab, nil
}

// repositoryPath drops the host of host/path.
func repositoryPath(repo string) string {
	_, p, _ := strings.Cut(repo, "/")
	return p
}

func versionOf(b *bundles.Bundle) string {
	m, err := bundles.Validate(b.Manifest)
	if err != nil {
		return ""
	}
	return m.Annotations[ocispec.AnnotationVersion]
}

// repack packs the relocated tree with the original bundle's annotations,
// and records where it came from.
func repack(orig *bundles.Bundle, t *bundles.Tree, fromRepo string) (*bundles.Bundle, error) {
	m, err := bundles.Validate(orig.Manifest)
	if err != nil {
		return nil, err
	}
	a := maps.Clone(m.Annotations)
	created, err := time.Parse(time.RFC3339, a[ocispec.AnnotationCreated])
	if err != nil {
		return nil, fmt.Errorf("bundle %s: annotation %s: %w", orig.Digest(), ocispec.AnnotationCreated, err)
	}
	md := bundles.Metadata{
		Name:        a[ocispec.AnnotationTitle],
		Version:     a[ocispec.AnnotationVersion],
		Description: a[ocispec.AnnotationDescription],
		Source:      a[ocispec.AnnotationSource],
		Revision:    a[ocispec.AnnotationRevision],
		Created:     created,
	}
	for _, k := range []string{ocispec.AnnotationCreated, ocispec.AnnotationTitle, ocispec.AnnotationVersion, ocispec.AnnotationDescription, ocispec.AnnotationSource, ocispec.AnnotationRevision} {
		delete(a, k)
	}
	if a == nil {
		a = map[string]string{}
	}
	a[AnnotationRelocatedFrom] = orig.Digest().String()
	a[AnnotationRelocatedFromRepository] = fromRepo
	md.Annotations = a
	b, err := bundles.Pack(t, md)
	if err != nil {
		return nil, fmt.Errorf("packing the relocated bundle: %w", err)
	}
	return b, nil
}

// tag points tag at desc unless it already does.
func tag(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, t string) error {
	cur, err := repo.Resolve(ctx, t)
	if err == nil && cur.Digest == desc.Digest {
		return nil
	}
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return err
	}
	return repo.Tag(ctx, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, t)
}

// pushTagged pushes root and what it references to dst, then points tag
// at it ("" for none), as one operation bounded by --timeout, each step
// retried while it fails for a reason that may pass. A try cut short
// costs little: the blobs that went up are found there the next time.
func (cp *copier) pushTagged(ctx context.Context, dst registry.Reference, root ocispec.Descriptor, t string) (bool, error) {
	ctx, cancel := cp.rc.Begin(ctx)
	defer cancel()
	repo, err := cp.rc.Repository(dst)
	if err != nil {
		return false, err
	}
	var pushed bool
	err = cp.rc.Step(ctx, dst, what(root)+" "+root.Digest.String(), func(ctx context.Context) error {
		sent, err := cp.push(ctx, repo, dst.Repository, root)
		pushed = pushed || sent
		return err
	})
	if err != nil {
		return false, err
	}
	if t == "" {
		return pushed, nil
	}
	err = cp.rc.Step(ctx, dst.WithTag(t), "tag "+t, func(ctx context.Context) error {
		return tag(ctx, repo, root, t)
	})
	if err != nil {
		return false, fmt.Errorf("tagging %s:%s: %w", dst.Repo(), t, err)
	}
	return pushed, nil
}

// copier pushes graphs from an archive to repositories, counting what it
// sends and mounting a blob already pushed to another repository of the
// same registry instead of sending it again.
type copier struct {
	rc          *registry.Client
	src         content.ReadOnlyStorage
	archive     *Archive
	concurrency int

	mu       sync.Mutex
	pushedIn map[digest.Digest]string // blob -> a repository that has it
	// sent holds the repository/digest pairs pushed, so that a retried
	// copy does not count them again as skipped.
	sent                      map[string]bool
	pushed, skipped           int
	bytesPushed, bytesSkipped int64
}

func newCopier(rc *registry.Client, a *Archive, concurrency int) *copier {
	return &copier{rc: rc, src: progressStorage{a, rc}, archive: a, concurrency: concurrency, pushedIn: map[digest.Digest]string{}, sent: map[string]bool{}}
}

// push pushes root and what it references to repo (repository path
// repoPath), and reports whether anything was sent.
func (cp *copier) push(ctx context.Context, repo *remote.Repository, repoPath string, root ocispec.Descriptor) (bool, error) {
	sent := false
	opts := oras.CopyGraphOptions{
		Concurrency: cp.concurrency,
		PostCopy: func(_ context.Context, d ocispec.Descriptor) error {
			cp.mu.Lock()
			defer cp.mu.Unlock()
			cp.pushed++
			cp.bytesPushed += d.Size
			cp.pushedIn[d.Digest] = repoPath
			cp.sent[repoPath+"@"+d.Digest.String()] = true
			sent = true
			return nil
		},
		OnCopySkipped: func(_ context.Context, d ocispec.Descriptor) error {
			size := cp.archive.graphSize(d)
			cp.mu.Lock()
			defer cp.mu.Unlock()
			if cp.sent[repoPath+"@"+d.Digest.String()] {
				return nil // pushed by an earlier try
			}
			cp.skipped++
			cp.bytesSkipped += size
			if !isManifest(d.MediaType) {
				cp.pushedIn[d.Digest] = repoPath
			}
			cp.rc.Skipped("push", what(d), d)
			return nil
		},
		MountFrom: func(_ context.Context, d ocispec.Descriptor) ([]string, error) {
			cp.mu.Lock()
			defer cp.mu.Unlock()
			if from, ok := cp.pushedIn[d.Digest]; ok && from != repoPath {
				return []string{from}, nil
			}
			return nil, nil
		},
		OnMounted: func(_ context.Context, d ocispec.Descriptor) error {
			cp.mu.Lock()
			defer cp.mu.Unlock()
			cp.skipped++
			cp.bytesSkipped += d.Size
			cp.sent[repoPath+"@"+d.Digest.String()] = true
			sent = true
			cp.rc.Skipped("push", what(d), d)
			return nil
		},
	}
	if err := oras.CopyGraph(ctx, cp.src, repo, root, opts); err != nil {
		return false, err
	}
	return sent, nil
}

// count adds what a bundle push did.
func (cp *copier) count(r *registry.PushResult) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.pushed += r.BlobsPushed
	cp.skipped += r.BlobsSkipped
	cp.bytesPushed += r.BytesPushed
}

// graphSize is the size of desc and, for a manifest, of all it
// references, each blob once.
func (a *Archive) graphSize(desc ocispec.Descriptor) int64 {
	seen := map[digest.Digest]bool{}
	var size func(d ocispec.Descriptor) int64
	size = func(d ocispec.Descriptor) int64 {
		if seen[d.Digest] {
			return 0
		}
		seen[d.Digest] = true
		n := d.Size
		if isManifest(d.MediaType) {
			data, err := a.readBlob(d, maxMetadataSize)
			if err != nil {
				return n
			}
			children, _ := successors(d.MediaType, data)
			for _, c := range children {
				n += size(c)
			}
		}
		return n
	}
	return size(desc)
}

func what(d ocispec.Descriptor) string {
	switch {
	case isManifest(d.MediaType):
		return "manifest"
	case d.MediaType == ocispec.MediaTypeImageConfig || d.MediaType == "application/vnd.docker.container.image.v1+json":
		return "config"
	}
	return "layer"
}

// progressStorage reports the blobs read from an archive as they are
// pushed.
type progressStorage struct {
	*Archive
	rc *registry.Client
}

func (p progressStorage) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := p.Archive.Fetch(ctx, desc)
	if err != nil {
		return rc, err
	}
	return readCloser{p.rc.ProgressReader(rc, "push", what(desc), desc), rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
