package registry_test

import (
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/registry"
)

// testBundle packs a small tree shaped like a compiled platform; seed
// varies its content so tests can make distinct bundles.
func testBundle(t testing.TB, version string, seed int) *bundles.Bundle {
	t.Helper()
	tree := bundles.NewTree()
	files := map[string]string{
		bundles.IndexPath:              fmt.Sprintf(`{"schemaVersion":1,"galley":"test","stack":{"name":"shop","version":%q,"kubernetes":"1.33.0"},"apps":[{"name":"web","namespace":"shop","path":"apps/web","chart":{"name":"web","version":"1.0.0","digest":"sha256:0"},"syncWave":0,"dependsOn":null,"objects":1,"images":["nginx:1.27"]}],"images":["nginx:1.27"]}`, version),
		"apps/web/deployment.yaml":     fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    seed: %q\n", fmt.Sprint(seed)),
		"argocd/web.yaml":              "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n",
		"monitoring/rules/alerts.yaml": "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n",
	}
	for name, data := range files {
		if err := tree.Add(name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	return pack(t, tree, version)
}

// bigBundle packs files of incompressible-ish YAML totalling about size
// bytes, for benchmarks.
func bigBundle(t testing.TB, size int) *bundles.Bundle {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	tree := bundles.NewTree()
	const fileSize = 16 << 10
	for i := 0; i*fileSize < size; i++ {
		var b strings.Builder
		for b.Len() < fileSize {
			fmt.Fprintf(&b, "key%d: %x\n", r.IntN(1000), r.Uint64())
		}
		if err := tree.Add(fmt.Sprintf("apps/app%02d/file%04d.yaml", i%20, i), []byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
	return pack(t, tree, "1.0.0")
}

func pack(t testing.TB, tree *bundles.Tree, version string) *bundles.Bundle {
	t.Helper()
	b, err := bundles.Pack(tree, bundles.Metadata{
		Name:        "shop",
		Version:     version,
		Created:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Annotations: map[string]string{bundles.AnnotationStack: "shop"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requestLog records the requests a registry served, as "METHOD /path".
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, r.Method+" "+r.URL.Path)
}

// take returns the requests since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.reqs
	l.reqs = nil
	return r
}

// writes filters the requests that change the registry.
func writes(reqs []string) []string {
	var w []string
	for _, r := range reqs {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			w = append(w, r)
		}
	}
	return w
}

// memRegistry is go-containerregistry's in-memory registry behind
// httptest, optionally wrapped (to fail, tamper or ask for credentials).
type memRegistry struct {
	host    string
	log     *requestLog
	handler atomic.Pointer[http.Handler]
	wrap    func(http.Handler) http.Handler
}

func startMem(t testing.TB, wrap func(http.Handler) http.Handler) *memRegistry {
	t.Helper()
	m := &memRegistry{log: &requestLog{}, wrap: wrap}
	m.reset()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.log.add(r)
		(*m.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	m.host = strings.TrimPrefix(srv.URL, "http://")
	return m
}

// reset empties the registry. Its blobs are shared by all repositories, so
// a benchmark of uploads needs a new one each time.
func (m *memRegistry) reset() {
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if m.wrap != nil {
		h = m.wrap(h)
	}
	m.handler.Store(&h)
}

func (m *memRegistry) ref(t testing.TB, s string) registry.Reference {
	t.Helper()
	ref, err := registry.ParseReference("oci://" + m.host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func plainClient() *registry.Client {
	return registry.New(registry.Options{PlainHTTP: true})
}

// basicAuth answers 401, as Distribution does, unless the request carries
// user:pass.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); ok && u == user && p == pass {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		})
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}
