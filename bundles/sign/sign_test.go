package sign_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/golden"
)

// Digests of two made-up bundle manifests.
var (
	digestA = digest.FromString("bundle A")
	digestB = digest.FromString("bundle B")
)

func verifyB64(v signature.Verifier, s sign.Signature) error {
	raw, err := base64.StdEncoding.DecodeString(s.Base64Signature)
	if err != nil {
		return err
	}
	return v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(s.Payload))
}

// newKey returns a fresh ECDSA P-256 signer, the kind GenerateKeyPair makes,
// without scrypt's cost: the tests using it are about signatures, not key
// files.
func newKey(t testing.TB) signature.SignerVerifier {
	t.Helper()
	sv, _, err := signature.NewDefaultECDSASignerVerifier()
	if err != nil {
		t.Fatal(err)
	}
	return sv
}

func fetchFrom(blobs map[digest.Digest][]byte) func(ocispec.Descriptor) ([]byte, error) {
	return func(d ocispec.Descriptor) ([]byte, error) {
		b, ok := blobs[d.Digest]
		if !ok {
			return nil, fmt.Errorf("blob %s: not found", d.Digest)
		}
		return b, nil
	}
}

// signed signs the payload for repo@d with sv and returns the resulting
// signature manifest, appended to existing.
func signed(t testing.TB, sv signature.Signer, existing *sign.Artifact, repo string, d digest.Digest) *sign.Artifact {
	t.Helper()
	ctx := context.Background()
	p, err := sign.Payload(repo, d)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.SignPayload(ctx, sv, p)
	if err != nil {
		t.Fatal(err)
	}
	a, err := sign.BuildSignatureManifest(existing, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPayload(t *testing.T) {
	tests := []struct {
		repo    string
		wantRef string
	}{
		{"registry.example.com/team/app", "registry.example.com/team/app"},
		{"localhost:5000/galley/platform", "localhost:5000/galley/platform"},
		{"127.0.0.1:5000/p", "127.0.0.1:5000/p"},
		// go-containerregistry's normal form, as cosign writes it.
		{"ubuntu", "index.docker.io/library/ubuntu"},
		{"docker.io/acme/platform", "index.docker.io/acme/platform"},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			got, err := sign.Payload(tt.repo, digestA)
			if err != nil {
				t.Fatal(err)
			}
			// The documented simple signing format, byte for byte.
			want := `{"critical":{"identity":{"docker-reference":"` + tt.wantRef + `"},"image":{"docker-manifest-digest":"` + digestA.String() + `"},"type":"cosign container image signature"},"optional":null}`
			if string(got) != want {
				t.Errorf("payload\n got %s\nwant %s", got, want)
			}
		})
	}
	bad := []struct{ repo, d, want string }{
		{"registry.example.com/app:v1", digestA.String(), "repository"},
		{"registry.example.com/app@" + digestA.String(), digestA.String(), "repository"},
		{"Registry.example.com/App", digestA.String(), "repository"},
		{"", digestA.String(), "repository"},
		{"registry.example.com/app", "sha256:abc", "manifest digest"},
		{"registry.example.com/app", "", "manifest digest"},
	}
	for _, tt := range bad {
		if _, err := sign.Payload(tt.repo, digest.Digest(tt.d)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Payload(%q, %q) err = %v, want one about the %s", tt.repo, tt.d, err, tt.want)
		}
	}
}

func TestSignatureTag(t *testing.T) {
	d := digest.Digest("sha256:ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11")
	if got, want := sign.SignatureTag(d), "sha256-ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11ba5eba11.sig"; got != want {
		t.Errorf("SignatureTag = %q, want %q", got, want)
	}
	if got := sign.SignatureTag("nonsense"); got != "" {
		t.Errorf("SignatureTag(nonsense) = %q, want empty", got)
	}
}

