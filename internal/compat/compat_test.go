package compat

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// cosigns are the cosign majors users run, with the flags each needs to
// sign offline in the tag-based format (.sig) galley writes and reads.
// cosign v3 signs into a Sigstore bundle referrer by default, and takes its
// service URLs from a TUF signing config: both are switched off here
// (cosign cmd/cosign/cli/options/sign.go: --new-bundle-format,
// --use-signing-config).
var cosigns = []struct {
	name     string
	signArgs []string
}{
	{"cosign-v2", []string{"--tlog-upload=false"}},
	{"cosign-v3", []string{"--tlog-upload=false", "--new-bundle-format=false", "--use-signing-config=false"}},
}

// verifyArgs are the flags of an offline key verification, as the issue
// and Flux (key-based, IgnoreTlog) use it.
func verifyArgs(pub string, ref registry.Reference) []string {
	return []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", ref.Name()}
}

func signArgs(extra []string, key string, ref registry.Reference) []string {
	args := []string{"sign", "--key", key, "--allow-http-registry", "--yes"}
	return append(append(args, extra...), ref.Name())
}

// cosign verify accepts galley's signature, and only with the right key.
func TestCosignVerifiesGalleySignature(t *testing.T) {
	res := exampleBundle(t)
	p := push(t, res.Bundle, "platform/data", "1.4.0")
	key := galleyKeyPair(t, "galley")
	signer, err := sign.LoadSigner(t.Context(), key.priv, func(bool) ([]byte, error) { return []byte(keyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client().Sign(t.Context(), p.ref, p.bundle.Digest(), signer); err != nil {
		t.Fatal(err)
	}
	wrong := galleyKeyPair(t, "wrong")

	for _, c := range cosigns {
		t.Run(c.name, func(t *testing.T) {
			out := run(t, "", c.name, verifyArgs(key.pub, p.pinned)...)
			// cosign prints the verified payloads as JSON on stdout.
			if !strings.Contains(out, `"docker-manifest-digest":"`+p.bundle.Digest().String()+`"`) {
				t.Errorf("cosign verify output does not name the digest:\n%s", out)
			}
			t.Logf("%s verified %s", version(t, c.name), p.pinned.Name())

			// By tag too: cosign resolves it to the same digest.
			run(t, "", c.name, verifyArgs(key.pub, p.ref)...)

			if out, err := tool(t, "", c.name, verifyArgs(wrong.pub, p.pinned)...); err == nil {
				t.Errorf("cosign verify with the wrong key succeeded:\n%s", out)
			}
		})
	}
}

// A key made by `cosign generate-key-pair` signs with galley; cosign and
// galley both verify the result.
func TestCosignKeySignsWithGalley(t *testing.T) {
	for _, c := range cosigns {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			p := push(t, testBundle(t, "2.0.0"), "shop", "2.0.0")
			key := cosignKeyPair(t, c.name)
			signer, err := sign.LoadSigner(ctx, key.priv, sign.PasswordFromEnv(func(k string) (string, bool) {
				if k == sign.CosignPasswordEnv {
					return keyPassword, true
				}
				return "", false
			}))
			if err != nil {
				t.Fatalf("loading cosign's key: %v", err)
			}
			if _, err := client().Sign(ctx, p.ref, p.bundle.Digest(), signer); err != nil {
				t.Fatal(err)
			}
			for _, v := range cosigns {
				run(t, "", v.name, verifyArgs(key.pub, p.pinned)...)
			}
			verifier, err := sign.LoadVerifier(ctx, key.pub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client().Verify(ctx, p.ref, verifier); err != nil {
				t.Errorf("galley verify: %v", err)
			}
		})
	}
}

// A key made by galley signs with cosign; galley verifies cosign's
// signature, and a signature galley appends next to cosign's keeps both
// valid for cosign.
func TestGalleyVerifiesCosignSignature(t *testing.T) {
	for _, c := range cosigns {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			p := push(t, testBundle(t, "3.0.0"), "shop", "3.0.0")
			key := galleyKeyPair(t, "galley")
			run(t, "", c.name, signArgs(c.signArgs, key.priv, p.pinned)...)

			verifier, err := sign.LoadVerifier(ctx, key.pub)
			if err != nil {
				t.Fatal(err)
			}
			v, err := client().Verify(ctx, p.ref, verifier)
			if err != nil {
				t.Fatalf("galley verify of cosign's signature: %v", err)
			}
			if v.Reference.Digest != p.bundle.Digest() {
				t.Errorf("verified %s, want %s", v.Reference.Digest, p.bundle.Digest())
			}
			// The signature is where galley looks: the .sig tag, not a
			// referrer.
			if n, err := client().Signatures(ctx, p.ref, p.bundle.Digest()); err != nil || n != 1 {
				t.Errorf("signatures = %d, %v; want 1", n, err)
			}

			// galley appends its own signature to cosign's manifest.
			other := galleyKeyPair(t, "other")
			signer, err := sign.LoadSigner(ctx, other.priv, func(bool) ([]byte, error) { return []byte(keyPassword), nil })
			if err != nil {
				t.Fatal(err)
			}
			res, err := client().Sign(ctx, p.ref, p.bundle.Digest(), signer)
			if err != nil {
				t.Fatal(err)
			}
			if res.Signatures != 2 {
				t.Errorf("after galley appended: %d signatures, want 2", res.Signatures)
			}
			for _, pub := range []string{key.pub, other.pub} {
				run(t, "", c.name, verifyArgs(pub, p.pinned)...)
			}

			// Wrong key: galley refuses.
			wrong, err := sign.LoadVerifier(ctx, galleyKeyPair(t, "wrong").pub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client().Verify(ctx, p.ref, wrong); !errors.Is(err, sign.ErrSignatureMismatch) {
				t.Errorf("galley verify with the wrong key: %v", err)
			}
		})
	}
}

// Flux's own pull code (fluxcd/pkg/oci Client.Pull, the untar the
// source-controller uses) extracts exactly the tree galley packed.
func TestFluxPull(t *testing.T) {
	res := exampleBundle(t)
	p := push(t, res.Bundle, "platform/data", "1.4.0")
	for _, ref := range []registry.Reference{p.ref, p.pinned} {
		out := filepath.Join(t.TempDir(), "out")
		stdout := run(t, "", "fluxpull", "-insecure", ref.String(), out)
		var meta struct {
			Digest string `json:"digest"`
		}
		if err := json.Unmarshal([]byte(stdout[strings.Index(stdout, "{"):]), &meta); err != nil {
			t.Fatalf("fluxpull output: %v\n%s", err, stdout)
		}
		if !strings.HasSuffix(meta.Digest, "@"+p.bundle.Digest().String()) {
			t.Errorf("flux pulled %s, want digest %s", meta.Digest, p.bundle.Digest())
		}
		got, want := readDir(t, out), treeFiles(t, p.bundle)
		if !maps.Equal(got, want) {
			t.Errorf("flux extracted %d files, galley packed %d; differing: %v", len(got), len(want), diffKeys(got, want))
		}
	}
}

// oras reads the bundle: its manifest as pushed, and a copy into an OCI
// layout that galley reads back bit for bit.
func TestOras(t *testing.T) {
	res := exampleBundle(t)
	p := push(t, res.Bundle, "platform/data", "1.4.0")
	dir := t.TempDir()

	manifest := run(t, dir, "oras", "manifest", "fetch", "--plain-http", p.ref.Name())
	if !bytes.Equal([]byte(manifest), p.bundle.Manifest) {
		t.Errorf("oras manifest fetch:\n%s\nwant:\n%s", manifest, p.bundle.Manifest)
	}

	// oras pull saves only layers with a title annotation (files pushed by
	// oras); a galley bundle has none, and pull must still succeed.
	run(t, dir, "oras", "pull", "--plain-http", "-o", filepath.Join(dir, "pulled"), p.ref.Name())

	layout := filepath.Join(dir, "layout")
	run(t, dir, "oras", "cp", "--from-plain-http", p.ref.Name(), "--to-oci-layout", layout+":1.4.0")
	got, err := bundles.ReadLayout(layout, "1.4.0")
	if err != nil {
		t.Fatalf("reading the layout oras wrote: %v", err)
	}
	defer got.Close()
	if got.Digest() != p.bundle.Digest() || !bytes.Equal(layerBytes(t, got), p.bundle.Layer) {
		t.Errorf("oras copied %s, want %s", got.Digest(), p.bundle.Digest())
	}

	// And the other way: oras pushes galley's own layout, same digest.
	built := filepath.Join(dir, "built")
	if err := bundles.WriteLayout(built, p.bundle, "1.4.0"); err != nil {
		t.Fatal(err)
	}
	dst := p.ref
	dst.Repository = "copied/by-oras"
	run(t, dir, "oras", "cp", "--from-oci-layout", built+":1.4.0", "--to-plain-http", dst.Name())
	b, err := client().Pull(t.Context(), dst)
	if err != nil {
		t.Fatalf("pulling what oras pushed: %v", err)
	}
	if b.Digest() != p.bundle.Digest() {
		t.Errorf("oras pushed %s, want %s", b.Digest(), p.bundle.Digest())
	}
}

// crane accepts the manifest and validates the artifact.
func TestCrane(t *testing.T) {
	res := exampleBundle(t)
	p := push(t, res.Bundle, "platform/data", "1.4.0")
	manifest := run(t, "", "crane", "manifest", "--insecure", p.ref.Name())
	if !bytes.Equal([]byte(manifest), p.bundle.Manifest) {
		t.Errorf("crane manifest:\n%s\nwant:\n%s", manifest, p.bundle.Manifest)
	}
	digest := strings.TrimSpace(run(t, "", "crane", "digest", "--insecure", p.ref.Name()))
	if digest != p.bundle.Digest().String() {
		t.Errorf("crane digest = %s, want %s", digest, p.bundle.Digest())
	}
	// crane validate --fast checks the manifest, the config and that every
	// blob exists. The full mode also matches each layer against the image
	// config's rootfs.diff_ids, which an OCI artifact with the empty config
	// (what Argo CD and Flux take) cannot have: it must fail on that alone,
	// after digesting the layer without complaint.
	out := run(t, "", "crane", "validate", "--insecure", "--fast", "--remote", p.pinned.Name())
	if !strings.Contains(out, "PASS") {
		t.Errorf("crane validate --fast:\n%s", out)
	}
	out, err := tool(t, "", "crane", "validate", "--insecure", "--remote", p.pinned.Name())
	var problems []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL: ") {
			problems = append(problems, l)
		}
	}
	if err == nil || len(problems) != 1 || !strings.HasSuffix(problems[0], "validating layers: mismatched fs layers (1) and diff ids (0)") {
		t.Errorf("crane validate (full) should object to the missing diff_ids only; got %v:\n%s", err, out)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(manifest), &m); err != nil || m.ArtifactType != bundles.ArtifactType {
		t.Errorf("crane sees artifactType %q (%v)", m.ArtifactType, err)
	}
}

func diffKeys(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k)
		}
	}
	slices.Sort(d)
	if len(d) > 10 {
		d = d[:10]
	}
	return d
}

// version returns the first line of `<tool> version` that names it, for the
// log of which clients verified what.
func version(t *testing.T, name string) string {
	out, _ := tool(t, "", name, "version")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "GitVersion:") {
			return name + " " + strings.TrimSpace(strings.TrimPrefix(l, "GitVersion:"))
		}
	}
	return name
}

// testBundle is a small bundle for tests where the content does not matter,
// only that each test's digest differs.
func testBundle(t *testing.T, version string) *bundles.Bundle {
	t.Helper()
	tree := bundles.NewTree()
	if err := tree.Add("apps/web/configmap.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: "+version+"\n")); err != nil {
		t.Fatal(err)
	}
	b, err := bundles.Pack(tree, bundles.Metadata{Name: "shop", Version: version, Created: bundlesEpoch})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var bundlesEpoch, _ = bundles.CreatedTime(func(string) string { return "" })

// layerBytes reads a bundle's layer whether it is held in memory or, as
// ReadLayout leaves it, streamed from its file.
func layerBytes(t *testing.T, b *bundles.Bundle) []byte {
	t.Helper()
	r, err := b.OpenLayer()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
