package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/galley-dev/galley/bundles"
)

// Verification failures, for errors.Is. When several layers fail for
// different reasons, Verify reports the one closest to success: a signature
// by the right key over the wrong claims beats a broken blob, which beats a
// signature by another key.
var (
	// ErrNoSignatures: the manifest has no layer carrying a signature.
	ErrNoSignatures = errors.New("no signatures")
	// ErrSignatureMismatch: no signature verifies with the key (wrong key,
	// or payload and signature do not belong together).
	ErrSignatureMismatch = errors.New("no signature verifies with the key")
	// ErrDigestMismatch: a signature verifies, but its payload is for
	// another manifest digest (a signature copied from another image).
	ErrDigestMismatch = bundles.ErrDigestMismatch
	// ErrReferenceMismatch: a signature verifies and names the digest, but
	// its docker-reference is not the repository given to WithRepository.
	ErrReferenceMismatch = errors.New("signed payload is for another repository")
	// ErrBlobMismatch: a fetched blob does not match its descriptor.
	ErrBlobMismatch = errors.New("blob does not match its descriptor")
	// ErrInvalidPayload: a signature verifies, but its payload is not a
	// cosign simple signing payload.
	ErrInvalidPayload = errors.New("payload is not a cosign container image signature")
)

// maxPayloadSize bounds what Verify fetches for one layer. cosign's own limit
// (COSIGN_MAX_ATTACHMENT_SIZE) is 128 MiB, but a simple signing payload is a
// few hundred bytes, annotations included.
const maxPayloadSize = 1 << 20

// VerifiedSignature is the layer that passed Verify.
type VerifiedSignature struct {
	Layer           ocispec.Descriptor // the signature layer, annotations included
	Payload         []byte
	Base64Signature string
	// DockerReference is the repository the signer claimed; Verify checks
	// it only with WithRepository.
	DockerReference string
	// Optional is the payload's "optional" object (nil for galley and
	// plain `cosign sign`).
	Optional map[string]any
}

// VerifyOption changes what Verify checks.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	repository string
}

// WithRepository also requires the payload's docker-reference to be
// repository (compared after go-containerregistry normalisation). cosign does
// not check it, and a bundle mirrored to another registry keeps the original
// reference, so use this only when the signature must name this repository.
func WithRepository(repository string) VerifyOption {
	return func(o *verifyOptions) { o.repository = repository }
}

// Verify checks the signature manifest sigManifest of the manifest
// manifestDigest the way `cosign verify --key` does, and returns the first
// layer for which all of these hold:
//
//   - the layer carries a dev.cosignproject.cosign/signature annotation;
//   - its blob, fetched with fetch, matches the layer descriptor's size and
//     digest (and is at most 1 MiB);
//   - the signature verifies over the blob with v;
//   - the blob is a cosign simple signing payload whose
//     docker-manifest-digest is manifestDigest;
//   - with WithRepository, its docker-reference names that repository.
//
// fetch returns a blob's content; Verify checks it, so fetch need not.
func Verify(ctx context.Context, v signature.Verifier, sigManifest []byte, fetch func(ocispec.Descriptor) ([]byte, error), manifestDigest digest.Digest, opts ...VerifyOption) (*VerifiedSignature, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := manifestDigest.Validate(); err != nil {
		return nil, fmt.Errorf("verifying signatures: manifest digest %q: %w", manifestDigest, err)
	}
	var wantRepo string
	if o.repository != "" {
		r, err := name.NewRepository(o.repository)
		if err != nil {
			return nil, fmt.Errorf("verifying signatures of %s: repository %q: %w", manifestDigest, o.repository, err)
		}
		wantRepo = r.Name()
	}
	m, err := parseSignatureManifest(sigManifest)
	if err != nil {
		return nil, fmt.Errorf("verifying signatures of %s: signature manifest: %w", manifestDigest, err)
	}

	var (
		best     error // the most telling failure so far
		bestRank = -1
		failures []string
		checked  int
		fetched  = map[digest.Digest][]byte{}
	)
	fail := func(i int, rank int, err error) {
		failures = append(failures, fmt.Sprintf("layer %d: %v", i, err))
		if rank > bestRank {
			best, bestRank = err, rank
		}
	}
	for i, gl := range m.Layers {
		b64, ok := gl.Annotations[SignatureAnnotation]
		if !ok {
			continue
		}
		checked++
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("verifying signatures of %s: %w", manifestDigest, err)
		}
		l := ociDescriptor(gl)
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			fail(i, 0, fmt.Errorf("signature annotation is not base64: %w", ErrSignatureMismatch))
			continue
		}
		if l.Size > maxPayloadSize {
			fail(i, 1, fmt.Errorf("payload of %d bytes exceeds %d: %w", l.Size, maxPayloadSize, ErrInvalidPayload))
			continue
		}
		blob, ok := fetched[l.Digest]
		if !ok {
			// Every key signs the same payload, so many layers share a
			// blob: fetch it once.
			if blob, err = fetch(l); err != nil {
				fail(i, 1, fmt.Errorf("fetching payload %s: %w", l.Digest, err))
				continue
			}
			fetched[l.Digest] = blob
		}
		if err := checkBlob(l, blob); err != nil {
			fail(i, 1, err)
			continue
		}
		if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(blob), options.WithContext(ctx)); err != nil {
			fail(i, 0, fmt.Errorf("%w: %v", ErrSignatureMismatch, err))
			continue
		}
		var p payload.SimpleContainerImage
		if err := json.Unmarshal(blob, &p); err != nil {
			fail(i, 2, fmt.Errorf("%w: %v", ErrInvalidPayload, err))
			continue
		}
		if p.Critical.Type != payload.CosignSignatureType {
			fail(i, 2, fmt.Errorf("%w: type %q", ErrInvalidPayload, p.Critical.Type))
			continue
		}
		if got := p.Critical.Image.DockerManifestDigest; got != manifestDigest.String() {
			fail(i, 3, fmt.Errorf("%w: payload names %q, want %s", ErrDigestMismatch, got, manifestDigest))
			continue
		}
		ref := p.Critical.Identity.DockerReference
		if wantRepo != "" && normalizeRepository(ref) != wantRepo {
			fail(i, 4, fmt.Errorf("%w: payload names %q, want %s", ErrReferenceMismatch, ref, wantRepo))
			continue
		}
		return &VerifiedSignature{
			Layer:           l,
			Payload:         blob,
			Base64Signature: b64,
			DockerReference: ref,
			Optional:        p.Optional,
		}, nil
	}
	if checked == 0 {
		return nil, fmt.Errorf("verifying signatures of %s: %w (%d layers, none with a %s annotation)", manifestDigest, ErrNoSignatures, len(m.Layers), SignatureAnnotation)
	}
	if checked == 1 {
		return nil, fmt.Errorf("verifying signatures of %s: %w", manifestDigest, best)
	}
	return nil, fmt.Errorf("verifying signatures of %s: %w (%d signatures checked: %s)", manifestDigest, best, checked, strings.Join(failures, "; "))
}

// normalizeRepository returns ref's repository in go-containerregistry's
// normal form, or ref unchanged when it does not parse (it then matches
// nothing a caller passes to WithRepository). Older cosign wrote a bare
// repository, newer ones may write a tag or digest reference.
func normalizeRepository(ref string) string {
	if r, err := name.ParseReference(ref); err == nil {
		return r.Context().Name()
	}
	if r, err := name.NewRepository(ref); err == nil {
		return r.Name()
	}
	return ref
}
