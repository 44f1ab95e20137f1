package sign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/galley-dev/galley/bundles/sign"
)

// What the real cosign v2.6.5 wrote; see testdata/cosign-v2.6.5/README.
const (
	fixtureDir      = "testdata/cosign-v2.6.5"
	fixturePassword = "galley-test-password"
	fixtureRepo     = "127.0.0.1:5391/galley/xc"
	fixtureDigest   = digest.Digest("sha256:cbc21ffa676d5073b3fadd500af920c71dfad50ac9214348a0676d29bfb7c4ad")
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCosignFixture checks this package against bytes cosign itself wrote:
// its key loads, its payload and signature manifest are what we build from
// the same signature, and its signature verifies.
func TestCosignFixture(t *testing.T) {
	ctx := context.Background()
	manifest := readFixture(t, "sig-manifest.json")
	config := readFixture(t, "sig-config.json")
	payload := readFixture(t, "payload.json")

	s, err := sign.LoadSigner(ctx, filepath.Join(fixtureDir, "cosign.key"), pass(fixturePassword))
	if err != nil {
		t.Fatalf("loading cosign's key: %v", err)
	}
	v, err := sign.LoadVerifier(ctx, filepath.Join(fixtureDir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	spub, _ := s.PublicKey()
	vpub, _ := v.PublicKey()
	if err := cryptoutils.EqualKeys(spub, vpub); err != nil {
		t.Fatalf("cosign.key and cosign.pub differ: %v", err)
	}

	got, err := sign.Payload(fixtureRepo, fixtureDigest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("payload\n got %s\nwant %s (cosign's)", got, payload)
	}

	blobs := map[digest.Digest][]byte{digest.FromBytes(config): config, digest.FromBytes(payload): payload}
	vs, err := sign.Verify(ctx, v, manifest, fetchFrom(blobs), fixtureDigest, sign.WithRepository(fixtureRepo))
	if err != nil {
		t.Fatalf("verifying cosign's signature: %v", err)
	}

	// The same signature through BuildSignatureManifest gives cosign's bytes.
	a, err := sign.BuildSignatureManifest(nil, sign.Signature{Payload: payload, Base64Signature: vs.Base64Signature})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Manifest, manifest) {
		t.Errorf("manifest\n got %s\nwant %s (cosign's)", a.Manifest, manifest)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Blobs[m.Config.Digest], config) {
		t.Errorf("config\n got %s\nwant %s (cosign's)", a.Blobs[m.Config.Digest], config)
	}

	// Another key appended to cosign's manifest; both verify.
	other := newKey(t)
	two := signed(t, other, &sign.Artifact{Manifest: manifest, Blobs: blobs}, fixtureRepo, fixtureDigest)
	if _, err := sign.Verify(ctx, v, two.Manifest, fetchFrom(two.Blobs), fixtureDigest); err != nil {
		t.Errorf("cosign's key after append: %v", err)
	}
	if _, err := sign.Verify(ctx, other, two.Manifest, fetchFrom(two.Blobs), fixtureDigest); err != nil {
		t.Errorf("appended key: %v", err)
	}
	if !two.SignedBy(ctx, v, payload) {
		t.Error("SignedBy misses cosign's signature")
	}
}
