package helm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// testChart is a chart of testdata/charts (see its README).
func testChart(name string) string {
	return filepath.Join("..", "..", "testdata", "charts", name)
}

func mustLoad(tb testing.TB, path string) *Chart {
	tb.Helper()
	c, err := Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func baseRequest() Request {
	return Request{ReleaseName: "test", Namespace: "test", KubeVersion: goldenKubeVersion}
}

func mustRender(tb testing.TB, c *Chart, req Request) []Document {
	tb.Helper()
	docs, err := Render(context.Background(), c, req)
	if err != nil {
		tb.Fatal(err)
	}
	return docs
}

// The test charts against renders of the stock helm CLI (testdata/charts/_golden).
func TestRenderTestChartsMatchHelmTemplate(t *testing.T) {
	tests := []struct {
		name   string
		chart  string
		values string
		golden string
		edit   func(*Request)
		// drop removes objects --skip-tests removes from a golden made
		// without it.
		dropTests bool
	}{
		{name: "hooks", chart: "hooks", golden: "hooks.yaml",
			edit: func(r *Request) { r.KeepTestHooks = true }},
		{name: "hooks skip tests", chart: "hooks", golden: "hooks.yaml", dropTests: true},
		{name: "hooks crds capabilities", chart: "hooks", golden: "hooks-crds.yaml",
			edit: func(r *Request) {
				r.IncludeCRDs = true
				r.KubeVersion = "1.30.0"
				r.APIVersions = []string{"monitoring.coreos.com/v1/ServiceMonitor"}
			}},
		{name: "parent", chart: "parent", golden: "parent.yaml"},
		{name: "parent with values", chart: "parent", values: "parent-extra.yaml", golden: "parent-extra.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, testChart(tt.chart))
			req := baseRequest()
			if tt.values != "" {
				data, err := os.ReadFile(testChart(filepath.Join("_values", tt.values)))
				if err != nil {
					t.Fatal(err)
				}
				if req.Values, err = ParseValues(data); err != nil {
					t.Fatal(err)
				}
			}
			if tt.edit != nil {
				tt.edit(&req)
			}
			golden, err := os.ReadFile(testChart(filepath.Join("_golden", tt.golden)))
			if err != nil {
				t.Fatal(err)
			}
			want := parseStream(t, golden)
			if tt.dropTests {
				var kept []object
				for _, o := range want {
					if !isTestHookValue(o.hook) {
						kept = append(kept, o)
					}
				}
				want = kept
			}
			compareDocs(t, mustRender(t, c, req), want)
		})
	}
}

