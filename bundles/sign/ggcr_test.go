package sign_test

import (
	"bytes"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/galley-dev/galley/bundles/sign"
)

// cosignAppend is what cosign does to write signatures, with the
// go-containerregistry calls it makes: empty.Signatures (cosign
// pkg/oci/empty/empty.go) for the first one, then mutate.AppendSignatures
// (cosign pkg/oci/mutate/signatures.go) adding each static signature layer
// (cosign pkg/oci/static/signature.go: digest = diff_id = sha256(payload),
// descriptor annotations = the signature) without a creation time.
func cosignAppend(t *testing.T, base v1.Image, sigs ...sign.Signature) v1.Image {
	t.Helper()
	if base == nil {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	adds := make([]mutate.Addendum, 0, len(sigs))
	for _, s := range sigs {
		adds = append(adds, mutate.Addendum{
			Layer:       static.NewLayer(s.Payload, sign.SimpleSigningMediaType),
			Annotations: map[string]string{sign.SignatureAnnotation: s.Base64Signature},
		})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fromArtifact reads an Artifact back as go-containerregistry would read it
// from a registry (remote.Image is built the same way, on partial).
func fromArtifact(t *testing.T, a *sign.Artifact) v1.Image {
	t.Helper()
	img, err := partial.CompressedToImage(artifactImage{a})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type artifactImage struct{ a *sign.Artifact }

func (i artifactImage) RawManifest() ([]byte, error) { return i.a.Manifest, nil }
func (i artifactImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.a.ManifestDescriptor.MediaType), nil
}
func (i artifactImage) RawConfigFile() ([]byte, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	return i.a.Blobs[digest.Digest(m.Config.Digest.String())], nil
}
func (i artifactImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return static.NewLayer(i.a.Blobs[digest.Digest(h.String())], l.MediaType), nil
		}
	}
	return partial.ConfigLayer(i)
}

// TestMatchesCosignConstruction builds the same signature manifests both
// ways and wants identical bytes: new, appended to, and appended to with two
// signatures at once.
func TestMatchesCosignConstruction(t *testing.T) {
	s1 := fixedSignature(t, "registry.example.com/team/app", digestA, "one")
	s2 := fixedSignature(t, "registry.example.com/team/app", digestA, "two")
	s3 := fixedSignature(t, "registry.example.com/team/app", digestB, "three")
	s4 := fixedSignature(t, "localhost:5000/x", digestB, "four")

	check := func(what string, got *sign.Artifact, want v1.Image) {
		t.Helper()
		wantManifest, err := want.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		wantConfig, err := want.RawConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Manifest, wantManifest) {
			t.Errorf("%s: manifest differs from cosign's\n got %s\nwant %s", what, got.Manifest, wantManifest)
		}
		cfgName, err := want.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		if gotConfig := got.Blobs[digest.Digest(cfgName.String())]; !bytes.Equal(gotConfig, wantConfig) {
			t.Errorf("%s: config differs from cosign's\n got %s\nwant %s", what, gotConfig, wantConfig)
		}
		d, err := want.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got.ManifestDescriptor.Digest.String() != d.String() {
			t.Errorf("%s: digest %s, cosign's %s", what, got.ManifestDescriptor.Digest, d)
		}
	}

	one, err := sign.BuildSignatureManifest(nil, s1)
	if err != nil {
		t.Fatal(err)
	}
	check("one signature", one, cosignAppend(t, nil, s1))

	two, err := sign.BuildSignatureManifest(one, s2)
	if err != nil {
		t.Fatal(err)
	}
	check("appended", two, cosignAppend(t, fromArtifact(t, one), s2))

	four, err := sign.BuildSignatureManifest(two, s3, s4)
	if err != nil {
		t.Fatal(err)
	}
	check("two appended at once", four, cosignAppend(t, fromArtifact(t, two), s3, s4))

	both, err := sign.BuildSignatureManifest(nil, s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	check("two at once", both, cosignAppend(t, nil, s1, s2))
}
