package registry_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// A release copied to another registry keeps its digest, its bytes and its
// signature, which verifies there; copying it again writes nothing.
func TestCopyBetweenRegistries(t *testing.T) {
	ctx := t.Context()
	dev, prod := startMem(t, nil), startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	src, dst := dev.ref(t, "team/shop:1.4.0"), prod.ref(t, "platform/shop")
	if _, err := c.Push(ctx, b, src); err != nil {
		t.Fatal(err)
	}
	alice := newSigner(t)
	if _, err := c.Sign(ctx, src, b.Digest(), alice); err != nil {
		t.Fatal(err)
	}

	res, err := c.Copy(ctx, src, dst, registry.CopyOptions{Verifier: alice, Tags: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != b.Digest() || res.Reference != dst.WithDigest(b.Digest()) || res.Source != src.WithDigest(b.Digest()) {
		t.Errorf("result names %s, %s -> %s; want %s", res.Digest, res.Source, res.Reference, b.Digest())
	}
	// The bundle's config and layer, the signature's config and payload.
	if res.BlobsCopied != 4 || res.BlobsSkipped != 0 || res.BlobsMounted != 0 || !res.ManifestCopied {
		t.Errorf("first copy: %d copied, %d skipped, %d mounted, manifest %v; want 4, 0, 0, true", res.BlobsCopied, res.BlobsSkipped, res.BlobsMounted, res.ManifestCopied)
	}
	if res.Verified == nil || res.Verified.DockerReference != src.Repo() {
		t.Errorf("verified = %+v, want the source's signature", res.Verified)
	}
	if res.Signatures != 1 || res.SignaturesCopied != 1 || res.SignatureTag != sign.SignatureTag(b.Digest()) {
		t.Errorf("signatures: %d (%d copied) under %q", res.Signatures, res.SignaturesCopied, res.SignatureTag)
	}
	want := []registry.TagUpdate{{Tag: "1.4.0", Changed: true}, {Tag: "stable", Changed: true}}
	if len(res.Tags) != 2 || res.Tags[0] != want[0] || res.Tags[1] != want[1] {
		t.Errorf("tags = %+v, want %+v", res.Tags, want)
	}

	got, err := c.Pull(ctx, dst.WithTag("1.4.0"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Manifest, b.Manifest) || !bytes.Equal(got.Layer, b.Layer) {
		t.Error("the copy differs from the original")
	}
	v, err := c.Verify(ctx, dst.WithTag("stable"), alice)
	if err != nil {
		t.Fatalf("verify at the destination: %v", err)
	}
	if v.Reference.Digest != b.Digest() {
		t.Errorf("verified %s, want %s", v.Reference, b.Digest())
	}

	prod.log.take()
	res, err = c.Copy(ctx, src, dst, registry.CopyOptions{Verifier: alice, Tags: []string{"stable"}})
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(prod.log.take()); len(w) != 0 {
		t.Errorf("second copy wrote %v", w)
	}
	if res.BlobsCopied != 0 || res.ManifestCopied || res.SignaturesCopied != 0 || res.Signatures != 1 {
		t.Errorf("second copy: %+v", res)
	}
	for _, u := range res.Tags {
		if u.Changed || u.Previous != b.Digest() {
			t.Errorf("second copy touched tag %+v", u)
		}
	}
}

// Nothing reaches the destination unless the source's signature verifies
// with the key given: not signed, signed by another key.
func TestCopyVerifiesBeforeWriting(t *testing.T) {
	ctx := t.Context()
	dev, prod := startMem(t, nil), startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	alice, eve := newSigner(t), newSigner(t)
	for _, tc := range []struct {
		name string
		sign bool
		want error
	}{
		{"unsigned", false, registry.ErrNotSigned},
		{"other key", true, sign.ErrSignatureMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := dev.ref(t, "team/"+strings.ReplaceAll(tc.name, " ", "-")+":1.4.0")
			if _, err := c.Push(ctx, b, src); err != nil {
				t.Fatal(err)
			}
			if tc.sign {
				if _, err := c.Sign(ctx, src, b.Digest(), eve); err != nil {
					t.Fatal(err)
				}
			}
			prod.log.take()
			_, err := c.Copy(ctx, src, prod.ref(t, "platform/shop"), registry.CopyOptions{Verifier: alice})
			if !errors.Is(err, tc.want) {
				t.Fatalf("copy = %v, want %v", err, tc.want)
			}
			var rerr *registry.Error
			if !errors.As(err, &rerr) || rerr.Op != "copy" || !strings.Contains(err.Error(), src.Name()+" to ") {
				t.Errorf("err = %q, want a copy *Error naming the source", err)
			}
			if w := writes(prod.log.take()); len(w) != 0 {
				t.Errorf("a refused copy wrote %v", w)
			}
		})
	}
}

// A version that names other content at the destination is refused before
// anything is written, unless forced; names such as latest move freely.
func TestCopyVersionRule(t *testing.T) {
	ctx := t.Context()
	dev, prod := startMem(t, nil), startMem(t, nil)
	c := plainClient()
	b1, b2 := testBundle(t, "1.4.0", 1), testBundle(t, "1.4.0", 2)
	dst := prod.ref(t, "platform/shop:1.4.0")
	if _, err := c.Push(ctx, b1, dst, "latest"); err != nil {
		t.Fatal(err)
	}
	src := dev.ref(t, "team/shop:1.4.0")
	if _, err := c.Push(ctx, b2, src); err != nil {
		t.Fatal(err)
	}

	prod.log.take()
	_, err := c.Copy(ctx, src, dst, registry.CopyOptions{})
	var ve *registry.VersionExistsError
	if !errors.As(err, &ve) || !errors.Is(err, registry.ErrVersionExists) {
		t.Fatalf("copy over another 1.4.0 = %v, want a *VersionExistsError", err)
	}
	if ve.Tag != "1.4.0" || ve.Existing != b1.Digest() || ve.New != b2.Digest() || ve.Repo != dst.Repo() {
		t.Errorf("error = %+v", ve)
	}
	for _, d := range []digest.Digest{b1.Digest(), b2.Digest()} {
		if !strings.Contains(err.Error(), d.String()) {
			t.Errorf("err = %q, want it to name %s", err, d)
		}
	}
	if w := writes(prod.log.take()); len(w) != 0 {
		t.Errorf("a refused copy wrote %v", w)
	}

	// latest is a name, not a version: a copy to 1.5.0 may move it.
	res, err := c.Copy(ctx, src, dst.WithTag("1.5.0"), registry.CopyOptions{Tags: []string{"latest"}})
	if err != nil {
		t.Fatal(err)
	}
	if u := res.Tags[1]; u.Tag != "latest" || !u.Changed || u.Previous != b1.Digest() {
		t.Errorf("latest: %+v", u)
	}

	res, err = c.Copy(ctx, src, dst, registry.CopyOptions{Force: true})
	if err != nil {
		t.Fatalf("forced copy: %v", err)
	}
	if u := res.Tags[0]; !u.Changed || u.Previous != b1.Digest() {
		t.Errorf("forced 1.4.0: %+v", u)
	}
	if d, err := c.Resolve(ctx, dst); err != nil || d.Digest != b2.Digest() {
		t.Errorf("1.4.0 names %s, %v; want %s", d.Digest, err, b2.Digest())
	}
}

func TestCheckVersions(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b1, b2 := testBundle(t, "1.4.0", 1), testBundle(t, "1.4.0", 2)
	ref := m.ref(t, "shop:1.4.0")
	if err := c.CheckVersions(ctx, ref, b1.Digest()); err != nil {
		t.Fatalf("no repository yet: %v", err)
	}
	if _, err := c.Push(ctx, b1, ref, "latest", "v2.0.0"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ref  registry.Reference
		d    digest.Digest
		tags []string
		bad  string // the tag refused, "" for none
	}{
		{"same content", ref, b1.Digest(), []string{"latest"}, ""},
		{"other content", ref, b2.Digest(), nil, "1.4.0"},
		{"names move", ref.WithTag("1.5.0"), b2.Digest(), []string{"latest"}, ""},
		{"extra version", ref.WithTag("1.5.0"), b2.Digest(), []string{"v2.0.0"}, "v2.0.0"},
		{"new version", ref.WithTag("1.5.0"), b2.Digest(), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CheckVersions(ctx, tc.ref, tc.d, tc.tags...)
			var ve *registry.VersionExistsError
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.bad != "" && (!errors.As(err, &ve) || ve.Tag != tc.bad || ve.Existing != b1.Digest()):
				t.Errorf("err = %v, want version %s refused", err, tc.bad)
			}
		})
	}
	for tag, want := range map[string]bool{"1.4.0": true, "v1.5.0-rc.1": true, "latest": false, "stable": false, "v1": false} {
		if registry.IsVersion(tag) != want {
			t.Errorf("IsVersion(%q) = %v", tag, !want)
		}
	}
}

