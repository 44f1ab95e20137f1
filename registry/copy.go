package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
)

// CopyOptions configure Copy. The zero value copies without checking a
// signature and refuses to move a version.
type CopyOptions struct {
	// Tags are more tags to point at the copy (e.g. stable), besides the
	// destination's own tag.
	Tags []string
	// Verifier, when set, must verify a cosign signature of the source
	// manifest over its exact digest before anything is written to the
	// destination; the signatures copied are the ones verified.
	Verifier signature.Verifier
	// Force lets a version tag at the destination that names other content
	// move. Without it Copy fails with a *VersionExistsError, before it
	// writes anything.
	Force bool
}

// CopyResult says what Copy did.
type CopyResult struct {
	Digest digest.Digest
	// Source and Reference are the original and the copy, pinned by digest.
	Source, Reference Reference
	// BlobsCopied counts the blobs streamed from source to destination,
	// BlobsMounted those the destination registry mounted from the source
	// repository (same registry, no bytes sent), BlobsSkipped those the
	// destination had. Signature payloads count too.
	BlobsCopied, BlobsMounted, BlobsSkipped int
	// BytesCopied counts the blob and manifest bytes sent.
	BytesCopied int64
	// ManifestCopied is false when the destination had the manifest.
	ManifestCopied bool
	Tags           []TagUpdate
	// Verified (a .sig signature) or VerifiedBundle (a Sigstore bundle) is
	// the source signature CopyOptions.Verifier accepted; both nil without
	// a Verifier.
	Verified       *sign.VerifiedSignature
	VerifiedBundle *VerifiedBundle
	// SignatureTag is the cosign signature tag at the destination, ""
	// when the source has no signature.
	SignatureTag string
	// Signatures counts the cosign signatures at the destination after the
	// copy; SignaturesCopied those the copy added.
	Signatures, SignaturesCopied int
	// Referrers counts the OCI 1.1 referrers of the manifest at the source
	// (Sigstore bundles, SBOMs, ... and their own referrers); all of them
	// are at the destination after the copy.
	Referrers int
}

// Copy copies the galley bundle src names, with its cosign signatures and
// its OCI 1.1 referrers, to dst's repository, on the same registry or
// another: the promotion of a release from a dev registry to a prod one.
//
// Nothing is written to dst before all of these hold: src is a galley
// bundle whose manifest matches its digest; with o.Verifier, a signature
// stored with it verifies over that digest; and no version tag at dst names
// other content (unless o.Force). Then blobs go first (only those dst
// lacks; mounted rather than sent when both repositories are on one
// registry), then the manifest, byte for byte so the digest is preserved,
// then the signatures and referrers, and the tags last, so a reader of a
// tag at dst never sees a release without its signatures, and a failed copy
// leaves no tag behind.
//
// The tag at dst is dst's own; else src's; else the bundle's version
// (org.opencontainers.image.version); plus o.Tags. Signatures stay valid
// at dst: cosign's payload names the manifest digest, which the copy keeps,
// and the repository it names (the source's) is checked neither by cosign
// nor by Flux nor by Verify. When dst already has signatures for the
// digest, the source's missing ones are appended to them.
func (c *Client) Copy(ctx context.Context, src, dst Reference, o CopyOptions) (*CopyResult, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	res, err := c.copy(ctx, src, dst, o)
	if err != nil {
		return nil, &Error{Op: "copy", Ref: src.Name() + " to " + dst.Name(), Err: redact(err, c.secrets())}
	}
	return res, nil
}