// fixedSignature makes BuildSignatureManifest's output reproducible: ECDSA
// signatures are random, and the manifest does not care whether the
// signature is valid.
func fixedSignature(t testing.TB, repo string, d digest.Digest, sig string) sign.Signature {
	t.Helper()
	p, err := sign.Payload(repo, d)
	if err != nil {
		t.Fatal(err)
	}
	return sign.Signature{Payload: p, Base64Signature: base64.StdEncoding.EncodeToString([]byte(sig))}
}

func TestSignatureManifestGolden(t *testing.T) {
	s1 := fixedSignature(t, "registry.example.com/team/app", digestA, "first signature")
	s2 := fixedSignature(t, "registry.example.com/team/app", digestA, "second signature")
	one, err := sign.BuildSignatureManifest(nil, s1)
	if err != nil {
		t.Fatal(err)
	}
	two, err := sign.BuildSignatureManifest(one, s2)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		name string
		a    *sign.Artifact
	}{{"one", one}, {"two", two}} {
		var m ocispec.Manifest
		if err := json.Unmarshal(a.a.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", "sig-manifest-"+a.name+".json"), a.a.Manifest)
		golden.Check(t, filepath.Join("testdata", "sig-config-"+a.name+".json"), a.a.Blobs[m.Config.Digest])
		if a.a.ManifestDescriptor.Digest != digest.FromBytes(a.a.Manifest) || a.a.ManifestDescriptor.Size != int64(len(a.a.Manifest)) ||
			a.a.ManifestDescriptor.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("%s: descriptor %+v does not describe the manifest", a.name, a.a.ManifestDescriptor)
		}
	}
}

