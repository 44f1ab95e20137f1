package helm

import (
	"slices"

	"bytes"
	"context"
	"errors"
	"fmt"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// realCharts are the upstream charts in ../shared/charts with the values
// files their reference renders (_golden/<name>.yaml) were made with; see
// ../shared/charts/README.md.
var realCharts = []struct {
	name   string
	values string
}{
	{"airflow", "airflow.pinned.yaml"},
	{"metabase", ""},
	{"kube-prometheus-stack", "kube-prometheus-stack.pinned.yaml"},
	{"grafana", "grafana.pinned.yaml"},
	{"opentelemetry-collector", "opentelemetry-collector.yaml"},
	{"argo-cd", ""},
}

// The reference renders come from a helm binary whose default
// .Capabilities.KubeVersion is v1.37.0.
const goldenKubeVersion = "1.37.0"

// sharedCharts finds ../shared/charts beside the repository root.
func sharedCharts(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for !fileExists(filepath.Join(dir, "go.mod")) {
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the package directory: cannot find the repository root")
		}
		dir = parent
	}
	charts := filepath.Join(dir, "..", "shared", "charts")
	if !fileExists(filepath.Join(charts, "README.md")) {
		tb.Fatalf("real chart corpus not found at %s: these tests need the upstream charts in ../shared/charts next to the repository", charts)
	}
	return charts
}

// realRequest loads a real chart and the request its reference render used.
func realRequest(tb testing.TB, charts, name, values string) (*Chart, Request) {
	tb.Helper()
	c, err := Load(filepath.Join(charts, name))
	if err != nil {
		tb.Fatal(err)
	}
	req := Request{ReleaseName: "test", Namespace: "test", KubeVersion: goldenKubeVersion}
	if values != "" {
		data, err := os.ReadFile(filepath.Join(charts, "_values", values))
		if err != nil {
			tb.Fatal(err)
		}
		if req.Values, err = ParseValues(data); err != nil {
			tb.Fatal(err)
		}
	}
	return c, req
}

func TestRenderMatchesHelmTemplate(t *testing.T) {
	charts := sharedCharts(t)
	for _, rc := range realCharts {
		t.Run(rc.name, func(t *testing.T) {
			c, req := realRequest(t, charts, rc.name, rc.values)
			golden, err := os.ReadFile(filepath.Join(charts, "_golden", rc.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			want := parseStream(t, golden)

			// The reference renders keep test hooks (no --skip-tests).
			req.KeepTestHooks = true
			var warns []string
			req.Warn = func(m string) { warns = append(warns, m) }
			got, err := Render(context.Background(), c, req)
			if err != nil {
				t.Fatal(err)
			}
			compareDocs(t, got, want)
			if len(warns) > 0 {
				t.Logf("helm warnings: %q", warns)
			}

			req.KeepTestHooks = false
			got, err = Render(context.Background(), c, req)
			if err != nil {
				t.Fatal(err)
			}
			var noTests []object
			for _, o := range want {
				if !isTestHookValue(o.hook) {
					noTests = append(noTests, o)
				}
			}
			compareDocs(t, got, noTests)
		})
	}
}

// kube-prometheus-stack keeps its CRDs in the crds/ folder of a subchart:
// --include-crds prints them before everything else.
func TestRenderIncludeCRDs(t *testing.T) {
	charts := sharedCharts(t)
	c, req := realRequest(t, charts, "kube-prometheus-stack", "kube-prometheus-stack.pinned.yaml")
	req.KeepTestHooks = true
	without, err := Render(context.Background(), c, req)
	if err != nil {
		t.Fatal(err)
	}
	req.IncludeCRDs = true
	with, err := Render(context.Background(), c, req)
	if err != nil {
		t.Fatal(err)
	}
	const crds = 10
	if len(with) != len(without)+crds {
		t.Fatalf("got %d documents with CRDs, %d without; want %d more", len(with), len(without), crds)
	}
	for i, d := range with[:crds] {
		o := parseDoc(t, d)
		if o.kind() != "CustomResourceDefinition" || !strings.HasPrefix(d.Source, "kube-prometheus-stack/charts/crds/crds/") {
			t.Errorf("document %d: got %s from %s, want a CRD from kube-prometheus-stack/charts/crds/crds/", i, o.key, d.Source)
		}
	}
	compareDocs(t, with[crds:], parseDocs(t, without))
}

// Every real chart rendered twice at once, all charts together, must give
// what a render alone gives (run with -race to check helm's shared state).
func TestRenderRealChartsConcurrently(t *testing.T) {
	charts := sharedCharts(t)
	var wg sync.WaitGroup
	for _, rc := range realCharts {
		c, req := realRequest(t, charts, rc.name, rc.values)
		want, err := Render(context.Background(), c, req)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := Render(context.Background(), c, req)
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: concurrent render differs from the render alone", rc.name)
				}
			}()
		}
	}
	wg.Wait()
}

