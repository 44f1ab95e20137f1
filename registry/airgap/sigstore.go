package airgap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// verifyArchived checks the bundle's signature inside the archive by the
// rule cosign v3 and Flux 2.8+ follow online: the Sigstore bundle
// referrers that sign it when there are any, and only those; otherwise
// the cosign .sig manifest.
func verifyArchived(ctx context.Context, a *Archive, ab *archivedBundle, v signature.Verifier) error {
	d := ab.bundle.Digest()
	var (
		checked int
		best    error
	)
	for _, r := range ab.referrers {
		if r.ArtifactType != sign.BundleMediaType {
			continue
		}
		raw, err := a.readBlob(r, maxMetadataSize)
		if err != nil {
			return err
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("%w: Sigstore bundle referrer %s: %v", ErrCorrupt, r.Digest, err)
		}
		if pt := m.Annotations[sign.AnnotationBundlePredicateType]; pt != "" && pt != sign.CosignSignPredicateType {
			continue // an attestation (provenance), not a signature
		}
		if len(m.Layers) != 1 {
			continue
		}
		checked++
		b, err := a.readBlob(m.Layers[0], sign.MaxBundleSize)
		if err != nil {
			return err
		}
		_, err = sign.VerifyBundle(ctx, v, b, d, sign.CosignSignPredicateType)
		if err == nil {
			return nil
		}
		if best == nil || errors.Is(err, sign.ErrDigestMismatch) {
			best = fmt.Errorf("checking Sigstore bundle referrer %s in the archive: %w", r.Digest, err)
		}
	}
	if checked > 0 {
		return fmt.Errorf("%w (cosign v3 and Flux 2.8+ check only Sigstore bundles once one exists)", best)
	}
	if ab.signature == nil {
		return fmt.Errorf("%w: the archive holds no signature of bundle %s (no Sigstore bundle referrer, no .sig manifest)", registry.ErrNotSigned, d)
	}
	sigManifest, err := a.readBlob(*ab.signature, maxMetadataSize)
	if err != nil {
		return err
	}
	fetch := func(d ocispec.Descriptor) ([]byte, error) { return a.readBlob(d, 1<<20) }
	_, err = sign.Verify(ctx, v, sigManifest, fetch, d)
	return err
}
