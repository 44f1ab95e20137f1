package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles/sign"
)

// Limits on what a signature manifest may make galley read: cosign stores
// at most sign.MaxLayers signatures, each a payload of a few hundred bytes.
const (
	maxSignatureManifestSize = 4 << 20
	maxSignatureConfigSize   = 4 << 20
	maxPayloadSize           = 1 << 20
)

// SignResult says what PushSignature did.
type SignResult struct {
	Digest digest.Digest // the signed manifest
	// Tag is the signature tag, "sha256-<hex>.sig".
	Tag string
	// SignatureDigest is the signature manifest the tag names now.
	SignatureDigest digest.Digest
	// AlreadySigned: the key had signed this digest already, so nothing was
	// pushed (cosign behaves the same).
	AlreadySigned bool
	// Signatures counts the signatures in the manifest, this one included.
	Signatures int
}

// Sign signs the manifest d in ref's repository with s and pushes the
// signature in cosign's format (see PushSignature).
func (c *Client) Sign(ctx context.Context, ref Reference, d digest.Digest, s signature.SignerVerifier) (*SignResult, error) {
	payload, err := sign.Payload(ref.Repo(), d)
	if err != nil {
		return nil, c.fail("sign", ref.WithDigest(d), err)
	}
	sig, err := sign.SignPayload(ctx, s, payload)
	if err != nil {
		return nil, c.fail("sign", ref.WithDigest(d), err)
	}
	return c.PushSignature(ctx, ref, d, sig, s)
}

// PushSignature adds sig, a signature over sign.Payload(ref.Repo(), d), to
// the cosign signature manifest of d (tag "sha256-<hex>.sig" in ref's
// repository), creating it or appending to the signatures already there,
// as `cosign sign` does. When a signature in the manifest already verifies
// with v over the same payload, nothing is pushed. Signing first and
// pushing second lets a caller fail on a bad key before uploading a bundle.
func (c *Client) PushSignature(ctx context.Context, ref Reference, d digest.Digest, sig sign.Signature, v signature.Verifier) (*SignResult, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	res, err := c.pushSignature(ctx, ref, d, sig, v)
	return res, c.fail("sign", ref.WithDigest(d), err)
}

func (c *Client) pushSignature(ctx context.Context, ref Reference, d digest.Digest, sig sign.Signature, v signature.Verifier) (*SignResult, error) {
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	tag := sign.SignatureTag(d)
	if tag == "" {
		return nil, fmt.Errorf("digest %q has no algorithm", d)
	}
	res := &SignResult{Digest: d, Tag: tag}
	existing, err := c.fetchSignatures(ctx, repo, ref, d)
	if err != nil && !errors.Is(err, ErrNotSigned) {
		return nil, err
	}
	if existing != nil && existing.SignedBy(ctx, v, sig.Payload) {
		res.AlreadySigned = true
		res.SignatureDigest = existing.ManifestDescriptor.Digest
		res.Signatures = countLayers(existing.Manifest)
		return res, nil
	}
	art, err := sign.BuildSignatureManifest(existing, sig)
	if err != nil {
		return nil, err
	}
	res.SignatureDigest = art.ManifestDescriptor.Digest
	res.Signatures = countLayers(art.Manifest)
	if existing != nil && existing.ManifestDescriptor.Digest == art.ManifestDescriptor.Digest {
		res.AlreadySigned = true
		return res, nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(art.Manifest, &m); err != nil {
		return nil, fmt.Errorf("decoding signature manifest: %w", err)
	}
	for _, desc := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		data, ok := art.Blobs[desc.Digest]
		if !ok {
			// A blob of the existing manifest: already in the repository.
			continue
		}
		if _, err := c.pushBlob(ctx, repo, ref, "signature", desc, data); err != nil {
			return nil, err
		}
	}
	if err := c.putTag(ctx, repo, ref, art.ManifestDescriptor, art.Manifest, tag); err != nil {
		return nil, err
	}
	return res, nil
}

// Verified is a successful Verify.
type Verified struct {
	// Reference is the verified manifest, pinned by digest: pull this, not
	// the tag, which may have moved since.
	Reference Reference
	// Format is FormatSigstoreBundle or FormatCosignSig: which of Bundle
	// and Signature is set.
	Format    string
	Signature *sign.VerifiedSignature
	Bundle    *VerifiedBundle
}

