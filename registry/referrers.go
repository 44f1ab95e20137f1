package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles/sign"
)

// Limits on what a Sigstore bundle referrer may make galley read.
const (
	maxReferrerManifestSize = 4 << 20
	// maxSigstoreReferrers bounds how many bundle referrers are read for one
	// manifest: each is fetched and checked, and a registry must not make
	// galley fetch forever.
	maxSigstoreReferrers = 100
)

// SigstoreBundle is a Sigstore bundle attached to a manifest as an OCI 1.1
// referrer.
type SigstoreBundle struct {
	// Referrer is the referrer manifest holding the bundle.
	Referrer ocispec.Descriptor
	// PredicateType is the referrer's dev.sigstore.bundle.predicateType
	// annotation: what cosign says the bundle attests. Unchecked until
	// VerifyBundle.
	PredicateType string
	// Bundle is the Sigstore bundle (JSON), checked against its descriptor.
	Bundle []byte
}

// BundleSignResult says what SignBundle or Attest did.
type BundleSignResult struct {
	Digest        digest.Digest // the signed manifest
	Referrer      ocispec.Descriptor
	PredicateType string
	// ReferrersTag is the referrers tag schema fallback ("sha256-<hex>"),
	// updated when the registry has no referrers API; "" when it has one.
	ReferrersTag string
	// AlreadySigned: a bundle verified by the same key over the same
	// statement was attached already, so nothing was pushed.
	AlreadySigned bool
}

// SignBundle signs the manifest d in ref's repository with s in the Sigstore
// bundle format `cosign sign --key` (v3) writes, and attaches the bundle as
// a referrer of d (see PushSigstoreBundle). Each call adds a bundle: ECDSA
// signatures are randomised, so signing twice gives two referrers.
func (c *Client) SignBundle(ctx context.Context, ref Reference, d digest.Digest, s signature.SignerVerifier) (*BundleSignResult, error) {
	st, err := sign.SignatureStatement(d)
	if err != nil {
		return nil, c.fail("sign", ref.WithDigest(d), err)
	}
	return c.Attest(ctx, ref, d, st, s)
}

// Attest signs the in-toto statement st (whose subject must include d) with
// s into a Sigstore bundle and attaches it as a referrer of d, as `cosign
// attest --key` (v3) does.
func (c *Client) Attest(ctx context.Context, ref Reference, d digest.Digest, st []byte, s signature.SignerVerifier) (*BundleSignResult, error) {
	b, err := sign.SignStatement(ctx, s, st)
	if err != nil {
		return nil, c.fail("sign", ref.WithDigest(d), err)
	}
	// Checked before anything is uploaded: a statement about another
	// manifest must not land next to this one.
	vb, err := sign.VerifyBundle(ctx, s, b, d, "")
	if err != nil {
		return nil, c.fail("sign", ref.WithDigest(d), err)
	}
	return c.PushSigstoreBundle(ctx, ref, d, b, vb.PredicateType)
}

// PushSigstoreBundle attaches the Sigstore bundle b to the manifest d as an
// OCI 1.1 referrer, byte for byte the manifest cosign v3 writes (cosign
// pkg/oci/remote/write.go: WriteAttestationNewBundleFormat, WriteReferrer):
// artifactType and one layer of sign.BundleMediaType, the empty config,
// subject d, and the annotations org.opencontainers.image.created,
// dev.sigstore.bundle.content and dev.sigstore.bundle.predicateType. oras
// updates the referrers tag "sha256-<hex>" when the registry has no
// referrers API (as CNCF Distribution), so cosign, Flux and oras find it
// either way.
func (c *Client) PushSigstoreBundle(ctx context.Context, ref Reference, d digest.Digest, b []byte, predicateType string) (*BundleSignResult, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	res, err := c.pushSigstoreBundle(ctx, ref, d, b, predicateType)
	return res, c.fail("sign", ref.WithDigest(d), err)
}

