package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Media types and annotation keys of cosign's signature manifest.
const (
	// SimpleSigningMediaType is the media type of each signature layer
	// (cosign pkg/types/media.go).
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds a layer's base64 signature (cosign
	// pkg/oci/static/signature.go: SignatureAnnotationKey).
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// ConfigMediaType is the config media type cosign gives the manifest
	// (cosign pkg/oci/empty/empty.go: types.OCIConfigJSON).
	ConfigMediaType = ocispec.MediaTypeImageConfig
)

// MaxLayers is the most signatures cosign reads from one manifest (cosign
// pkg/oci/mutate/signatures.go and pkg/oci/remote/signatures.go: maxLayers).
const MaxLayers = 1000

// dockerManifestMediaType is what cosign writes with
// COSIGN_DOCKER_MEDIA_TYPES=1; such manifests are read and appended to.
const dockerManifestMediaType = string(types.DockerManifestSchema2)

// Artifact is a signature manifest and the blobs it references.
type Artifact struct {
	Manifest           []byte
	ManifestDescriptor ocispec.Descriptor // media type, digest and size of Manifest
	// Blobs holds the config and layer blobs by digest. An Artifact from
	// BuildSignatureManifest holds the config and the payloads of the
	// layers it added, plus whatever the existing Artifact held: all a push
	// needs when the existing blobs are already in the repository.
	Blobs map[digest.Digest][]byte
}

// BuildSignatureManifest returns the signature manifest holding the layers
// of existing (nil when the image has no signature yet) followed by one layer
// per signature in sigs, byte for byte as cosign's mutate.AppendSignatures on
// go-containerregistry writes it. A signature whose payload and base64
// signature already appear in a layer is skipped; when every one is, the
// result is existing itself, unchanged, so a caller can compare digests and
// skip the push. existing.Blobs must hold its config blob.
//
// ECDSA signatures are randomised, so signing the same payload twice with one
// key gives two different signatures: use (*Artifact).SignedBy first to avoid
// that, as cosign's duplicate detector does.
func BuildSignatureManifest(existing *Artifact, sigs ...Signature) (*Artifact, error) {
	var (
		m      *v1.Manifest
		cfg    *v1.ConfigFile
		rawCfg []byte
		blobs  = map[digest.Digest][]byte{}
	)
	if existing == nil {
		// go-containerregistry's empty.Image after cosign's media type
		// changes (cosign pkg/oci/empty/empty.go): no layers yet, and a
		// config whose only set field is rootfs.type.
		m = &v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config:        v1.Descriptor{MediaType: types.OCIConfigJSON},
			Layers:        []v1.Descriptor{},
		}
		cfg = &v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}}
	} else {
		var err error
		if m, err = parseSignatureManifest(existing.Manifest); err != nil {
			return nil, fmt.Errorf("existing signature manifest: %w", err)
		}
		if d := existing.ManifestDescriptor.Digest; d != "" {
			if err := d.Validate(); err != nil {
				return nil, fmt.Errorf("existing signature manifest: descriptor digest %q: %w", d, err)
			}
			if got := d.Algorithm().FromBytes(existing.Manifest); got != d {
				return nil, fmt.Errorf("existing signature manifest: descriptor digest %s does not match the manifest bytes (%s)", d, got)
			}
		}
		maps.Copy(blobs, existing.Blobs)
		if isImageConfig(m.Config.MediaType) {
			cd := digest.Digest(m.Config.Digest.String())
			rawCfg = existing.Blobs[cd]
			if rawCfg == nil {
				return nil, fmt.Errorf("existing signature manifest: config blob %s missing from Blobs", cd)
			}
			if err := checkBlob(ociDescriptor(m.Config), rawCfg); err != nil {
				return nil, fmt.Errorf("existing signature manifest: config: %w", err)
			}
			if cfg, err = v1.ParseConfigFile(bytes.NewReader(rawCfg)); err != nil {
				return nil, fmt.Errorf("existing signature manifest: config %s: %w", cd, err)
			}
		}
	}

	seen := map[layerKey]bool{}
	for _, l := range m.Layers {
		seen[layerKey{l.Digest.String(), l.Annotations[SignatureAnnotation]}] = true
	}
	added := 0
	for i, s := range sigs {
		if len(s.Payload) == 0 {
			return nil, fmt.Errorf("signature %d: empty payload", i)
		}
		if _, err := base64.StdEncoding.DecodeString(s.Base64Signature); err != nil || s.Base64Signature == "" {
			return nil, fmt.Errorf("signature %d: signature is not standard base64", i)
		}
		h, size, err := v1.SHA256(bytes.NewReader(s.Payload))
		if err != nil {
			return nil, fmt.Errorf("signature %d: hashing payload: %w", i, err)
		}
		k := layerKey{h.String(), s.Base64Signature}
		if seen[k] {
			continue
		}
		seen[k] = true
		added++
		// What mutate.Append does with cosign's static layer: the layer's
		// descriptor with the signature annotation, and for an image config
		// an empty history entry and the payload digest as diff_id.
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType:   SimpleSigningMediaType,
			Size:        size,
			Digest:      h,
			Annotations: map[string]string{SignatureAnnotation: s.Base64Signature},
		})
		if cfg != nil {
			cfg.History = append(cfg.History, v1.History{})
			cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
		}
		blobs[digest.Digest(h.String())] = bytes.Clone(s.Payload)
	}
	if added == 0 {
		if existing == nil {
			return nil, errors.New("building signature manifest: no signatures")
		}
		return existing, nil
	}
	if len(m.Layers) > MaxLayers {
		return nil, fmt.Errorf("building signature manifest: %d signatures, cosign reads at most %d", len(m.Layers), MaxLayers)
	}

	if cfg != nil {
		newCfg, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("encoding signature config: %w", err)
		}
		if rawCfg != nil {
			delete(blobs, digest.FromBytes(rawCfg))
		}
		h, size, err := v1.SHA256(bytes.NewReader(newCfg))
		if err != nil {
			return nil, fmt.Errorf("hashing signature config: %w", err)
		}
		m.Config.Digest, m.Config.Size = h, size
		if m.Config.Data != nil {
			m.Config.Data = newCfg // as mutate.Append: embedded data follows the config
		}
		blobs[digest.Digest(h.String())] = newCfg
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding signature manifest: %w", err)
	}
	return &Artifact{
		Manifest: raw,
		ManifestDescriptor: ocispec.Descriptor{
			MediaType: string(m.MediaType),
			Digest:    digest.FromBytes(raw),
			Size:      int64(len(raw)),
		},
		Blobs: blobs,
	}, nil
}