func (c *Client) copy(ctx context.Context, src, dst Reference, o CopyOptions) (*CopyResult, error) {
	if src.reference() == "" {
		return nil, invalidRef(src.String(), "no tag or digest to copy")
	}
	if dst.Digest != "" {
		return nil, invalidRef(dst.String(), "copy to a repository or a tag, not to a digest")
	}
	srcRepo, err := c.repository(src)
	if err != nil {
		return nil, err
	}
	dstRepo, err := c.repository(dst)
	if err != nil {
		return nil, err
	}

	manifest, desc, err := c.fetchManifest(ctx, srcRepo, src)
	if err != nil {
		return nil, err
	}
	m, err := bundles.Validate(manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	d := desc.Digest
	mdesc := ocispec.Descriptor{MediaType: bundles.ManifestMediaType, ArtifactType: m.ArtifactType, Digest: d, Size: int64(len(manifest))}
	res := &CopyResult{Digest: d, Source: src.WithDigest(d), Reference: dst.WithDigest(d)}
	tags, err := copyTags(src, dst, o.Tags, m)
	if err != nil {
		return nil, err
	}

	// The signatures are read once: the ones verified are the ones copied.
	sigs, err := c.fetchSignatures(ctx, srcRepo, src, d)
	if errors.Is(err, ErrNotSigned) {
		sigs, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if o.Verifier != nil {
		vr, err := c.verifySigned(ctx, srcRepo, src, mdesc, sigs, o.Verifier)
		if err != nil {
			return nil, err
		}
		res.Verified, res.VerifiedBundle = vr.Signature, vr.Bundle
	}
	if !o.Force {
		for _, tag := range versionTags(tags) {
			if err := c.checkVersion(ctx, dstRepo, dst, tag, d); err != nil {
				return nil, err
			}
		}
	}

	bc := &blobCopier{c: c, from: srcRepo, to: dstRepo, src: src, dst: dst, res: res}
	if err := bc.copy(ctx, "config", m.Config, m.Config.Size); err != nil {
		return nil, err
	}
	if err := bc.copy(ctx, "layer", m.Layers[0], bundles.MaxLayerSize); err != nil {
		return nil, err
	}
	if res.ManifestCopied, err = c.putManifest(ctx, dstRepo, dst, "manifest", mdesc, manifest); err != nil {
		return nil, err
	}
	if res.ManifestCopied {
		res.BytesCopied += mdesc.Size
	}
	if sigs != nil {
		if err := c.copySignatures(ctx, bc, d, sigs); err != nil {
			return nil, err
		}
	}
	if err := c.copyReferrers(ctx, bc, mdesc); err != nil {
		return nil, err
	}

	for _, tag := range tags {
		u := TagUpdate{Tag: tag}
		if u.Previous, err = c.tagDigest(ctx, dstRepo, dst, tag); err != nil {
			return nil, err
		}
		if u.Previous != d {
			// Checked again: a push may have taken the version meanwhile.
			if u.Previous != "" && !o.Force && IsVersion(tag) {
				return nil, &VersionExistsError{Repo: dst.Repo(), Tag: tag, Existing: u.Previous, New: d}
			}
			if err := c.putTag(ctx, dstRepo, dst, mdesc, manifest, tag); err != nil {
				return nil, err
			}
			u.Changed = true
		}
		res.Tags = append(res.Tags, u)
	}
	return res, nil
}

// copyTags returns the tags of the copy: dst's, else src's, else the
// bundle's version; then extra. All must pass ValidateTag.
func copyTags(src, dst Reference, extra []string, m *ocispec.Manifest) ([]string, error) {
	first := dst.Tag
	if first == "" {
		first = src.Tag
	}
	if first == "" {
		first = m.Annotations[ocispec.AnnotationVersion]
	}
	tags, err := uniqueTags(append([]string{first}, extra...))
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, invalidRef(dst.String(), "no tag: the source is named by digest and the bundle has no version; name one ("+dst.String()+":<version>)")
	}
	return tags, nil
}

// copySignatures makes the cosign signatures of d in sigs, the source's
// signature manifest, present at the destination: the manifest as it is
// when the destination has none, else the destination's with the missing
// signatures appended.
func (c *Client) copySignatures(ctx context.Context, bc *blobCopier, d digest.Digest, sigs *sign.Artifact) error {
	res := bc.res
	tag := sign.SignatureTag(d)
	res.SignatureTag = tag
	var m ocispec.Manifest
	if err := json.Unmarshal(sigs.Manifest, &m); err != nil {
		return fmt.Errorf("signature manifest %s: %w", sigs.ManifestDescriptor.Digest, err)
	}
	existing, err := c.fetchSignatures(ctx, bc.to, bc.dst, d)
	if err != nil && !errors.Is(err, ErrNotSigned) {
		return err
	}

	if existing == nil {
		if err := bc.push(ctx, "signature", m.Config, sigs.Blobs[m.Config.Digest]); err != nil {
			return err
		}
		for _, l := range m.Layers {
			if err := bc.copy(ctx, "signature", l, maxPayloadSize); err != nil {
				return err
			}
		}
		if err := c.putTag(ctx, bc.to, bc.dst, sigs.ManifestDescriptor, sigs.Manifest, tag); err != nil {
			return err
		}
		res.Signatures = countLayers(sigs.Manifest)
		res.SignaturesCopied = res.Signatures
		return nil
	}

	res.Signatures = countLayers(existing.Manifest)
	if existing.ManifestDescriptor.Digest == sigs.ManifestDescriptor.Digest {
		return nil
	}
	// The destination has signatures of its own (made there, or copied by
	// an earlier promotion before the source gained more): keep them and
	// append what the source adds.
	var have ocispec.Manifest
	if err := json.Unmarshal(existing.Manifest, &have); err != nil {
		return fmt.Errorf("signature manifest %s: %w", existing.ManifestDescriptor.Digest, err)
	}
	seen := map[[2]string]bool{}
	for _, l := range have.Layers {
		seen[[2]string{l.Digest.String(), l.Annotations[sign.SignatureAnnotation]}] = true
	}
	var add []sign.Signature
	for _, l := range m.Layers {
		b64, ok := l.Annotations[sign.SignatureAnnotation]
		if !ok || seen[[2]string{l.Digest.String(), b64}] {
			continue
		}
		if l.MediaType != sign.SimpleSigningMediaType || len(l.Annotations) != 1 {
			// A certificate, chain or transparency log entry would be lost
			// in the append, and the signature with it.
			return fmt.Errorf("%s already holds other signatures of %s, and the source's carry more than a key signature (certificate or transparency log annotations), which galley cannot merge into them", tag, d)
		}
		payload, err := c.fetchBlob(ctx, bc.from, bc.src, "signature payload", l, maxPayloadSize)
		if err != nil {
			return err
		}
		add = append(add, sign.Signature{Payload: payload, Base64Signature: b64})
	}
	if len(add) == 0 {
		return nil
	}
	merged, err := sign.BuildSignatureManifest(existing, add...)
	if err != nil {
		return err
	}
	var mm ocispec.Manifest
	if err := json.Unmarshal(merged.Manifest, &mm); err != nil {
		return fmt.Errorf("decoding signature manifest: %w", err)
	}
	for _, desc := range append([]ocispec.Descriptor{mm.Config}, mm.Layers...) {
		data, ok := merged.Blobs[desc.Digest]
		if !ok {
			continue // the destination's own: already there
		}
		if err := bc.push(ctx, "signature", desc, data); err != nil {
			return err
		}
	}
	if err := c.putTag(ctx, bc.to, bc.dst, merged.ManifestDescriptor, merged.Manifest, tag); err != nil {
		return err
	}
	res.Signatures = countLayers(merged.Manifest)
	res.SignaturesCopied = len(add)
	return nil
}

// copyReferrers copies the referrers of desc, and theirs, with oras's
// extended copy: the Sigstore bundles of cosign v3, SBOMs, attestations.
func (c *Client) copyReferrers(ctx context.Context, bc *blobCopier, desc ocispec.Descriptor) error {
	var (
		mu    sync.Mutex
		found = map[digest.Digest]bool{}
	)
	opts := oras.ExtendedCopyGraphOptions{
		FindPredecessors: func(ctx context.Context, s content.ReadOnlyGraphStorage, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
			ps, err := s.Predecessors(ctx, d)
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps {
				found[p.Digest] = true
			}
			return ps, err
		},
	}
	opts.PostCopy = func(_ context.Context, d ocispec.Descriptor) error {
		mu.Lock()
		defer mu.Unlock()
		bc.res.BytesCopied += d.Size
		if !isManifestType(d.MediaType) {
			bc.res.BlobsCopied++
		}
		return nil
	}
	opts.OnCopySkipped = func(_ context.Context, d ocispec.Descriptor) error {
		mu.Lock()
		defer mu.Unlock()
		if !isManifestType(d.MediaType) {
			bc.res.BlobsSkipped++
		}
		return nil
	}
	if bc.sameRegistry() {
		opts.MountFrom = func(context.Context, ocispec.Descriptor) ([]string, error) {
			return []string{bc.src.Repository}, nil
		}
	}
	// Copying again skips what is there: a failed try is simply repeated.
	err := c.retry(ctx, func(ctx context.Context) error {
		err := oras.ExtendedCopyGraph(ctx, bc.from, bc.to, desc, opts)
		var ce *oras.CopyError
		if errors.As(err, &ce) {
			ref := bc.dst
			if ce.Origin == oras.CopyErrorOriginSource {
				ref = bc.src
			}
			return c.classify(ce.Err, ref, "a referrer of "+desc.Digest.String())
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("copying the referrers of %s: %w", desc.Digest, err)
	}
	bc.res.Referrers = len(found)
	return nil
}

func isManifestType(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json":
		return true
	}
	return false
}

// blobCopier copies blobs from one repository to another and counts them.
type blobCopier struct {
	c        *Client
	from, to *remote.Repository
	src, dst Reference
	res      *CopyResult
}

func (bc *blobCopier) sameRegistry() bool {
	return bc.src.Registry == bc.dst.Registry && bc.src.Repository != bc.dst.Repository
}

// copy makes the blob desc exist at the destination: nothing when it is
// there; a cross-repository mount on one registry; else a copy streamed
// from the source and checked against desc on the way, so a source that
// sends other bytes is caught before the upload completes. It refuses a
// blob larger than limit before reading it.
func (bc *blobCopier) copy(ctx context.Context, what string, desc ocispec.Descriptor, limit int64) error {
	c := bc.c
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s digest %q: %w", what, desc.Digest, err)
	}
	name := what + " " + desc.Digest.String()
	exists, err := c.blobExists(ctx, bc.to, bc.dst, name, desc)
	if err != nil {
		return stepError("checking", what, desc, err)
	}
	if exists {
		bc.res.BlobsSkipped++
		c.progress(Progress{Op: "copy", What: what, Digest: desc.Digest, Size: desc.Size, Done: desc.Size, Skipped: true})
		return nil
	}
	if desc.Size < 0 || desc.Size > limit {
		return &cleanError{fmt.Sprintf("%s %s is %d bytes, limit is %d", what, desc.Digest, desc.Size, limit), ErrTooLarge, nil}
	}
	streamed, tries := false, 0
	err = c.retry(ctx, func(ctx context.Context) error {
		if tries++; tries > 1 {
			// The destination may have stored it and the answer been lost.
			ok, err := bc.to.Blobs().Exists(ctx, desc)
			if err != nil {
				return c.classify(err, bc.dst, name)
			}
			if ok {
				return nil
			}
		}
		var (
			vr      *verifyingReader
			openErr error
		)
		open := func() (io.ReadCloser, error) {
			rc, err := bc.from.Blobs().Fetch(ctx, desc)
			if err != nil {
				openErr = c.classify(err, bc.src, name)
				return nil, openErr
			}
			vr = &verifyingReader{r: io.LimitReader(rc, desc.Size+1), h: desc.Digest.Algorithm().Hash(), desc: desc, what: what}
			return struct {
				io.Reader
				io.Closer
			}{c.progressReader(vr, "copy", what, desc), rc}, nil
		}
		var err error
		if bc.sameRegistry() {
			err = bc.to.Mount(ctx, desc, bc.src.Repository, open)
		} else {
			var rc io.ReadCloser
			if rc, err = open(); err == nil {
				err = bc.to.Blobs().Push(ctx, desc, rc)
				rc.Close()
			}
		}
		streamed = vr != nil
		switch {
		case err == nil || errors.Is(err, errdef.ErrAlreadyExists):
			return nil
		case openErr != nil:
			return openErr
		case vr != nil && vr.readErr != nil:
			return c.classifyRead(vr.readErr, bc.src)
		case vr != nil && vr.n > desc.Size:
			// The HTTP client stops reading past the announced length.
			return vr.mismatch()
		case vr != nil && vr.err != nil:
			return vr.err
		}
		return c.classify(err, bc.dst, name)
	})
	if err != nil {
		return stepError("copying", what, desc, err)
	}
	if !streamed {
		bc.res.BlobsMounted++
		c.progress(Progress{Op: "copy", What: what, Digest: desc.Digest, Size: desc.Size, Done: desc.Size})
		return nil
	}
	bc.res.BlobsCopied++
	bc.res.BytesCopied += desc.Size
	return nil
}

// push uploads a blob held in memory unless the destination has it.
func (bc *blobCopier) push(ctx context.Context, what string, desc ocispec.Descriptor, data []byte) error {
	pushed, err := bc.c.pushBlob(ctx, bc.to, bc.dst, what, desc, data)
	if err != nil {
		return err
	}
	if pushed {
		bc.res.BlobsCopied++
		bc.res.BytesCopied += desc.Size
	} else {
		bc.res.BlobsSkipped++
	}
	return nil
}

// verifyingReader hashes a blob as it streams and fails its last read when
// the bytes are not the ones the descriptor names, so the upload it feeds
// is aborted rather than completed.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	desc ocispec.Descriptor
	what string
	n    int64
	// err is the mismatch found at the end, readErr a failure to read the
	// source.
	err, readErr error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case err == io.EOF:
		if v.err = v.mismatch(); v.err != nil {
			return n, v.err
		}
	case err != nil:
		v.readErr = err
	}
	return n, err
}