// When the destination has signatures of its own, the source's new ones
// are appended and every one still verifies.
func TestCopyMergesSignatures(t *testing.T) {
	ctx := t.Context()
	dev, prod := startMem(t, nil), startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	src, dst := dev.ref(t, "shop:1.4.0"), prod.ref(t, "shop:1.4.0")
	if _, err := c.Push(ctx, b, src); err != nil {
		t.Fatal(err)
	}
	dev1, prodKey, dev2 := newSigner(t), newSigner(t), newSigner(t)
	if _, err := c.Sign(ctx, src, b.Digest(), dev1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Copy(ctx, src, dst, registry.CopyOptions{Verifier: dev1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(ctx, dst, b.Digest(), prodKey); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(ctx, src, b.Digest(), dev2); err != nil {
		t.Fatal(err)
	}

	res, err := c.Copy(ctx, src, dst, registry.CopyOptions{Verifier: dev2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signatures != 3 || res.SignaturesCopied != 1 {
		t.Errorf("signatures: %d, %d copied; want 3, 1", res.Signatures, res.SignaturesCopied)
	}
	for name, k := range map[string]signature.Verifier{"dev1": dev1, "prod": prodKey, "dev2": dev2} {
		if _, err := c.Verify(ctx, dst, k); err != nil {
			t.Errorf("%s's signature at the destination: %v", name, err)
		}
	}
	// Nothing new at the source: nothing written.
	prod.log.take()
	if _, err := c.Copy(ctx, src, dst, registry.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := writes(prod.log.take()); len(w) != 0 {
		t.Errorf("copy with nothing new wrote %v", w)
	}
}

// OCI 1.1 referrers (here an SBOM-like artifact) travel with the release,
// through the referrers tag schema of a registry without the API.
func TestCopyReferrers(t *testing.T) {
	ctx := t.Context()
	dev, prod := startMem(t, nil), startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	src, dst := dev.ref(t, "shop:1.4.0"), prod.ref(t, "shop")
	if _, err := c.Push(ctx, b, src); err != nil {
		t.Fatal(err)
	}
	srcRepo := orasRepo(t, src)
	sbom := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	layer := ocispec.Descriptor{MediaType: "application/spdx+json", Digest: digest.FromBytes(sbom), Size: int64(len(sbom))}
	if err := srcRepo.Blobs().Push(ctx, layer, bytes.NewReader(sbom)); err != nil {
		t.Fatal(err)
	}
	subject := b.Descriptor
	referrer, err := oras.PackManifest(ctx, srcRepo, oras.PackManifestVersion1_1, "application/spdx+json", oras.PackManifestOptions{
		Subject: &subject,
		Layers:  []ocispec.Descriptor{layer},
	})
	if err != nil {
		t.Fatal(err)
	}

	res, err := c.Copy(ctx, src, dst, registry.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Referrers != 1 {
		t.Errorf("referrers = %d, want 1", res.Referrers)
	}
	var found []ocispec.Descriptor
	if err := orasRepo(t, dst).Referrers(ctx, subject, "", func(rs []ocispec.Descriptor) error {
		found = append(found, rs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Digest != referrer.Digest {
		t.Fatalf("referrers at the destination = %+v, want %s", found, referrer.Digest)
	}
	if ok, err := orasRepo(t, dst).Blobs().Exists(ctx, layer); err != nil || !ok {
		t.Errorf("the referrer's layer is not at the destination: %v, %v", ok, err)
	}
}

// A source that sends other bytes than its manifest describes is caught
// before the copy is tagged.
func TestCopyDetectsTampering(t *testing.T) {
	ctx := t.Context()
	b := testBundle(t, "1.4.0", 1)
	dev := startMem(t, tamper(b.LayerDescriptor.Digest.String(), func(p []byte) []byte {
		p = bytes.Clone(p)
		p[len(p)/2] ^= 0xff
		return p
	}))
	prod := startMem(t, nil)
	c := plainClient()
	src := dev.ref(t, "shop:1.4.0")
	if _, err := c.Push(ctx, b, src); err != nil {
		t.Fatal(err)
	}
	_, err := c.Copy(ctx, src, prod.ref(t, "shop"), registry.CopyOptions{})
	var dm *bundles.DigestMismatchError
	if !errors.Is(err, registry.ErrDigestMismatch) || !errors.As(err, &dm) || dm.Blob != "layer" {
		t.Fatalf("copy = %v, want a digest mismatch of the layer", err)
	}
	if _, err := c.Resolve(ctx, prod.ref(t, "shop:1.4.0")); !errors.Is(err, registry.ErrNotFound) && !errors.Is(err, registry.ErrRepositoryNotFound) {
		t.Errorf("resolve 1.4.0 at the destination = %v, want not found", err)
	}
}

func TestCopyRefusesBadInput(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	if _, err := c.Push(ctx, b, m.ref(t, "shop:1.4.0")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, src, dst, want string
	}{
		{"no source tag", "shop", "other", "no tag or digest"},
		{"destination digest", "shop:1.4.0", "other@" + b.Digest().String(), "not to a digest"},
		{"missing tag", "shop:9.9.9", "other", "tag 9.9.9 not found"},
		{"bad extra tag", "shop:1.4.0", "other:1.4_0", "no underscores"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.log.take()
			_, err := c.Copy(ctx, m.ref(t, tc.src), m.ref(t, tc.dst), registry.CopyOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("copy = %v, want an error saying %q", err, tc.want)
			}
			if w := writes(m.log.take()); len(w) != 0 {
				t.Errorf("wrote %v", w)
			}
		})
	}
}

// On one Distribution registry, blobs are mounted from the source
// repository instead of sent again.
func TestCopyMountsOnOneRegistry(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	src := distRef(t, r, "dev/shop:1.4.0")
	if _, err := c.Push(ctx, b, src); err != nil {
		t.Fatal(err)
	}
	res, err := c.Copy(ctx, src, distRef(t, r, "prod/shop"), registry.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsMounted != 2 || res.BlobsCopied != 0 || res.BytesCopied != int64(len(b.Manifest)) {
		t.Errorf("copy on one registry: %d mounted, %d copied, %d bytes sent; want 2, 0 and only the manifest", res.BlobsMounted, res.BlobsCopied, res.BytesCopied)
	}
	got, err := c.Pull(ctx, distRef(t, r, "prod/shop:1.4.0"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != b.Digest() {
		t.Errorf("pulled %s, want %s", got.Digest(), b.Digest())
	}
}

func orasRepo(t *testing.T, ref registry.Reference) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(ref.Repo())
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	return repo
}

// BenchmarkCopy promotes a release to an empty registry each time, so
// every blob streams from one registry to the other.
func BenchmarkCopy(b *testing.B) {
	dev, prod := startMem(b, nil), startMem(b, nil)
	c := plainClient()
	bundle := bigBundle(b, benchSize)
	src := dev.ref(b, "bench:1.0.0")
	if _, err := c.Push(b.Context(), bundle, src); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Sign(b.Context(), src, bundle.Digest(), newSigner(b)); err != nil {
		b.Fatal(err)
	}
	dst := prod.ref(b, "bench")
	b.SetBytes(bundle.LayerDescriptor.Size)
	for b.Loop() {
		b.StopTimer()
		prod.reset()
		b.StartTimer()
		res, err := c.Copy(b.Context(), src, dst, registry.CopyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if res.BlobsCopied != 4 {
			b.Fatalf("copied %d blobs, want 4", res.BlobsCopied)
		}
	}
}

// BenchmarkCopyUnchanged promotes a release the destination has: reads and
// HEADs only.
func BenchmarkCopyUnchanged(b *testing.B) {
	dev, prod := startMem(b, nil), startMem(b, nil)
	c := plainClient()
	bundle := bigBundle(b, benchSize)
	src := dev.ref(b, "bench:1.0.0")
	if _, err := c.Push(b.Context(), bundle, src); err != nil {
		b.Fatal(err)
	}
	dst := prod.ref(b, "bench")
	if _, err := c.Copy(b.Context(), src, dst, registry.CopyOptions{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Copy(b.Context(), src, dst, registry.CopyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
