package registry_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// The tests below run against the CNCF Distribution registry Argo CD and
// Flux users run, not a fake: its answers (error codes, redirects, HEAD
// behaviour) are the ones galley must handle.

func distRef(t *testing.T, r *testregistry.Registry, s string) registry.Reference {
	t.Helper()
	ref, err := registry.ParseReference("oci://" + r.Ref(s))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestDistributionEndToEnd(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	c := plainClient()
	b1, b2 := testBundle(t, "1.0.0", 1), testBundle(t, "1.1.0", 2)

	res, err := c.Push(ctx, b1, distRef(t, r, "team/shop:1.0.0"), "latest")
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsPushed != 2 || !res.ManifestPushed {
		t.Errorf("first push: %+v", res)
	}
	res, err = c.Push(ctx, b1, distRef(t, r, "team/shop:1.0.0"), "latest")
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsPushed != 0 || res.ManifestPushed || slices.ContainsFunc(res.Tags, func(u registry.TagUpdate) bool { return u.Changed }) {
		t.Errorf("re-push changed something: %+v", res)
	}
	if _, err := c.Push(ctx, b2, distRef(t, r, "team/shop:1.1.0"), "latest"); err != nil {
		t.Fatal(err)
	}

	for ref, want := range map[string]*bundles.Bundle{
		"team/shop:1.0.0":                   b1,
		"team/shop:latest":                  b2,
		"team/shop@" + b1.Digest().String(): b1,
	} {
		got, err := c.Pull(ctx, distRef(t, r, ref))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if !bytes.Equal(got.Manifest, want.Manifest) || !bytes.Equal(got.Layer, want.Layer) {
			t.Errorf("pull %s: got %s, want %s", ref, got.Digest(), want.Digest())
		}
	}

	signer := newSigner(t)
	if _, err := c.Sign(ctx, distRef(t, r, "team/shop"), b2.Digest(), signer); err != nil {
		t.Fatal(err)
	}
	v, err := c.Verify(ctx, distRef(t, r, "team/shop:latest"), signer)
	if err != nil {
		t.Fatal(err)
	}
	if v.Reference.Digest != b2.Digest() {
		t.Errorf("verified %s, want %s", v.Reference, b2.Digest())
	}
	if _, err := c.Verify(ctx, distRef(t, r, "team/shop:1.0.0"), signer); !errors.Is(err, registry.ErrNotSigned) {
		t.Errorf("verify unsigned 1.0.0: %v", err)
	}
	if _, err := c.Verify(ctx, distRef(t, r, "team/shop:1.1.0"), newSigner(t)); !errors.Is(err, sign.ErrSignatureMismatch) {
		t.Errorf("verify with another key: %v", err)
	}

	vs, err := c.ListVersions(ctx, distRef(t, r, "team/shop"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Tag+" "+v.Digest.String()+" "+yes(v.Signed))
	}
	want := []string{
		"1.0.0 " + b1.Digest().String() + " unsigned",
		"1.1.0 " + b2.Digest().String() + " signed",
		"latest " + b2.Digest().String() + " signed",
	}
	if !slices.Equal(got, want) {
		t.Errorf("list:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func yes(signed bool) string {
	if signed {
		return "signed"
	}
	return "unsigned"
}

// A blob rewritten in the registry's storage is served as it is; pull must
// catch it from the bytes.
func TestDistributionTamperedLayer(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		rewrite func([]byte) []byte
	}{
		{"same size", func(p []byte) []byte { p = bytes.Clone(p); p[len(p)/2] ^= 0xff; return p }},
		{"longer", func(p []byte) []byte { return append(bytes.Clone(p), '\n') }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testregistry.Start(t)
			c := plainClient()
			b := testBundle(t, "1.0.0", 1)
			ref := distRef(t, r, "shop:1.0.0")
			if _, err := c.Push(ctx, b, ref); err != nil {
				t.Fatal(err)
			}
			path := r.BlobPath(b.LayerDescriptor.Digest.String())
			if err := os.WriteFile(path, tc.rewrite(b.Layer), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := c.Pull(ctx, ref)
			if !errors.Is(err, registry.ErrDigestMismatch) {
				t.Fatalf("pull tampered layer = %v, %v; want a digest mismatch", got, err)
			}
			if !strings.Contains(err.Error(), "layer blob "+b.LayerDescriptor.Digest.String()) {
				t.Errorf("err = %q, want it to name the layer", err)
			}
			// Streamed to a file, the same, and no file is left.
			dir := t.TempDir()
			got, err = c.PullTo(ctx, ref, dir)
			if !errors.Is(err, registry.ErrDigestMismatch) || !strings.Contains(err.Error(), "layer blob "+b.LayerDescriptor.Digest.String()) {
				t.Fatalf("PullTo tampered layer = %v, %v; want a digest mismatch naming the layer", got, err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("PullTo of a tampered layer left %v", left)
			}
		})
	}
}

func TestDistributionErrors(t *testing.T) {
	ctx := t.Context()
	const secret = "s3cret-Distribution-pw"
	r := testregistry.Start(t, testregistry.WithAuth("alice", secret))
	b := testBundle(t, "1.0.0", 1)
	good := registry.New(registry.Options{PlainHTTP: true, Username: "alice", Password: secret})
	if _, err := good.Push(ctx, b, distRef(t, r, "shop:1.0.0")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		client *registry.Client
		ref    string
		want   error
		msg    string
	}{
		{"wrong password", registry.New(registry.Options{PlainHTTP: true, Username: "alice", Password: "not-" + secret}), "shop:1.0.0", registry.ErrUnauthorized, "rejected the credentials"},
		{"no credentials", plainClient(), "shop:1.0.0", registry.ErrUnauthorized, "wants credentials"},
		{"unknown repository", good, "nope:1.0.0", registry.ErrRepositoryNotFound, "repository " + r.Host() + "/nope not found"},
		{"missing tag", good, "shop:2.0.0", registry.ErrNotFound, "tag 2.0.0 not found in " + r.Host() + "/shop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.Pull(ctx, distRef(t, r, tc.ref))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.msg) || strings.Contains(msg, secret) || strings.Contains(msg, "\n") {
				t.Errorf("err = %q, want one line with %q and no password", msg, tc.msg)
			}
		})
	}

	// A wrong password on push fails before any blob is written.
	bad := registry.New(registry.Options{PlainHTTP: true, Username: "alice", Password: "wrong"})
	if _, err := bad.Push(ctx, testBundle(t, "2.0.0", 2), distRef(t, r, "shop:2.0.0")); !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("push with a wrong password: %v", err)
	}

	r.Stop()
	_, err := good.Pull(ctx, distRef(t, r, "shop:1.0.0"))
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), "registry "+r.Host()+" unreachable") {
		t.Errorf("pull from a stopped registry: %v", err)
	}
}