func (c *Client) pushSigstoreBundle(ctx context.Context, ref Reference, d digest.Digest, b []byte, predicateType string) (*BundleSignResult, error) {
	subject, err := c.resolve(ctx, ref.WithDigest(d))
	if err != nil {
		return nil, err
	}
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	layer := ocispec.Descriptor{MediaType: sign.BundleMediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	config := ocispec.DescriptorEmptyJSON
	m := referrerManifest{
		SchemaVersion: 2,
		MediaType:     ocispec.MediaTypeImageManifest,
		ArtifactType:  sign.BundleMediaType,
		// cosign sets the artifactType on the config descriptor too.
		Config: ocispec.Descriptor{MediaType: config.MediaType, ArtifactType: sign.BundleMediaType, Digest: config.Digest, Size: config.Size},
		Layers: []ocispec.Descriptor{layer},
		Subject: &ocispec.Descriptor{
			MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size,
		},
		Annotations: map[string]string{
			ocispec.AnnotationCreated:          time.Now().UTC().Format(time.RFC3339),
			sign.AnnotationBundleContent:       sign.BundleContentDSSE,
			sign.AnnotationBundlePredicateType: predicateType,
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the bundle referrer: %w", err)
	}
	if _, err := c.pushBlob(ctx, repo, ref, "signature", config, config.Data); err != nil {
		return nil, err
	}
	if _, err := c.pushBlob(ctx, repo, ref, "signature", layer, b); err != nil {
		return nil, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: sign.BundleMediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if _, err := c.putManifest(ctx, repo, ref, "signature", desc, raw); err != nil {
		return nil, err
	}
	res := &BundleSignResult{Digest: d, Referrer: desc, PredicateType: predicateType}
	// Looked up rather than inferred: oras learns while pushing whether the
	// registry has the referrers API, but does not tell.
	tag := referrersTag(d)
	if td, err := c.tagDigest(ctx, repo, ref, tag); err == nil && td != "" {
		res.ReferrersTag = tag
	}
	return res, nil
}

// referrerManifest is an image manifest with the fields cosign writes in
// this order; ocispec.Manifest would do, but spelling it out keeps the
// fields cosign sets in sight.
type referrerManifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType,omitempty"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Subject       *ocispec.Descriptor  `json:"subject,omitempty"`
	Annotations   map[string]string    `json:"annotations,omitempty"`
}

// referrersTag is the referrers tag schema's tag for d (distribution-spec
// v1.1 "Referrers Tag Schema"): "<alg>-<ref>".
func referrersTag(d digest.Digest) string {
	return strings.Replace(d.String(), ":", "-", 1)
}

// SigstoreBundles returns the Sigstore bundles attached to the manifest d in
// ref's repository, found through the referrers API or the referrers tag
// schema, each fetched and checked against its descriptors but not
// verified. A referrer that is not a bundle manifest of one layer is left
// out, as cosign does; none is an empty list, not an error.
func (c *Client) SigstoreBundles(ctx context.Context, ref Reference, d digest.Digest) ([]SigstoreBundle, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	repo, err := c.repository(ref)
	if err != nil {
		return nil, c.fail("referrers", ref.WithDigest(d), err)
	}
	subject, err := c.resolve(ctx, ref.WithDigest(d))
	if err != nil {
		return nil, c.fail("referrers", ref.WithDigest(d), err)
	}
	bs, err := c.sigstoreBundleList(ctx, repo, ref, subject)
	return bs, c.fail("referrers", ref.WithDigest(d), err)
}

func (c *Client) sigstoreBundleList(ctx context.Context, repo *remote.Repository, ref Reference, subject ocispec.Descriptor) ([]SigstoreBundle, error) {
	var refs []ocispec.Descriptor
	err := c.retry(ctx, func(ctx context.Context) error {
		refs = refs[:0]
		err := repo.Referrers(ctx, subject, sign.BundleMediaType, func(rs []ocispec.Descriptor) error {
			refs = append(refs, rs...)
			if len(refs) > maxSigstoreReferrers {
				return &cleanError{fmt.Sprintf("%s has more than %d Sigstore bundle referrers, galley reads at most %d", subject.Digest, maxSigstoreReferrers, maxSigstoreReferrers), ErrTooLarge, nil}
			}
			return nil
		})
		if errors.Is(err, errdef.ErrNotFound) {
			return nil
		}
		return c.classify(err, ref, "the referrers of "+subject.Digest.String())
	})
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", subject.Digest, err)
	}
	var out []SigstoreBundle
	for _, r := range refs {
		if r.MediaType != ocispec.MediaTypeImageManifest {
			continue
		}
		if r.Size < 0 || r.Size > maxReferrerManifestSize {
			return nil, &cleanError{fmt.Sprintf("bundle referrer %s is %d bytes, limit is %d", r.Digest, r.Size, maxReferrerManifestSize), ErrTooLarge, nil}
		}
		raw, err := c.fetchReferrerManifest(ctx, repo, ref, r)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("bundle referrer %s: %w", r.Digest, err)
		}
		if len(m.Layers) != 1 || !strings.HasPrefix(m.Layers[0].MediaType, "application/vnd.dev.sigstore.bundle") {
			continue
		}
		if m.Subject == nil || m.Subject.Digest != subject.Digest {
			return nil, &cleanError{fmt.Sprintf("bundle referrer %s is listed for %s but its subject is another manifest", r.Digest, subject.Digest), ErrDigestMismatch, nil}
		}
		b, err := c.fetchBlob(ctx, repo, ref, "Sigstore bundle", m.Layers[0], sign.MaxBundleSize)
		if err != nil {
			return nil, err
		}
		out = append(out, SigstoreBundle{Referrer: r, PredicateType: m.Annotations[sign.AnnotationBundlePredicateType], Bundle: b})
	}
	return out, nil
}