// Verify checks that the manifest ref names (by tag or digest) is signed
// with the private half of v over that exact digest, as `cosign verify
// --key` (v3) and Flux 2.8+ check it: in a Sigstore bundle referrer when it
// has any, else in the cosign "sha256-<hex>.sig" manifest. It fails with
// ErrNotSigned when there is neither, and with the sign package's errors
// (sign.ErrSignatureMismatch, sign.ErrDigestMismatch, ...) when no
// signature holds.
func (c *Client) Verify(ctx context.Context, ref Reference, v signature.Verifier) (*Verified, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	res, err := c.verify(ctx, ref, v)
	return res, c.fail("verify", ref, err)
}

func (c *Client) verify(ctx context.Context, ref Reference, v signature.Verifier) (*Verified, error) {
	desc, err := c.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	return c.verifySigned(ctx, repo, ref, desc, nil, v)
}

// Signatures returns the number of cosign signatures stored for the manifest
// d in ref's repository, 0 when it has none. It checks none of them.
func (c *Client) Signatures(ctx context.Context, ref Reference, d digest.Digest) (int, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	repo, err := c.repository(ref)
	if err != nil {
		return 0, c.fail("signatures", ref.WithDigest(d), err)
	}
	art, err := c.fetchSignatures(ctx, repo, ref, d)
	if errors.Is(err, ErrNotSigned) {
		return 0, nil
	}
	if err != nil {
		return 0, c.fail("signatures", ref.WithDigest(d), err)
	}
	return countLayers(art.Manifest), nil
}

// fetchSignatures reads the signature manifest of d and its config, as the
// existing artifact BuildSignatureManifest appends to. ErrNotSigned when
// there is none.
func (c *Client) fetchSignatures(ctx context.Context, repo *remote.Repository, ref Reference, d digest.Digest) (*sign.Artifact, error) {
	tag := sign.SignatureTag(d)
	var (
		manifest []byte
		desc     ocispec.Descriptor
	)
	err := c.retry(ctx, func(ctx context.Context) error {
		var (
			rc  io.ReadCloser
			err error
		)
		desc, rc, err = repo.Manifests().FetchReference(ctx, tag)
		if errors.Is(err, errdef.ErrNotFound) {
			return &cleanError{fmt.Sprintf("%s has no signature in %s (no tag %s)", d, ref.Repo(), tag), ErrNotSigned, err}
		}
		if err != nil {
			err = c.classify(err, ref, "tag "+tag)
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRepositoryNotFound) {
				return &cleanError{fmt.Sprintf("%s has no signature in %s (no tag %s)", d, ref.Repo(), tag), ErrNotSigned, err}
			}
			return err
		}
		defer rc.Close()
		if desc.Size > maxSignatureManifestSize {
			return &cleanError{fmt.Sprintf("signature manifest %s is %d bytes, limit is %d", desc.Digest, desc.Size, maxSignatureManifestSize), ErrTooLarge, nil}
		}
		manifest, err = c.readVerified(rc, "signature manifest", desc)
		return c.classifyRead(err, ref)
	})
	if err != nil {
		var re *RetryError
		if errors.As(err, &re) {
			err = fmt.Errorf("fetching signature tag %s: %w", tag, err)
		}
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("signature manifest %s: %w", desc.Digest, err)
	}
	config, err := c.fetchBlob(ctx, repo, ref, "signature config", m.Config, maxSignatureConfigSize)
	if err != nil {
		return nil, err
	}
	mediaType := desc.MediaType
	if m.MediaType != "" {
		mediaType = m.MediaType
	}
	return &sign.Artifact{
		Manifest:           manifest,
		ManifestDescriptor: ocispec.Descriptor{MediaType: mediaType, Digest: desc.Digest, Size: desc.Size},
		Blobs:              map[digest.Digest][]byte{m.Config.Digest: config},
	}, nil
}

func countLayers(manifest []byte) int {
	var m ocispec.Manifest
	if json.Unmarshal(manifest, &m) != nil {
		return 0
	}
	n := 0
	for _, l := range m.Layers {
		if _, ok := l.Annotations[sign.SignatureAnnotation]; ok {
			n++
		}
	}
	return n
}