// TestSignatureManifestFormat spells out, field by field, what cosign
// verifiers read.
func TestSignatureManifestFormat(t *testing.T) {
	s := fixedSignature(t, "registry.example.com/team/app", digestA, "sig")
	a, err := sign.BuildSignatureManifest(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest header %d %q", m.SchemaVersion, m.MediaType)
	}
	if m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("config media type %q", m.Config.MediaType)
	}
	if len(m.Layers) != 1 {
		t.Fatalf("%d layers", len(m.Layers))
	}
	l := m.Layers[0]
	if l.MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" ||
		l.Digest != digest.FromBytes(s.Payload) || l.Size != int64(len(s.Payload)) ||
		len(l.Annotations) != 1 || l.Annotations["dev.cosignproject.cosign/signature"] != s.Base64Signature {
		t.Errorf("layer %+v", l)
	}
	if !bytes.Equal(a.Blobs[l.Digest], s.Payload) || len(a.Blobs) != 2 {
		t.Errorf("blobs: %d, payload present %v", len(a.Blobs), a.Blobs[l.Digest] != nil)
	}
	var cfg struct {
		RootFS struct {
			Type    string          `json:"type"`
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
		History []json.RawMessage `json:"history"`
	}
	if err := json.Unmarshal(a.Blobs[m.Config.Digest], &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.Type != "layers" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != l.Digest || len(cfg.History) != 1 {
		t.Errorf("config %s", a.Blobs[m.Config.Digest])
	}
}

func TestBuildSignatureManifestErrors(t *testing.T) {
	good := fixedSignature(t, "r.example/a", digestA, "s")
	one, err := sign.BuildSignatureManifest(nil, good)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(one.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	noConfig := &sign.Artifact{Manifest: one.Manifest, Blobs: map[digest.Digest][]byte{}}
	badConfig := &sign.Artifact{Manifest: one.Manifest, Blobs: map[digest.Digest][]byte{m.Config.Digest: []byte("{}")}}
	wrongDesc := &sign.Artifact{Manifest: one.Manifest, Blobs: one.Blobs, ManifestDescriptor: ocispec.Descriptor{Digest: digestB}}
	index := &sign.Artifact{Manifest: []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)}
	s2 := fixedSignature(t, "r.example/a", digestA, "t")
	tests := []struct {
		name     string
		existing *sign.Artifact
		sigs     []sign.Signature
		want     string
	}{
		{"nothing", nil, nil, "no signatures"},
		{"empty payload", nil, []sign.Signature{{Base64Signature: "AAAA"}}, "signature 0: empty payload"},
		{"bad base64", nil, []sign.Signature{{Payload: good.Payload, Base64Signature: "not base64!"}}, "signature 0: signature is not standard base64"},
		{"no signature", nil, []sign.Signature{{Payload: good.Payload}}, "signature 0: signature is not standard base64"},
		{"config missing", noConfig, []sign.Signature{s2}, "config blob " + m.Config.Digest.String() + " missing"},
		{"config damaged", badConfig, []sign.Signature{s2}, "does not match its descriptor"},
		{"descriptor wrong", wrongDesc, []sign.Signature{s2}, "does not match the manifest bytes"},
		{"index", index, []sign.Signature{s2}, "is not an image manifest"},
		{"garbage", &sign.Artifact{Manifest: []byte("<html>")}, []sign.Signature{s2}, "decoding manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sign.BuildSignatureManifest(tt.existing, tt.sigs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	sv := newKey(t)
	const repo = "registry.example.com/team/app"
	a := signed(t, sv, nil, repo, digestA)

	got, err := sign.Verify(ctx, sv, a.Manifest, fetchFrom(a.Blobs), digestA)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := sign.Payload(repo, digestA)
	if !bytes.Equal(got.Payload, want) || got.DockerReference != repo || got.Optional != nil ||
		got.Layer.Digest != digest.FromBytes(want) || got.Layer.Annotations[sign.SignatureAnnotation] != got.Base64Signature {
		t.Errorf("verified signature %+v", got)
	}
	if _, err := sign.Verify(ctx, sv, a.Manifest, fetchFrom(a.Blobs), digestA, sign.WithRepository(repo)); err != nil {
		t.Errorf("WithRepository(%s): %v", repo, err)
	}
}

func TestVerifyFailures(t *testing.T) {
	ctx := context.Background()
	sv := newKey(t)
	other := newKey(t)
	const repo = "registry.example.com/team/app"
	a := signed(t, sv, nil, repo, digestA)
	var m ocispec.Manifest
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	payloadDigest := m.Layers[0].Digest

	// A registry serving other bytes for the payload digest.
	tampered := map[digest.Digest][]byte{payloadDigest: bytes.Replace(a.Blobs[payloadDigest], []byte(digestA.String()), []byte(digestB.String()), 1)}

	// An attacker rewriting payload and descriptor to claim digest B with
	// the original signature.
	rewritten := *a
	{
		p, _ := sign.Payload(repo, digestB)
		var mm map[string]any
		if err := json.Unmarshal(a.Manifest, &mm); err != nil {
			t.Fatal(err)
		}
		l := mm["layers"].([]any)[0].(map[string]any)
		l["digest"] = digest.FromBytes(p).String()
		l["size"] = len(p)
		rewritten.Manifest, _ = json.Marshal(mm)
		rewritten.Blobs = map[digest.Digest][]byte{digest.FromBytes(p): p}
	}

	noAnnotation := []byte(strings.Replace(string(a.Manifest), sign.SignatureAnnotation, "dev.example/other", 1))
	empty := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"` + digest.FromString("{}").String() + `"},"layers":[]}`)
	badB64 := []byte(strings.Replace(string(a.Manifest), m.Layers[0].Annotations[sign.SignatureAnnotation], "%%%", 1))
	fetchFails := func(ocispec.Descriptor) ([]byte, error) { return nil, errors.New("registry unavailable") }

	tests := []struct {
		name     string
		v        signature.Verifier
		manifest []byte
		fetch    func(ocispec.Descriptor) ([]byte, error)
		d        digest.Digest
		opts     []sign.VerifyOption
		want     error
		msg      string
	}{
		{"wrong key", other, a.Manifest, fetchFrom(a.Blobs), digestA, nil, sign.ErrSignatureMismatch, "no signature verifies with the key"},
		{"other digest", sv, a.Manifest, fetchFrom(a.Blobs), digestB, nil, sign.ErrDigestMismatch, "payload names \"" + digestA.String() + "\", want " + digestB.String()},
		{"tampered blob", sv, a.Manifest, fetchFrom(tampered), digestA, nil, sign.ErrBlobMismatch, "content digest is"},
		{"tampered payload and descriptor", sv, rewritten.Manifest, fetchFrom(rewritten.Blobs), digestB, nil, sign.ErrSignatureMismatch, ""},
		{"other repository", sv, a.Manifest, fetchFrom(a.Blobs), digestA, []sign.VerifyOption{sign.WithRepository("registry.example.com/team/other")}, sign.ErrReferenceMismatch, "want registry.example.com/team/other"},
		{"no annotation", sv, noAnnotation, fetchFrom(a.Blobs), digestA, nil, sign.ErrNoSignatures, ""},
		{"no layers", sv, empty, fetchFrom(a.Blobs), digestA, nil, sign.ErrNoSignatures, ""},
		{"bad base64", sv, badB64, fetchFrom(a.Blobs), digestA, nil, sign.ErrSignatureMismatch, "not base64"},
		{"fetch fails", sv, a.Manifest, fetchFails, digestA, nil, nil, "registry unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sign.Verify(ctx, tt.v, tt.manifest, tt.fetch, tt.d, tt.opts...)
			if err == nil {
				t.Fatal("verified")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to contain %q", err, tt.msg)
			}
		})
	}

	t.Run("bad input", func(t *testing.T) {
		for _, tt := range []struct {
			manifest []byte
			d        digest.Digest
			opts     []sign.VerifyOption
			want     string
		}{
			{a.Manifest, "sha256:short", nil, "manifest digest"},
			{nil, digestA, nil, "empty manifest"},
			{[]byte("{}"), digestA, nil, "schemaVersion 0"},
			{a.Manifest, digestA, []sign.VerifyOption{sign.WithRepository("Not/A/Repo:tag")}, "repository"},
		} {
			if _, err := sign.Verify(ctx, sv, tt.manifest, fetchFrom(a.Blobs), tt.d, tt.opts...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		}
	})
}

func TestVerifyRepositoryNormalised(t *testing.T) {
	ctx := context.Background()
	sv := newKey(t)
	a := signed(t, sv, nil, "docker.io/acme/platform", digestA)
	for _, repo := range []string{"acme/platform", "index.docker.io/acme/platform", "docker.io/acme/platform"} {
		if _, err := sign.Verify(ctx, sv, a.Manifest, fetchFrom(a.Blobs), digestA, sign.WithRepository(repo)); err != nil {
			t.Errorf("WithRepository(%s): %v", repo, err)
		}
	}
}

func TestAppendSignatures(t *testing.T) {
	ctx := context.Background()
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	const repo = "registry.example.com/team/app"
	payload, err := sign.Payload(repo, digestA)
	if err != nil {
		t.Fatal(err)
	}

	one := signed(t, k1, nil, repo, digestA)
	two := signed(t, k2, one, repo, digestA)

	var m1, m2 ocispec.Manifest
	if err := json.Unmarshal(one.Manifest, &m1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(two.Manifest, &m2); err != nil {
		t.Fatal(err)
	}
	if len(m2.Layers) != 2 {
		t.Fatalf("%d layers after appending", len(m2.Layers))
	}
	first1, _ := json.Marshal(m1.Layers[0])
	first2, _ := json.Marshal(m2.Layers[0])
	if !bytes.Equal(first1, first2) {
		t.Errorf("first layer changed:\n%s\n%s", first1, first2)
	}
	// Both keys signed the same payload: one blob, two layers.
	if m2.Layers[0].Digest != m2.Layers[1].Digest {
		t.Error("the two layers carry different payloads")
	}
	if _, stale := two.Blobs[m1.Config.Digest]; stale {
		t.Error("Blobs still holds the replaced config")
	}
	for name, k := range map[string]signature.Verifier{"first key": k1, "second key": k2} {
		if _, err := sign.Verify(ctx, k, two.Manifest, fetchFrom(two.Blobs), digestA); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := sign.Verify(ctx, k3, two.Manifest, fetchFrom(two.Blobs), digestA); !errors.Is(err, sign.ErrSignatureMismatch) || !strings.Contains(err.Error(), "2 signatures checked") {
		t.Errorf("third key: %v", err)
	}

	// The exact same signature again: nothing to add.
	var sig2 sign.Signature
	sig2.Payload = payload
	sig2.Base64Signature = m2.Layers[1].Annotations[sign.SignatureAnnotation]
	again, err := sign.BuildSignatureManifest(two, sig2)
	if err != nil {
		t.Fatal(err)
	}
	if again != two {
		t.Error("appending an identical signature built a new manifest")
	}
	// Two identical signatures in one call count once.
	s3, err := sign.SignPayload(ctx, k3, payload)
	if err != nil {
		t.Fatal(err)
	}
	three, err := sign.BuildSignatureManifest(two, s3, s3)
	if err != nil {
		t.Fatal(err)
	}
	var m3 ocispec.Manifest
	if err := json.Unmarshal(three.Manifest, &m3); err != nil {
		t.Fatal(err)
	}
	if len(m3.Layers) != 3 {
		t.Errorf("%d layers, want 3", len(m3.Layers))
	}

	// Re-signing with the same key gives a new random signature; SignedBy
	// is how a caller avoids stacking them, as cosign does.
	if !two.SignedBy(ctx, k1, payload) || !two.SignedBy(ctx, k2, payload) {
		t.Error("SignedBy misses a key that signed")
	}
	if two.SignedBy(ctx, k3, payload) {
		t.Error("SignedBy true for a key that did not sign")
	}
	other, _ := sign.Payload(repo, digestB)
	if two.SignedBy(ctx, k1, other) {
		t.Error("SignedBy true for another payload")
	}
	var nilArtifact *sign.Artifact
	if nilArtifact.SignedBy(ctx, k1, payload) {
		t.Error("nil artifact signed")
	}
}

func TestAppendKeepsDockerMediaType(t *testing.T) {
	// cosign with COSIGN_DOCKER_MEDIA_TYPES=1 writes Docker media types;
	// appending keeps them as cosign's mutate.Append does.
	s1 := fixedSignature(t, "r.example/a", digestA, "one")
	one, err := sign.BuildSignatureManifest(nil, s1)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(one.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
	m["config"].(map[string]any)["mediaType"] = "application/vnd.docker.container.image.v1+json"
	docker := &sign.Artifact{Blobs: one.Blobs}
	docker.Manifest, _ = json.Marshal(m)
	two, err := sign.BuildSignatureManifest(docker, fixedSignature(t, "r.example/a", digestA, "two"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		MediaType string
		Config    struct{ MediaType string }
		Layers    []any
	}
	if err := json.Unmarshal(two.Manifest, &got); err != nil {
		t.Fatal(err)
	}
	if got.MediaType != "application/vnd.docker.distribution.manifest.v2+json" || got.Config.MediaType != "application/vnd.docker.container.image.v1+json" || len(got.Layers) != 2 {
		t.Errorf("manifest %s", two.Manifest)
	}
	if two.ManifestDescriptor.MediaType != got.MediaType {
		t.Errorf("descriptor media type %q", two.ManifestDescriptor.MediaType)
	}
}

func TestVerifyContextCanceled(t *testing.T) {
	sv := newKey(t)
	a := signed(t, sv, nil, "r.example/a", digestA)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sign.Verify(ctx, sv, a.Manifest, fetchFrom(a.Blobs), digestA); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