func (c *Client) fetchReferrerManifest(ctx context.Context, repo *remote.Repository, ref Reference, desc ocispec.Descriptor) ([]byte, error) {
	var raw []byte
	err := c.retry(ctx, func(ctx context.Context) error {
		rc, err := repo.Manifests().Fetch(ctx, desc)
		if err != nil {
			return c.classify(err, ref, "bundle referrer "+desc.Digest.String())
		}
		defer rc.Close()
		raw, err = c.readVerified(rc, "bundle referrer", desc)
		return c.classifyRead(err, ref)
	})
	if err != nil {
		return nil, fmt.Errorf("fetching bundle referrer %s: %w", desc.Digest, err)
	}
	return raw, nil
}

// VerifiedBundle is a Sigstore bundle referrer that passed VerifyBundles.
type VerifiedBundle struct {
	Reference Reference // the verified manifest, pinned by digest
	Referrer  ocispec.Descriptor
	*sign.VerifiedBundle
}

// VerifyBundles checks the Sigstore bundle referrers of d in ref's repository
// with the key v, as `cosign verify --key` (v3) does, and returns the first
// that verifies, names d and attests predicateType. With no bundle referrer
// it fails with ErrNotSigned. When bundles exist but none holds, it reports
// the failure closest to success (see sign.VerifyBundle), naming the
// referrer.
func (c *Client) VerifyBundles(ctx context.Context, ref Reference, d digest.Digest, v signature.Verifier, predicateType string) (*VerifiedBundle, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	res, err := c.verifyBundles(ctx, ref, d, v, predicateType)
	return res, c.fail("verify", ref.WithDigest(d), err)
}

func (c *Client) verifyBundles(ctx context.Context, ref Reference, d digest.Digest, v signature.Verifier, predicateType string) (*VerifiedBundle, error) {
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	subject, err := c.resolve(ctx, ref.WithDigest(d))
	if err != nil {
		return nil, err
	}
	bs, err := c.sigstoreBundleList(ctx, repo, ref, subject)
	if err != nil {
		return nil, err
	}
	return verifyBundleList(ctx, ref.WithDigest(d), bs, v, predicateType)
}

