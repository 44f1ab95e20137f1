package sign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles/sign"
)

// FuzzSignatureManifest feeds arbitrary bytes as a signature manifest to
// Verify and to BuildSignatureManifest, the two parsers of registry input.
// Neither may panic; Verify may succeed only on a layer that really verifies
// for the digest, and an appended manifest must keep the old layers.
func FuzzSignatureManifest(f *testing.F) {
	ctx := context.Background()
	sv := newKey(f)
	a := signed(f, sv, nil, "registry.example.com/team/app", digestA)
	b := signed(f, newKey(f), a, "registry.example.com/team/app", digestA)
	f.Add(a.Manifest)
	f.Add(b.Manifest)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[{"mediaType":"x","size":-1,"digest":"sha512:00"}]}`))
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":null}`))
	f.Add([]byte("null"))
	blobs := map[digest.Digest][]byte{}
	for d, v := range b.Blobs {
		blobs[d] = v
	}
	for d, v := range a.Blobs {
		blobs[d] = v
	}
	fetch := fetchFrom(blobs)
	extra := fixedSignature(f, "registry.example.com/team/app", digestB, "extra")

	f.Fuzz(func(t *testing.T, manifest []byte) {
		if vs, err := sign.Verify(ctx, sv, manifest, fetch, digestA); err == nil {
			if vs.Layer.Digest != digest.FromBytes(vs.Payload) || !bytes.Contains(vs.Payload, []byte(digestA.String())) {
				t.Fatalf("verified a layer that does not hold the signed payload: %+v", vs)
			}
		}
		out, err := sign.BuildSignatureManifest(&sign.Artifact{Manifest: manifest, Blobs: blobs}, extra)
		if err != nil {
			return
		}
		var before, after ocispec.Manifest
		if json.Unmarshal(manifest, &before) != nil || json.Unmarshal(out.Manifest, &after) != nil {
			t.Fatalf("built from or into an unparseable manifest:\n%s\n%s", manifest, out.Manifest)
		}
		if len(after.Layers) == len(before.Layers) && bytes.Equal(out.Manifest, manifest) {
			return // the input already held the signature
		}
		if len(after.Layers) != len(before.Layers)+1 || out.ManifestDescriptor.Digest != digest.FromBytes(out.Manifest) {
			t.Fatalf("append: %d layers -> %d\n%s", len(before.Layers), len(after.Layers), out.Manifest)
		}
		for i, l := range before.Layers {
			if after.Layers[i].Digest != l.Digest || after.Layers[i].Annotations[sign.SignatureAnnotation] != l.Annotations[sign.SignatureAnnotation] {
				t.Fatalf("layer %d changed", i)
			}
		}
	})
}
