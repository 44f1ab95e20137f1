package charts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/provenance"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles/sign"
)

// maxSignatureManifest bounds a cosign signature manifest: one layer
// descriptor per signature.
const maxSignatureManifest = 4 << 20

// verifyCosign checks that the chart manifest d carries a cosign
// signature (the sha256-<hex>.sig tag cosign v2 writes) by key, as
// `cosign verify --key` would.
func (r *Resolver) verifyCosign(ctx context.Context, repo *remote.Repository, oci string, d digest.Digest, key *Key) error {
	tag := sign.SignatureTag(d)
	_, sigManifest, err := oras.FetchBytes(ctx, repo, tag, oras.FetchBytesOptions{MaxBytes: maxSignatureManifest})
	if errors.Is(err, errdef.ErrNotFound) {
		return kinded(ErrNotSigned, "the stack asks for a cosign signature by %s, but the chart has none (no tag %s; cosign v3 must sign with --new-bundle-format=false)", key.Path, tag)
	}
	if err != nil {
		return fmt.Errorf("fetching the chart's cosign signature: %w", r.ociError(err, oci, "tag "+tag))
	}
	fetch := func(l ocispec.Descriptor) ([]byte, error) {
		return content.FetchAll(ctx, repo.Blobs(), l)
	}
	if _, err := sign.Verify(ctx, key.verifier, sigManifest, fetch, d); err != nil {
		return kinded(ErrNotSigned, "no cosign signature by %s verifies: %w", key.Path, err)
	}
	return nil
}

// verifyProvenance checks a Helm provenance file: signed by a key of the
// keyring, and naming the chart archive at chartPath (as fileName, the
// name it was packaged as) with its sha256.
func verifyProvenance(k *Keyring, chartPath, fileName string, prov []byte) error {
	if fileName == "" || fileName == "." || fileName == "/" || strings.ContainsAny(fileName, `/\`) {
		return fmt.Errorf("cannot name the chart archive %q for its provenance check", fileName)
	}
	sig, err := provenance.NewFromKeyring(k.abs, "")
	if err != nil {
		return fmt.Errorf("reading keyring %s: %w", k.Path, err)
	}
	// Helm 4 verifies bytes: the archive is named by fileName in the
	// provenance file, and no copy on disk is needed.
	data, err := os.ReadFile(chartPath)
	if err != nil {
		return err
	}
	if _, err := sig.Verify(data, prov, fileName); err != nil {
		return kinded(ErrNotSigned, "the provenance file does not verify with keyring %s: %s", k.Path, oneLine(err.Error()))
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