func BenchmarkRender(b *testing.B) {
	charts := sharedCharts(b)
	for _, rc := range realCharts {
		b.Run(rc.name, func(b *testing.B) {
			c, req := realRequest(b, charts, rc.name, rc.values)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(context.Background(), c, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	charts := sharedCharts(b)
	for _, rc := range realCharts {
		b.Run(rc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(filepath.Join(charts, rc.name)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// object is one parsed, non-empty YAML document.
type object struct {
	key    string // apiVersion/kind/namespace/name
	source string // "# Source:" path
	hook   string // helm.sh/hook annotation
	value  any
}

func (o object) kind() string {
	m, _ := o.value.(map[string]any)
	k, _ := m["kind"].(string)
	return k
}

// parseStream parses a `helm template` output with yaml.v3, independently
// of splitManifest. A document's source is the last "# Source:" line above
// its content: documents after the first of a multi-document file have
// none of their own and keep the previous one.
func parseStream(tb testing.TB, data []byte) []object {
	tb.Helper()
	type mark struct {
		line   int
		source string
	}
	var marks []mark
	for i, l := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(l, "# Source: "); ok {
			marks = append(marks, mark{i + 1, strings.TrimSpace(s)})
		}
	}
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatalf("document %d: %v", i, err)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			tb.Fatalf("document %d: %v", i, err)
		}
		if v == nil {
			continue
		}
		line := n.Content[0].Line
		j := sort.Search(len(marks), func(j int) bool { return marks[j].line >= line })
		source := ""
		if j > 0 {
			source = marks[j-1].source
		}
		out = append(out, newObject(source, v))
	}
}

func newObject(source string, v any) object {
	m, _ := v.(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	hook, _ := ann["helm.sh/hook"].(string)
	return object{
		key:    fmt.Sprintf("%v/%v/%v/%v", m["apiVersion"], m["kind"], md["namespace"], md["name"]),
		source: source,
		hook:   hook,
		value:  v,
	}
}

// parseDoc parses a rendered Document, which must hold exactly one
// non-empty YAML document.
func parseDoc(tb testing.TB, d Document) object {
	tb.Helper()
	objs := parseStream(tb, d.YAML)
	if len(objs) != 1 {
		tb.Fatalf("document from %s holds %d YAML documents, want 1:\n%s", d.Source, len(objs), d.YAML)
	}
	o := objs[0]
	o.source = d.Source
	return o
}

func parseDocs(tb testing.TB, docs []Document) []object {
	tb.Helper()
	out := make([]object, len(docs))
	for i, d := range docs {
		out[i] = parseDoc(tb, d)
	}
	return out
}

func isTestHookValue(hook string) bool {
	for _, e := range strings.Split(hook, ",") {
		switch strings.ToLower(strings.TrimSpace(e)) {
		case "test", "test-success":
			return true
		}
	}
	return false
}

// compareDocs compares rendered documents with the objects of a reference
// render: first as multisets of parsed objects, then their order, sources
// and hook annotations.
func compareDocs(t *testing.T, docs []Document, want []object) {
	t.Helper()
	got := parseDocs(t, docs)
	for i, d := range docs {
		if d.Hook != got[i].hook {
			t.Errorf("document %d (%s from %s): Hook is %q, annotation says %q", i, got[i].key, d.Source, d.Hook, got[i].hook)
		}
	}

	gotBy, wantBy := byKey(got), byKey(want)
	var keys []string
	for k := range gotBy {
		keys = append(keys, k)
	}
	for k := range wantBy {
		if _, ok := gotBy[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	same := true
	for _, k := range keys {
		g, w := unmatched(gotBy[k], wantBy[k])
		switch {
		case len(g) == 0 && len(w) == 0:
			continue
		case len(g) > 0 && len(w) > 0:
			path, gv, wv := firstDiff("", g[0].value, w[0].value)
			t.Errorf("%s (from %s) differs at %s: got %#v, want %#v", k, w[0].source, path, gv, wv)
		case len(g) > 0:
			t.Errorf("%s (from %s): %d unexpected", k, g[0].source, len(g))
		default:
			t.Errorf("%s (from %s): %d missing", k, w[0].source, len(w))
		}
		same = false
	}
	if !same {
		t.Fatalf("got %d documents, want %d", len(got), len(want))
	}
	want = helm4Order(want)
	for i := range got {
		if got[i].key != want[i].key || got[i].source != want[i].source {
			t.Fatalf("document %d: got %s from %s, want %s from %s", i, got[i].key, got[i].source, want[i].key, want[i].source)
		}
	}
}

func byKey(objs []object) map[string][]object {
	m := map[string][]object{}
	for _, o := range objs {
		m[o.key] = append(m[o.key], o)
	}
	return m
}

// unmatched pairs equal objects off and returns the rest of each side.
func unmatched(got, want []object) ([]object, []object) {
	var restGot []object
	used := make([]bool, len(want))
Next:
	for _, g := range got {
		for j, w := range want {
			if !used[j] && reflect.DeepEqual(g.value, w.value) {
				used[j] = true
				continue Next
			}
		}
		restGot = append(restGot, g)
	}
	var restWant []object
	for j, w := range want {
		if !used[j] {
			restWant = append(restWant, w)
		}
	}
	return restGot, restWant
}

// firstDiff returns the path of the first difference between two decoded
// YAML values, and the values there.
func firstDiff(path string, got, want any) (string, any, any) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range g {
			keys[k] = true
		}
		for k := range w {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if !reflect.DeepEqual(g[k], w[k]) {
				return firstDiff(path+"."+k, g[k], w[k])
			}
		}
		return path, got, want
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		for i := range w {
			if !reflect.DeepEqual(g[i], w[i]) {
				return firstDiff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])
			}
		}
	}
	if path == "" {
		path = "."
	}
	return path, got, want
}

// helm4Order reorders reference renders made by helm v3.22 the way Helm 4
// sorts the release manifest: its install order names
// MutatingWebhookConfiguration and ValidatingWebhookConfiguration (last of
// the known kinds), where v3 sorted them with the unknown kinds after all
// known ones. Hooks keep their place after the manifest.
func helm4Order(objs []object) []object {
	rank := func(o object) int {
		if o.hook != "" {
			return len(releaseutil.InstallOrder) + 2
		}
		if i := slices.Index(releaseutil.InstallOrder, o.kind()); i >= 0 {
			return i
		}
		return len(releaseutil.InstallOrder) + 1
	}
	out := slices.Clone(objs)
	// Only manifest documents move; CRDs printed first by --include-crds
	// come from crds/ and keep their place.
	start := 0
	for start < len(out) && strings.Contains(out[start].source, "/crds/") {
		start++
	}
	slices.SortStableFunc(out[start:], func(a, b object) int { return rank(a) - rank(b) })
	return out
}
