package charts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/provenance"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testtools"
)

// sharedCharts is ../shared/charts beside the repository root: real
// upstream charts, read, never copied into the repository.
func sharedCharts(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(filepath.Dir(dir), "shared", "charts")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the shared charts are missing: %v", err)
	}
	return p
}

// packageChart packages the shared chart name as version (as `helm
// package --version` would) with Helm's SDK and returns the .tgz path.
func packageChart(t testing.TB, name, version string) string {
	t.Helper()
	return packageVariant(t, name, version, "")
}

// packageVariant packages the chart with note appended to its
// description: the same version with other content, as a chart published
// again would be.
func packageVariant(t testing.TB, name, version, note string) string {
	t.Helper()
	ch, err := loader.Load(filepath.Join(sharedCharts(t), name))
	if err != nil {
		t.Fatal(err)
	}
	ch.Metadata.Version = version
	ch.Metadata.Description += note
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ociRegistry is a real Distribution registry with Helm charts pushed to
// it the way `helm push` stores them.
type ociRegistry struct {
	*testregistry.Registry
}

func startRegistry(t testing.TB, opts ...testregistry.Option) *ociRegistry {
	return &ociRegistry{testregistry.Start(t, opts...)}
}

func (r *ociRegistry) repository(t testing.TB, name string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(r.Ref(name))
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if r.Username() != "" {
		repo.Client = &auth.Client{Credential: auth.StaticCredential(r.Host(), auth.Credential{Username: r.Username(), Password: r.Password()})}
	}
	return repo
}

// URL is the oci:// URL of chart in the charts/ namespace.
func (r *ociRegistry) URL(chart string) string { return "oci://" + r.Ref("charts/"+chart) }

// push pushes the chart archive tgz (and its provenance file, if prov is
// not empty) as charts/<name>:<version>, with Helm's media types, and
// returns the manifest descriptor.
func (r *ociRegistry) push(t testing.TB, tgz string, prov []byte) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	ch, err := loader.Load(tgz)
	if err != nil {
		t.Fatal(err)
	}
	repo := r.repository(t, "charts/"+ch.Name())
	config, err := json.Marshal(ch.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	cdesc, err := oras.PushBytes(ctx, repo, charts.ConfigMediaType, config)
	if err != nil {
		t.Fatal(err)
	}
	ldesc, err := oras.PushBytes(ctx, repo, charts.ChartLayerMediaType, data)
	if err != nil {
		t.Fatal(err)
	}
	layers := []ocispec.Descriptor{ldesc}
	if len(prov) > 0 {
		pdesc, err := oras.PushBytes(ctx, repo, charts.ProvLayerMediaType, prov)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, pdesc)
	}
	m, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    layers,
		Annotations: map[string]string{
			ocispec.AnnotationTitle:   ch.Name(),
			ocispec.AnnotationVersion: ch.Metadata.Version,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := oras.TagBytes(ctx, repo, ocispec.MediaTypeImageManifest, m, strings.ReplaceAll(ch.Metadata.Version, "+", "_"))
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// helmRepo is a classic Helm repository served over HTTP on 127.0.0.1,
// its index.yaml written by Helm's own repo.IndexDirectory.
type helmRepo struct {
	dir  string
	srv  *httptest.Server
	mu   sync.Mutex
	user string
	pass string
	// requests counts the requests served, by path.
	requests map[string]int
}

func startRepo(t testing.TB, user, pass string) *helmRepo {
	t.Helper()
	r := &helmRepo{dir: t.TempDir(), user: user, pass: pass, requests: map[string]int{}}
	files := http.FileServer(http.Dir(r.dir))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests[req.URL.Path]++
		r.mu.Unlock()
		if r.user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *helmRepo) URL() string { return r.srv.URL }

// Stop stops serving: any request galley makes after it fails.
func (r *helmRepo) Stop() { r.srv.Close() }

// add copies the chart archive into the repository and reindexes it.
// With baseURL the index holds absolute URLs under it, else relative ones.
func (r *helmRepo) add(t testing.TB, tgz string, prov []byte, absolute bool) {
	t.Helper()
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(r.dir, filepath.Base(tgz))
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(prov) > 0 {
		if err := os.WriteFile(dst+".prov", prov, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.reindex(t, absolute)
}

func (r *helmRepo) reindex(t testing.TB, absolute bool) {
	t.Helper()
	base := ""
	if absolute {
		base = r.URL() + "/"
	}
	idx, err := repo.IndexDirectory(r.dir, base)
	if err != nil {
		t.Fatal(err)
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(r.dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *helmRepo) served(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[path]
}

// writeStack writes a stack directory whose apps block is apps.
func writeStack(t testing.TB, dir, apps string, files map[string]string) string {
	t.Helper()
	src := "package demo\n\nstack: {\n\tname: \"demo\"\n\tversion: \"1.0.0\"\n\tapps: {\n" + apps + "\n\t}\n}\n"
	files["stack.cue"] = src
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// build compiles the stack in dir with no render cache, so each build
// really renders the charts it reads, and returns the bundle digest and
// the chart digest of each app.
func build(t testing.TB, dir string, o charts.Options) (string, map[string]string, error) {
	t.Helper()
	res, err := compiler.Compile(context.Background(), dir, compiler.Options{Charts: o, Jobs: 2})
	if err != nil {
		return "", nil, err
	}
	apps := map[string]string{}
	for _, a := range res.Index.Apps {
		apps[a.Name] = a.Chart.Name + " " + a.Chart.Version + " " + a.Chart.Digest
	}
	return res.Bundle.Digest().String(), apps, nil
}

func mustBuild(t testing.TB, dir string, o charts.Options) (string, map[string]string) {
	t.Helper()
	d, apps, err := build(t, dir, o)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return d, apps
}

func fileDigest(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b).String()
}

func readLock(t testing.TB, dir string) *charts.Lock {
	t.Helper()
	l, err := charts.ReadLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l == nil {
		t.Fatal("no galley.lock")
	}
	return l
}

// entry returns the lock's entry for chart name, failing if there is not
// exactly one.
func entry(t testing.TB, l *charts.Lock, name string) charts.Entry {
	t.Helper()
	var found []charts.Entry
	for _, e := range l.Charts {
		if e.Name == name {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("lock has %d entries for %s: %+v", len(found), name, l.Charts)
	}
	return found[0]
}

// cosignKeys writes a cosign key pair (galley writes cosign's format) into
// dir and returns the private and public key paths.
func cosignKeys(t testing.TB, dir, prefix string) (priv, pub string) {
	t.Helper()
	privPEM, pubPEM, err := sign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("test-pass"), nil })
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// cosignSign signs ref (host/repo@sha256:...) with the real cosign v2 CLI,
// in its tag-based format, with no transparency log.
func cosignSign(t testing.TB, key, ref string) {
	t.Helper()
	cmd := testtools.Command(t, "cosign-v2", "sign", "--key", key, "--tlog-upload=false", "--allow-http-registry", "--yes", ref)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=test-pass", "HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cosign sign %s: %v\n%s", ref, err, out.String())
	}
}

// pgpKeyring makes a GnuPG key and writes its public keyring into dir;
// the returned signatory signs provenance files as `helm package --sign`.
func pgpKeyring(t testing.TB, dir, name string) (*provenance.Signatory, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "galley test", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".gpg")
	if err := os.WriteFile(p, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &provenance.Signatory{Entity: e, KeyRing: openpgp.EntityList{e}}, p
}

func clearSign(t testing.TB, s *provenance.Signatory, tgz string) []byte {
	t.Helper()
	// As `helm package --sign` does in Helm 4: the chart's metadata as
	// YAML, then the archive's bytes under its base name.
	ch, err := loader.Load(tgz)
	if err != nil {
		t.Fatal(err)
	}
	md, err := yaml.Marshal(ch.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := s.ClearSign(data, filepath.Base(tgz), md)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(prov)
}