func (v *verifyingReader) mismatch() error {
	got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h)
	if v.n == v.desc.Size && got == v.desc.Digest {
		return nil
	}
	dm := &bundles.DigestMismatchError{Blob: v.what, Want: v.desc.Digest, Got: got, WantSize: v.desc.Size, GotSize: v.n}
	return &cleanError{dm.Error(), ErrDigestMismatch, dm}
}

// putManifest uploads a manifest by digest unless the repository has it,
// and reports whether it did.
func (c *Client) putManifest(ctx context.Context, repo *remote.Repository, ref Reference, what string, desc ocispec.Descriptor, data []byte) (bool, error) {
	name := what + " " + desc.Digest.String()
	var exists bool
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		exists, err = repo.Manifests().Exists(ctx, desc)
		return c.classify(err, ref, name)
	})
	if err != nil {
		return false, stepError("checking", what, desc, err)
	}
	if exists {
		c.progress(Progress{Op: "copy", What: what, Digest: desc.Digest, Size: desc.Size, Done: desc.Size, Skipped: true})
		return false, nil
	}
	err = c.retry(ctx, func(ctx context.Context) error {
		r := c.progressReader(bytes.NewReader(data), "copy", what, desc)
		if err := repo.Manifests().Push(ctx, desc, r); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return c.classify(err, ref, name)
		}
		return nil
	})
	if err != nil {
		return false, stepError("uploading", what, desc, err)
	}
	return true, nil
}

// putTag points tag at the manifest data; writing a tag twice is harmless,
// so a lost answer is simply tried again.
func (c *Client) putTag(ctx context.Context, repo *remote.Repository, ref Reference, desc ocispec.Descriptor, data []byte, tag string) error {
	err := c.retry(ctx, func(ctx context.Context) error {
		return c.classify(repo.Manifests().PushReference(ctx, desc, bytes.NewReader(data), tag), ref, "tag "+tag)
	})
	if err != nil {
		return fmt.Errorf("tagging %s: %w", tag, err)
	}
	return nil
}