func TestRenderHooks(t *testing.T) {
	c := mustLoad(t, testChart("hooks"))
	req := baseRequest()
	var warns []string
	req.Warn = func(m string) { warns = append(warns, m) }
	docs := mustRender(t, c, req)

	type doc struct{ source, hook string }
	var got []doc
	for _, d := range docs {
		got = append(got, doc{d.Source, d.Hook})
		if !bytes.HasSuffix(d.YAML, []byte("\n")) || bytes.HasPrefix(d.YAML, []byte("---")) || bytes.Contains(d.YAML, []byte("# Source:")) {
			t.Errorf("document from %s is not one bare YAML document ending in a newline:\n%s", d.Source, d.YAML)
		}
	}
	// Manifests sorted by kind, then hooks; no NOTES.txt, no comment-only
	// empty.yaml, no test hooks, no unknown hook.
	want := []doc{
		{"hooks/templates/configmap.yaml", ""},
		{"hooks/templates/services.yaml", ""},
		{"hooks/templates/services.yaml", ""},
		{"hooks/templates/deployment.yaml", ""},
		{"hooks/templates/job-migrate.yaml", "pre-install,pre-upgrade"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got documents\n%q\nwant\n%q", got, want)
	}
	if want := []string{`INFO skipping unknown hooks hookTypes=post-everything`}; !reflect.DeepEqual(warns, want) {
		t.Errorf("got warnings %q, want %q", warns, want)
	}

	req.KeepTestHooks = true
	var hooks []string
	for _, d := range mustRender(t, c, req) {
		if d.Hook != "" {
			hooks = append(hooks, d.Source+" "+d.Hook)
		}
	}
	wantHooks := []string{
		"hooks/templates/tests/test-connection.yaml test",
		"hooks/templates/tests/test-legacy.yaml test-success",
		"hooks/templates/job-migrate.yaml pre-install,pre-upgrade",
	}
	if !reflect.DeepEqual(hooks, wantHooks) {
		t.Errorf("with test hooks, got hooks %q, want %q", hooks, wantHooks)
	}
}

func TestRenderCRDsFromOneFile(t *testing.T) {
	c := mustLoad(t, testChart("hooks"))
	req := baseRequest()
	req.IncludeCRDs = true
	docs := mustRender(t, c, req)
	for i, name := range []string{"widgets.example.com", "gadgets.example.com"} {
		d := docs[i]
		if d.Source != "hooks/crds/widgets.yaml" || !bytes.Contains(d.YAML, []byte("name: "+name)) {
			t.Errorf("document %d: got %s from %s, want CRD %s from hooks/crds/widgets.yaml", i, d.YAML, d.Source, name)
		}
	}
	if d := docs[2]; d.Source != "hooks/templates/configmap.yaml" {
		t.Errorf("document 2 comes from %s, want the first template after the two CRDs (the comment-only third document dropped)", d.Source)
	}
}

func TestRenderSubchartValues(t *testing.T) {
	c := mustLoad(t, testChart("parent"))
	data := func(docs []Document) map[string]string {
		m := map[string]string{}
		for _, d := range docs {
			o := parseDoc(t, d)
			for k, v := range o.value.(map[string]any)["data"].(map[string]any) {
				m[d.Source+" "+k] = v.(string)
			}
		}
		return m
	}

	got := data(mustRender(t, c, baseRequest()))
	want := map[string]string{
		"parent/charts/child/templates/configmap.yaml greeting": "hello from parent",
		"parent/charts/child/templates/configmap.yaml replicas": "1",
		"parent/charts/child/templates/configmap.yaml env":      "production",
		"parent/templates/configmap.yaml env":                   "production",
		"parent/templates/configmap.yaml childGreeting":         "hello from parent",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults: got %v, want %v", got, want)
	}

	req := baseRequest()
	req.Values = map[string]any{
		"child":  map[string]any{"greeting": "hi", "replicas": 3.0},
		"global": map[string]any{"env": "staging"},
		"extra":  map[string]any{"enabled": true},
	}
	got = data(mustRender(t, c, req))
	want = map[string]string{
		"parent/charts/child/templates/configmap.yaml greeting": "hi",
		"parent/charts/child/templates/configmap.yaml replicas": "3",
		"parent/charts/child/templates/configmap.yaml env":      "staging",
		"parent/charts/extra/templates/configmap.yaml env":      "staging",
		"parent/templates/configmap.yaml env":                   "staging",
		"parent/templates/configmap.yaml childGreeting":         "hi",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with values: got %v, want %v", got, want)
	}
}

// Rendering must leave the chart and the values as they were: helm's
// dependency processing rewrites the chart it is given.
func TestRenderLeavesInputsAlone(t *testing.T) {
	c := mustLoad(t, testChart("parent"))
	before := mustRender(t, c, baseRequest())

	req := baseRequest()
	req.Values = map[string]any{"extra": map[string]any{"enabled": true}, "child": map[string]any{"greeting": "hi"}}
	valuesBefore := copyValues(req.Values)
	if n := len(mustRender(t, c, req)); n != len(before)+1 {
		t.Fatalf("with extra enabled got %d documents, want %d", n, len(before)+1)
	}
	if !reflect.DeepEqual(req.Values, valuesBefore) {
		t.Errorf("Render changed the values: got %v, want %v", req.Values, valuesBefore)
	}
	if after := mustRender(t, c, baseRequest()); !reflect.DeepEqual(after, before) {
		t.Errorf("a render with other values changed later renders of the chart:\ngot  %q\nwant %q", after, before)
	}

	dv := DefaultValues(c)
	dv["global"].(map[string]any)["env"] = "changed"
	if got := DefaultValues(c)["global"].(map[string]any)["env"]; got != "production" {
		t.Errorf("DefaultValues shares its maps with the chart: global.env is %v after a change to a copy", got)
	}
}

func TestRenderConcurrent(t *testing.T) {
	hooks := mustLoad(t, testChart("hooks"))
	parent := mustLoad(t, testChart("parent"))
	withExtra := baseRequest()
	withExtra.Values = map[string]any{"extra": map[string]any{"enabled": true}}

	type job struct {
		c         *Chart
		req       Request
		wantWarns int
	}
	jobs := []job{{hooks, baseRequest(), 1}, {parent, baseRequest(), 0}, {parent, withExtra, 0}}
	want := make([][]Document, len(jobs))
	for i, j := range jobs {
		want[i] = mustRender(t, j.c, j.req)
	}

	const rounds = 8
	var wg sync.WaitGroup
	for r := 0; r < rounds; r++ {
		for i, j := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := j.req
				var warns []string
				req.Warn = func(m string) { warns = append(warns, m) }
				docs, err := Render(context.Background(), j.c, req)
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(docs, want[i]) {
					t.Errorf("job %d: concurrent render differs from the sequential one", i)
				}
				if len(warns) != j.wantWarns {
					t.Errorf("job %d: got warnings %q, want %d: warnings of concurrent renders got mixed up", i, warns, j.wantWarns)
				}
			}()
		}
	}
	wg.Wait()
}