// SignedBy reports whether a holds a layer for payload whose signature v
// verifies: cosign's duplicate test before it appends a signature (cosign
// pkg/cosign/remote/remote.go: dd.Find). It reads only the manifest.
func (a *Artifact) SignedBy(ctx context.Context, v signature.Verifier, payload []byte) bool {
	if a == nil {
		return false
	}
	m, err := parseSignatureManifest(a.Manifest)
	if err != nil {
		return false
	}
	want := digest.FromBytes(payload).String()
	for _, l := range m.Layers {
		b64, ok := l.Annotations[SignatureAnnotation]
		if !ok || l.Digest.String() != want || l.MediaType != SimpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload), options.WithContext(ctx)) == nil {
			return true
		}
	}
	return false
}

type layerKey struct{ digest, sig string }

// parseSignatureManifest decodes a signature manifest with
// go-containerregistry's types, the ones cosign decodes and re-encodes it
// with, so appending keeps cosign's field order and drops what cosign drops.
func parseSignatureManifest(b []byte) (*v1.Manifest, error) {
	if len(b) == 0 {
		return nil, errors.New("empty manifest")
	}
	var m v1.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	switch string(m.MediaType) {
	case ocispec.MediaTypeImageManifest, dockerManifestMediaType:
	default:
		return nil, fmt.Errorf("media type %q is not an image manifest", m.MediaType)
	}
	if m.Config.Digest.Algorithm == "" {
		return nil, errors.New("config has no digest")
	}
	if m.Config.Size < 0 {
		return nil, fmt.Errorf("config size %d", m.Config.Size)
	}
	if len(m.Layers) > MaxLayers {
		return nil, fmt.Errorf("%d layers, cosign reads at most %d", len(m.Layers), MaxLayers)
	}
	for i, l := range m.Layers {
		if l.Digest.Algorithm == "" {
			return nil, fmt.Errorf("layer %d has no digest", i)
		}
		if l.Size < 0 {
			return nil, fmt.Errorf("layer %d: size %d", i, l.Size)
		}
	}
	return &m, nil
}

func isImageConfig(mt types.MediaType) bool {
	return mt == types.OCIConfigJSON || mt == types.DockerConfigJSON
}

// ociDescriptor converts a go-containerregistry descriptor for callers that
// speak image-spec.
func ociDescriptor(d v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType:    string(d.MediaType),
		Digest:       digest.Digest(d.Digest.String()),
		Size:         d.Size,
		URLs:         d.URLs,
		Annotations:  d.Annotations,
		Data:         d.Data,
		ArtifactType: d.ArtifactType,
	}
}

// checkBlob verifies that b is the content desc describes.
func checkBlob(desc ocispec.Descriptor, b []byte) error {
	if int64(len(b)) != desc.Size {
		return fmt.Errorf("blob %s: %d bytes, descriptor says %d: %w", desc.Digest, len(b), desc.Size, ErrBlobMismatch)
	}
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return fmt.Errorf("blob %s: content digest is %s: %w", desc.Digest, got, ErrBlobMismatch)
	}
	return nil
}
