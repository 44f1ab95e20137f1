package airgap_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testtools"
	"github.com/galley-dev/galley/registry"
)

const keyPassword = "airgap-test-pw"

// keyPair is a cosign key pair on disk, loaded.
type keyPair struct {
	priv, pub string
	signer    signature.SignerVerifier
	verifier  signature.Verifier
}

func newKeyPair(t *testing.T, name string) keyPair {
	t.Helper()
	pf := func(bool) ([]byte, error) { return []byte(keyPassword), nil }
	priv, pub, err := sign.GenerateKeyPair(pf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kp := keyPair{priv: filepath.Join(dir, name+".key"), pub: filepath.Join(dir, name+".pub")}
	if err := os.WriteFile(kp.priv, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.pub, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	if kp.signer, err = sign.LoadSigner(t.Context(), kp.priv, pf); err != nil {
		t.Fatal(err)
	}
	if kp.verifier, err = sign.LoadVerifier(t.Context(), kp.pub); err != nil {
		t.Fatal(err)
	}
	return kp
}

func plainOptions() registry.Options { return registry.Options{PlainHTTP: true} }

func mustRef(t testing.TB, s string) registry.Reference {
	t.Helper()
	ref, err := registry.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// writeImage pushes img (a v1.Image or v1.ImageIndex) to ref
// (host/repo:tag): go-containerregistry writes it as an OCI layout, oras
// copies that to the registry. It returns the digest.
func writeImage(t testing.TB, ref string, img any) v1.Hash {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var desc ocispec.Descriptor
	switch x := img.(type) {
	case v1.Image:
		err = p.AppendImage(x)
		desc = describe(t, x)
	case v1.ImageIndex:
		err = p.AppendIndex(x)
		desc = describe(t, x)
	default:
		t.Fatalf("writeImage: %T", img)
	}
	if err != nil {
		t.Fatal(err)
	}
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(ref, ":")
	repoName, tag := ref[:i], ref[i+1:]
	repo, err := orasremote.NewRepository(repoName)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if err := oras.CopyGraph(t.Context(), store, repo, desc, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	if err := repo.Tag(t.Context(), desc, tag); err != nil {
		t.Fatalf("tagging %s: %v", ref, err)
	}
	h, err := v1.NewHash(desc.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// describe returns the descriptor of an image or index.
func describe(t testing.TB, x interface {
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}) ocispec.Descriptor {
	t.Helper()
	mt, err := x.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := x.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: string(mt), Digest: digest.FromBytes(raw), Size: int64(len(raw))}
}

func randomImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withPlatform sets the platform in the image's config, as a real
// multi-arch build does.
func withPlatform(t testing.TB, img v1.Image, p *v1.Platform) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// outsideImages are the images of the test stack, made and pushed to the
// "outside" registry.
type outsideImages struct {
	// refs as the stack writes them
	postgres, web, worker, sidecar string
	// digests of what they name upstream
	digests map[string]v1.Hash
}

// pushOutsideImages makes a single-platform image (Docker media types), a
// multi-arch OCI index, an image sharing layers with one of the index's,
// and an image referenced by tag and digest.
func pushOutsideImages(t *testing.T, host string) outsideImages {
	t.Helper()
	o := outsideImages{
		postgres: host + "/library/postgres:16.4",
		web:      host + "/acme/web:1.0",
		worker:   host + "/acme/worker:1.0",
		digests:  map[string]v1.Hash{},
	}
	o.digests[o.postgres] = writeImage(t, o.postgres, randomImage(t, 4096, 2))

	amdPlatform := &v1.Platform{OS: "linux", Architecture: "amd64"}
	armPlatform := &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	amd64 := withPlatform(t, randomImage(t, 2048, 2), amdPlatform)
	arm64 := withPlatform(t, randomImage(t, 2048, 2), armPlatform)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: amdPlatform}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: armPlatform}},
	)
	o.digests[o.web] = writeImage(t, o.web, idx)

	// The worker is the web amd64 image plus a layer: the export holds
	// the shared layers once.
	extra, err := random.Layer(1024, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := mutate.AppendLayers(amd64, extra)
	if err != nil {
		t.Fatal(err)
	}
	o.digests[o.worker] = writeImage(t, o.worker, worker)

	sidecar := host + "/acme/sidecar:2.0"
	d := writeImage(t, sidecar, randomImage(t, 512, 1))
	o.sidecar = sidecar + "@" + d.String()
	o.digests[o.sidecar] = d
	return o
}

// writeStack writes a stack with one chart whose Deployment runs the
// images (an init container and a sidecar included), delivered by Argo CD
// and Flux from repo (oci://host/path).
func writeStack(t *testing.T, images outsideImages, repo string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"stack.cue": fmt.Sprintf(`package shop

stack: {
	name:    "shop"
	version: "1.0.0"
	apps: web: {
		namespace: "shop"
		chart: path: "charts/web"
		values: images: {web: %q, worker: %q, sidecar: %q, postgres: %q}
	}
	delivery: argocd: repository: %q
	delivery: flux: repository: %q
}
`, images.web, images.worker, images.sidecar, images.postgres, repo, repo),
		"charts/web/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.0\"\n",
		"charts/web/values.yaml": "images: {}\n",
		"charts/web/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
        - name: migrate
          image: "{{ .Values.images.postgres }}"
      containers:
        - name: web
          image: {{ .Values.images.web }}
        - name: sidecar
          image: '{{ .Values.images.sidecar }}'
`,
		"charts/web/templates/cronjob.yaml": `apiVersion: batch/v1
kind: CronJob
metadata:
  name: worker
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: worker
              image: {{ .Values.images.worker }}
              env:
                - name: MIGRATION_IMAGE
                  value: {{ .Values.images.postgres }}
`,
	}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func compileStack(t *testing.T, dir string) *compiler.Result {
	t.Helper()
	res, err := compiler.Compile(t.Context(), dir, compiler.Options{GalleyVersion: "airgap-test", Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("compiling the test stack: %v", err)
	}
	return res
}

// cosign runs a real cosign with a private HOME and the key password, as
// the compat tests do.
func cosign(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := testtools.Command(t, name, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"COSIGN_PASSWORD="+keyPassword, "TUF_ROOT="+filepath.Join(home, ".sigstore", "root"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// cosignVerify verifies offline with a key, as Flux does.
func cosignVerify(t *testing.T, name, pub, ref string) (string, error) {
	t.Helper()
	return cosign(t, name, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", ref)
}

// catalog lists the repositories of a registry.
func catalog(t *testing.T, r *testregistry.Registry) []string {
	t.Helper()
	resp, err := http.Get("http://" + r.Host() + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.Repositories
}