func TestRenderTemplateError(t *testing.T) {
	c := mustLoad(t, testChart("broken"))
	_, err := Render(context.Background(), c, baseRequest())
	if err == nil {
		t.Fatal("rendering a chart with a template error succeeded")
	}
	for _, want := range []string{
		"rendering chart broken: ",
		"broken/templates/configmap.yaml:7:12",
		`no template "broken.missing"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestRenderRequestErrors(t *testing.T) {
	hooks := mustLoad(t, testChart("hooks"))
	library := mustLoad(t, testChart("library"))
	tests := []struct {
		name string
		c    *Chart
		edit func(*Request)
		want string
	}{
		{"no kube version", hooks, func(r *Request) { r.KubeVersion = "" }, "no Kubernetes version given"},
		{"bad kube version", hooks, func(r *Request) { r.KubeVersion = "one" }, `invalid Kubernetes version "one"`},
		{"kube version below chart's", hooks, func(r *Request) { r.KubeVersion = "1.20.0" },
			"chart requires kubeVersion: >=1.25.0-0 which is incompatible with Kubernetes v1.20.0"},
		{"no namespace", hooks, func(r *Request) { r.Namespace = "" }, "no namespace given"},
		{"bad release name", hooks, func(r *Request) { r.ReleaseName = "Not_Valid" }, `release name "Not_Valid"`},
		{"library chart", library, func(*Request) {}, "library charts cannot be rendered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest()
			tt.edit(&req)
			_, err := Render(context.Background(), tt.c, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "rendering chart "+tt.c.Name+": ") {
				t.Errorf("got error %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestRenderCanceled(t *testing.T) {
	c := mustLoad(t, testChart("hooks"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Render(ctx, c, baseRequest()); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// randAlphaNum is traced into the output unless the value is set, which is
// why real charts need their *.pinned.yaml values.
func TestRenderRandomValues(t *testing.T) {
	c := mustLoad(t, testChart("random"))
	_, err := Render(context.Background(), c, baseRequest())
	want := "chart random output is not deterministic:\n" +
		"  Secret/test-password stringData.password: from randAlphaNum at random/templates/secret.yaml:6; the template reads password there"
	if err == nil || err.Error() != want {
		t.Fatalf("got error %v, want\n%s", err, want)
	}
	req := baseRequest()
	req.Values = map[string]any{"password": "pinned"}
	docs := mustRender(t, c, req)
	if !strings.Contains(string(docs[0].YAML), `password: "pinned"`) {
		t.Errorf("with the value set got\n%s", docs[0].YAML)
	}
}

func TestSplitManifest(t *testing.T) {
	type doc struct{ source, yaml string }
	tests := []struct {
		name     string
		manifest string
		want     []doc
	}{
		{"two files",
			"---\n# Source: a/templates/x.yaml\nkind: X\n---\n# Source: a/templates/y.yaml\nkind: Y\n",
			[]doc{{"a/templates/x.yaml", "kind: X\n"}, {"a/templates/y.yaml", "kind: Y\n"}}},
		{"documents of a crds/ file keep its source",
			"---\n# Source: a/crds/c.yaml\n# header\n---\nkind: A\n---\nkind: B\n\n---\n# Source: a/templates/z.yaml\nkind: Z",
			[]doc{{"a/crds/c.yaml", "kind: A\n"}, {"a/crds/c.yaml", "kind: B\n\n"}, {"a/templates/z.yaml", "kind: Z\n"}}},
		{"comment and blank documents dropped",
			"---\n# Source: a/templates/e.yaml\n# nothing\n\n---\n# Source: a/templates/f.yaml\n   \n---\n---\n# Source: a/templates/g.yaml\nkind: G\n",
			[]doc{{"a/templates/g.yaml", "kind: G\n"}}},
		{"markers with comments or content",
			"--- # first\n# Source: a/b.yaml\nkind: A\n--- !!map\nkind: B\n",
			[]doc{{"a/b.yaml", "kind: A\n"}, {"a/b.yaml", "--- !!map\nkind: B\n"}}},
		{"dashes inside a line are not markers",
			"---\n# Source: a/c.yaml\ndata:\n  pem: |\n    -----BEGIN X-----\n  x: ---\n",
			[]doc{{"a/c.yaml", "data:\n  pem: |\n    -----BEGIN X-----\n  x: ---\n"}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []doc
			for _, d := range splitManifest(tt.manifest) {
				if d.Hook != "" {
					t.Errorf("manifest document from %s has Hook %q", d.Source, d.Hook)
				}
				got = append(got, doc{d.Source, string(d.YAML)})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	v, err := ParseValues([]byte("replicas: 3\nname: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	// As `helm template -f` decodes them: through JSON, numbers are float64.
	if want := map[string]any{"replicas": 3.0, "name": "x"}; !reflect.DeepEqual(v, want) {
		t.Errorf("got %#v, want %#v", v, want)
	}
	if _, err := ParseValues([]byte("a: [")); err == nil || !strings.HasPrefix(err.Error(), "parsing values: ") {
		t.Errorf("got %v, want a parsing values error", err)
	}
}

// splitManifestByLine is splitManifest as it was, copying line by line:
// the reference the sliced version must equal.
func splitManifestByLine(m string) []Document {
	var (
		docs         []Document
		source       string
		cur          strings.Builder
		expectSource bool
	)
	flush := func() {
		if y := cur.String(); !isBlankYAML(y) {
			if !strings.HasSuffix(y, "\n") {
				y += "\n"
			}
			docs = append(docs, Document{Source: source, YAML: []byte(y)})
		}
		cur.Reset()
	}
	for len(m) > 0 {
		line := m
		if i := strings.IndexByte(m, '\n'); i >= 0 {
			line = m[:i+1]
		}
		m = m[len(line):]
		if isDocMarker(line) {
			flush()
			expectSource = true
			if rest := strings.TrimSpace(line[3:]); rest != "" && !strings.HasPrefix(rest, "#") {
				cur.WriteString(line)
				expectSource = false
			}
			continue
		}
		if expectSource {
			expectSource = false
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = strings.TrimSpace(s)
				continue
			}
		}
		cur.WriteString(line)
	}
	flush()
	return docs
}

// The sliced splitManifest gives what the line-by-line one gave, on the
// reference renders of the real charts and on the edge cases of a stream.
func TestSplitManifestMatchesByLine(t *testing.T) {
	inputs := []string{
		"", "\n", "---", "---\n", "kind: A", "kind: A\n---\nkind: B", "---\n# Source: a.yaml\n",
		"---\n# Source: a.yaml\nkind: A\n---\n---\nkind: B\n# Source: b.yaml\n",
		"--- !!map\nkind: A\n--- # c\n# Source: x\nkind: B\n--- value\n",
		"# Source: first\nkind: A\n---\n# not a source\nkind: B\n---\n\n# Source: late\n",
	}
	golden, err := filepath.Glob(filepath.Join(sharedCharts(t), "_golden", "*.yaml"))
	if err != nil || len(golden) == 0 {
		t.Fatalf("no reference renders in ../shared/charts/_golden: %v", err)
	}
	for _, g := range golden {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(data), strings.TrimSuffix(string(data), "\n"))
	}
	for _, in := range inputs {
		if got, want := splitManifest(in), splitManifestByLine(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitManifest(%.60q...) differs from the line-by-line split: %d documents, want %d", in, len(got), len(want))
		}
	}
}
