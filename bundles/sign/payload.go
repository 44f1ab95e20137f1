package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// SignatureTagSuffix ends the tag of a signature manifest (cosign
// pkg/oci/remote/options.go: SignatureTagSuffix, joined with a dot).
const SignatureTagSuffix = ".sig"

// Payload returns the simple signing payload cosign signs for the manifest
// manifestDigest in repository ("registry/path", no tag or digest):
//
//	{"critical":{"identity":{"docker-reference":"<repo>"},"image":{"docker-manifest-digest":"<digest>"},"type":"cosign container image signature"},"optional":null}
//
// docker-reference is go-containerregistry's normalised repository name
// (Docker Hub names gain "index.docker.io/" and "library/"), exactly as
// `cosign sign` writes it (cosign cmd/cosign/cli/sign/sign.go: signDigest).
func Payload(repository string, manifestDigest digest.Digest) ([]byte, error) {
	repo, err := name.NewRepository(repository)
	if err != nil {
		return nil, fmt.Errorf("payload: repository %q: %w", repository, err)
	}
	if err := manifestDigest.Validate(); err != nil {
		return nil, fmt.Errorf("payload: manifest digest %q: %w", manifestDigest, err)
	}
	d, err := name.NewDigest(repo.Name() + "@" + manifestDigest.String())
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	b, err := payload.Cosign{Image: d}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return b, nil
}

// SignatureTag returns the tag cosign stores the signatures of the manifest d
// under, in d's own repository: "sha256-<hex>.sig" (cosign
// pkg/oci/remote/remote.go: normalize). It returns "" for a digest without an
// algorithm, which no registry accepts as a tag.
func SignatureTag(d digest.Digest) string {
	alg, hex, ok := strings.Cut(string(d), ":")
	if !ok || alg == "" || hex == "" {
		return ""
	}
	return alg + "-" + hex + SignatureTagSuffix
}

// Signature is one signature over a payload: one layer of the signature
// manifest.
type Signature struct {
	Payload         []byte
	Base64Signature string // standard base64 with padding, as cosign
}

// SignPayload signs payload with s as `cosign sign` does (cosign
// internal/pkg/cosign/payload/signer.go: SignMessage over the payload bytes,
// then standard base64).
func SignPayload(ctx context.Context, s signature.Signer, payload []byte) (Signature, error) {
	raw, err := s.SignMessage(bytes.NewReader(payload), options.WithContext(ctx))
	if err != nil {
		return Signature{}, fmt.Errorf("signing payload: %w", err)
	}
	return Signature{
		Payload:         bytes.Clone(payload),
		Base64Signature: base64.StdEncoding.EncodeToString(raw),
	}, nil
}