// verifyBundleList returns the first of bs that verifies with v for ref's
// digest and predicateType.
func verifyBundleList(ctx context.Context, ref Reference, bs []SigstoreBundle, v signature.Verifier, predicateType string) (*VerifiedBundle, error) {
	var (
		best     error
		bestRank = -1
		checked  int
	)
	for _, b := range bs {
		// cosign's annotation filters cheaply; the signed statement is
		// what counts, so an unannotated bundle is still checked.
		if predicateType != "" && b.PredicateType != "" && b.PredicateType != predicateType {
			continue
		}
		checked++
		vb, err := sign.VerifyBundle(ctx, v, b.Bundle, ref.Digest, predicateType)
		if err == nil {
			return &VerifiedBundle{Reference: ref, Referrer: b.Referrer, VerifiedBundle: vb}, nil
		}
		rank := 0
		switch {
		case errors.Is(err, sign.ErrPredicateType):
			rank = 3
		case errors.Is(err, sign.ErrDigestMismatch):
			rank = 2
		case errors.Is(err, sign.ErrInvalidBundle):
			rank = 1
		}
		if rank > bestRank {
			best, bestRank = fmt.Errorf("checking Sigstore bundle referrer %s: %w", b.Referrer.Digest, err), rank
		}
	}
	if checked == 0 {
		what := "Sigstore bundle"
		if predicateType != "" && predicateType != sign.CosignSignPredicateType {
			what = "attestation of type " + predicateType
		}
		return nil, &cleanError{fmt.Sprintf("%s has no %s in %s (no referrer of type %s)", ref.Digest, what, ref.Repo(), sign.BundleMediaType), ErrNotSigned, nil}
	}
	if checked > 1 {
		return nil, fmt.Errorf("%d Sigstore bundles checked, none verifies: %w", checked, best)
	}
	return nil, best
}

// FormatSigstoreBundle and FormatCosignSig name the two signature formats in
// Verified.Format.
const (
	FormatSigstoreBundle = "sigstore-bundle"
	FormatCosignSig      = "cosign-sig"
)

// verifySigned checks the signatures of the manifest desc the way cosign v3
// and Flux source-controller >= 1.8 do: the Sigstore bundle referrers that
// sign it (predicate CosignSignPredicateType) when there are any, and only
// then; otherwise the cosign "sha256-<hex>.sig" manifest, fetched unless
// sigs holds it already. Bundles attesting something else (provenance) do
// not count as signatures.
func (c *Client) verifySigned(ctx context.Context, repo *remote.Repository, ref Reference, desc ocispec.Descriptor, sigs *sign.Artifact, v signature.Verifier) (*Verified, error) {
	pinned := ref.WithDigest(desc.Digest)
	bs, err := c.sigstoreBundleList(ctx, repo, ref, desc)
	if err != nil {
		return nil, err
	}
	var sigBundles []SigstoreBundle
	for _, b := range bs {
		if b.PredicateType == "" || b.PredicateType == sign.CosignSignPredicateType {
			sigBundles = append(sigBundles, b)
		}
	}
	if len(sigBundles) > 0 {
		vb, err := verifyBundleList(ctx, pinned, sigBundles, v, sign.CosignSignPredicateType)
		if err != nil {
			return nil, fmt.Errorf("%w (cosign v3 and Flux 2.8+ check only Sigstore bundles once one exists; a .sig signature is not looked at)", err)
		}
		return &Verified{Reference: pinned, Format: FormatSigstoreBundle, Bundle: vb}, nil
	}
	if sigs == nil {
		if sigs, err = c.fetchSignatures(ctx, repo, ref, desc.Digest); err != nil {
			if errors.Is(err, ErrNotSigned) {
				return nil, &cleanError{fmt.Sprintf("%s has no signature in %s: no Sigstore bundle referrer, no tag %s", desc.Digest, ref.Repo(), sign.SignatureTag(desc.Digest)), ErrNotSigned, err}
			}
			return nil, err
		}
	}
	fetch := func(d ocispec.Descriptor) ([]byte, error) {
		return c.fetchBlob(ctx, repo, ref, "signature payload", d, maxPayloadSize)
	}
	vs, err := sign.Verify(ctx, v, sigs.Manifest, fetch, desc.Digest)
	if err != nil {
		return nil, err
	}
	return &Verified{Reference: pinned, Format: FormatCosignSig, Signature: vs}, nil
}

// hasSignatureBundle reports whether desc has a Sigstore bundle referrer
// that, by its annotation, signs it (provenance does not count). It reads
// only the referrers listing; a failure to list counts as none, since this
// only marks a version in a list.
func (c *Client) hasSignatureBundle(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) bool {
	found := false
	_ = repo.Referrers(ctx, desc, sign.BundleMediaType, func(rs []ocispec.Descriptor) error {
		for _, r := range rs {
			if pt := r.Annotations[sign.AnnotationBundlePredicateType]; pt == "" || pt == sign.CosignSignPredicateType {
				found = true
			}
		}
		return nil
	})
	return found
}
