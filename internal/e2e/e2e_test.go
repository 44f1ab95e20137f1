package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/testcluster"
)

// One control plane for the package: starting etcd and kube-apiserver
// costs tens of seconds on a busy machine, and the tests keep out of each
// other's way (dry runs persist nothing but CRDs and namespaces; each
// delivery test uses its own stack).
var (
	clusterOnce sync.Once
	shared      *testcluster.Cluster
	sharedErr   error
	sharedDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	if dir, err := renderCache(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// cluster returns the package's cluster, starting it on first use. A
// missing tool fails the test, naming `make tools`.
func cluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "galley-e2e-")
		if sharedErr != nil {
			return
		}
		shared, sharedErr = testcluster.New(sharedDir)
	})
	if sharedErr != nil {
		t.Fatalf("starting the test cluster: %v", sharedErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(shared.Logs(30))
		}
	})
	return shared
}

// stackDirs lists every stack of examples/ and testdata/stacks/.
func stackDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, parent := range []string{"../../examples", "../../testdata/stacks"} {
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			if cue, _ := filepath.Glob(filepath.Join(dir, "*.cue")); len(cue) > 0 {
				dirs = append(dirs, dir)
			}
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no stacks found in examples/ and testdata/stacks/")
	}
	return dirs
}

func loadStack(t *testing.T, dir string) *stack.Stack {
	t.Helper()
	// The checkout's stacks take their charts from ../shared, beside the
	// checkout: its parent is their root, as `--root ..` gives the CLI.
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.Load(t.Context(), dir, stack.WithRoot(stack.Root{Dir: root}))
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	return s
}

// renderCache is the package's render cache: the tests compile the same
// charts several times (each version of a stack), but a cache shared with
// other runs would hand this run renders of older code, since the tests
// name one fixed galley version.
var renderCache = sync.OnceValues(func() (string, error) {
	return os.MkdirTemp("", "galley-e2e-cache-")
})

func compile(t *testing.T, s *stack.Stack) *compiler.Result {
	t.Helper()
	cache, err := renderCache()
	if err != nil {
		t.Fatal(err)
	}
	res, err := compiler.CompileStack(t.Context(), s, compiler.Options{GalleyVersion: "e2e", CacheDir: cache})
	if err != nil {
		t.Fatalf("compiling %s: %v", s.Name, err)
	}
	return res
}

// object is one Kubernetes object of a bundle file.
type object struct {
	file string // bundle path
	doc  map[string]any
}

func (o object) kind() string { s, _ := o.doc["kind"].(string); return s }
func (o object) meta(key string) string {
	m, _ := o.doc["metadata"].(map[string]any)
	s, _ := m[key].(string)
	return s
}
func (o object) String() string {
	ns := o.meta("namespace")
	if ns != "" {
		ns += "/"
	}
	return fmt.Sprintf("%s %s%s (%s)", o.kind(), ns, o.meta("name"), o.file)
}

// objects returns the Kubernetes objects of the bundle files under the
// given top directories, in bundle order.
func objects(t *testing.T, tree *bundles.Tree, tops ...string) []object {
	t.Helper()
	files := tree.Files()
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var out []object
	for _, f := range files {
		top, _, _ := strings.Cut(f.Path, "/")
		if !slices.Contains(tops, top) || (path.Ext(f.Path) != ".yaml" && path.Ext(f.Path) != ".yml") {
			continue
		}
		for i, doc := range splitYAML(f.Data) {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				t.Fatalf("%s document %d: %v", f.Path, i+1, err)
			}
			if len(m) == 0 {
				continue
			}
			out = append(out, object{file: f.Path, doc: m})
		}
	}
	return out
}

func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// namespaces maps each deployed bundle directory to the namespace its
// namespaced objects without one land in: Argo CD's destination
// namespace, Flux's targetNamespace, read from the bundle's own delivery
// objects and index, so the test follows whatever names they use.
func namespaces(t *testing.T, tree *bundles.Tree) map[string]string {
	t.Helper()
	ns := map[string]string{}
	idx, err := bundles.ReadIndex(tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range idx.Apps {
		ns[a.Path] = a.Namespace
	}
	for _, j := range idx.Jobs {
		ns[j.Path] = j.Namespace
	}
	for _, o := range objects(t, tree, "argocd", "flux") {
		spec, _ := o.doc["spec"].(map[string]any)
		switch o.kind() {
		case "Application":
			src, _ := spec["source"].(map[string]any)
			dst, _ := spec["destination"].(map[string]any)
			p, _ := src["path"].(string)
			n, _ := dst["namespace"].(string)
			if p != "" && n != "" {
				ns[path.Clean(p)] = n
			}
		case "Kustomization":
			p, _ := spec["path"].(string)
			n, _ := spec["targetNamespace"].(string)
			if p != "" && n != "" {
				ns[path.Clean(p)] = n
			}
		}
	}
	return ns
}

// namespaceOf returns the namespace o is applied in, "" for a
// cluster-scoped object or one whose directory has no namespace.
func namespaceOf(o object, dirs map[string]string) string {
	if n := o.meta("namespace"); n != "" {
		return n
	}
	for d := path.Dir(o.file); d != "." && d != "/"; d = path.Dir(d) {
		if n, ok := dirs[d]; ok {
			return n
		}
	}
	return ""
}

func marshalAll(t *testing.T, objs []object) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		y, err := yaml.Marshal(o.doc)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes()
}

// poll calls check until it returns nil or timeout passes; the last error
// fails the test.
func poll(t *testing.T, ctx context.Context, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}