// A bundle read from a layout pushes its layer from the file, and PullTo
// streams it back to a file: the same bytes both ways, checked by digest.
func TestDistributionStreamedLayer(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	c := plainClient()
	mem := testBundle(t, "1.0.0", 1)
	layout := filepath.Join(t.TempDir(), "layout")
	if err := bundles.WriteLayout(layout, mem, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	b, err := bundles.ReadLayout(layout, "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Layer != nil || b.LayerFile == "" {
		t.Fatalf("ReadLayout held the layer in memory (%d bytes), want it in its file", len(b.Layer))
	}
	ref := distRef(t, r, "team/shop:1.0.0")
	res, err := c.Push(ctx, b, ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != mem.Digest() || res.BlobsPushed != 2 {
		t.Fatalf("push from the layout: %+v, want %s and 2 blobs", res, mem.Digest())
	}

	dir := t.TempDir()
	got, err := c.PullTo(ctx, ref, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Layer != nil || !got.TempLayer || filepath.Dir(got.LayerFile) != dir {
		t.Fatalf("PullTo: Layer %d bytes, LayerFile %q, TempLayer %v; want a temporary file in %s", len(got.Layer), got.LayerFile, got.TempLayer, dir)
	}
	data, err := os.ReadFile(got.LayerFile)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != mem.Digest() || !bytes.Equal(data, mem.Layer) || got.Verify() != nil {
		t.Fatalf("PullTo gave %s, want %s with the same layer", got.Digest(), mem.Digest())
	}
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("after Close %s holds %v", dir, left)
	}
}
