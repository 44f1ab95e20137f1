package argocd

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/crdvalidate"
	"github.com/galley-dev/galley/internal/golden"
	"sigs.k8s.io/yaml"
)

var goldenCases = []struct {
	name string
	opts Options
}{{
	name: "basic",
	opts: Options{
		StackName:      "data",
		RepoURL:        "oci://registry.example.com/platform/data",
		TargetRevision: "1.4.0",
		Automated:      true, Prune: true, SelfHeal: true,
		Apps: []App{
			{Name: "postgres", Namespace: "data", Wave: 0},
			{Name: "airflow", Namespace: "airflow", Wave: 1},
			{Name: "metabase", Namespace: "data", Wave: 2},
			{Name: "monitoring", Namespace: "monitoring", Path: "monitoring", Wave: 3},
		},
	},
}, {
	name: "manual",
	opts: Options{
		StackName:         "obs",
		RepoURL:           "oci://localhost:5000/obs",
		TargetRevision:    "sha256:" + strings.Repeat("0f", 32),
		Namespace:         "gitops",
		Project:           "observability",
		DestinationServer: "https://prod.example.com:6443",
		Apps: []App{
			{Name: "crds", Namespace: "monitoring", Wave: -3},
			{Name: "prometheus", Namespace: "monitoring", Namespaces: []string{"kube-system", "monitoring"}},
		},
	},
}}

// TestGolden compares Generate's files with testdata/golden/<case>.yaml,
// which holds every file after a "# File: <path>" line.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Generate(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for i, f := range files {
				if i > 0 {
					got.WriteString("---\n")
				}
				got.WriteString("# File: " + f.Path + "\n")
				got.Write(f.Data)
			}
			golden.Check(t, filepath.Join("testdata", "golden", tc.name+".yaml"), got.Bytes())
		})
	}
}

// TestDeterministic: the order of Apps does not matter, and two runs give
// the same bytes.
func TestDeterministic(t *testing.T) {
	o := goldenCases[0].opts
	a, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	o.Apps = slices.Clone(o.Apps)
	slices.Reverse(o.Apps)
	b, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a, b, func(x, y bundles.File) bool { return x.Path == y.Path && bytes.Equal(x.Data, y.Data) }) {
		t.Fatal("reordering the apps changed the output")
	}
}

// parsedApp holds the fields of an Application galley relies on.
type parsedApp struct {
	APIVersion, Kind string
	Metadata         struct {
		Name, Namespace string
		Labels          map[string]string
		Annotations     map[string]string
		Finalizers      []string
	}
	Spec struct {
		Project string
		Source  struct {
			RepoURL        string `json:"repoURL"`
			TargetRevision string `json:"targetRevision"`
			Path           string
		}
		Destination struct{ Server, Namespace string }
		SyncPolicy  *struct {
			Automated *struct {
				Prune    bool
				SelfHeal bool `json:"selfHeal"`
			}
			SyncOptions []string `json:"syncOptions"`
		} `json:"syncPolicy"`
	}
}

type parsedProject struct {
	Kind     string
	Metadata struct {
		Name, Namespace string
		Annotations     map[string]string
	}
	Spec struct {
		SourceRepos              []string `json:"sourceRepos"`
		Destinations             []struct{ Server, Namespace string }
		ClusterResourceWhitelist []struct{ Group, Kind string } `json:"clusterResourceWhitelist"`
	}
}

// TestObjects parses every generated object and checks the fields Argo CD
// needs, for both golden cases.
func TestObjects(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			files, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			o.defaults()
			byPath := map[string][]byte{}
			for _, f := range files {
				if !strings.HasPrefix(f.Path, "argocd/") || !strings.HasSuffix(f.Path, ".yaml") {
					t.Errorf("file %s: want argocd/**.yaml", f.Path)
				}
				byPath[f.Path] = f.Data
			}
			if len(files) != len(o.Apps)+2 {
				t.Fatalf("got %d files, want %d", len(files), len(o.Apps)+2)
			}

			var proj parsedProject
			mustUnmarshal(t, byPath["argocd/apps/project.yaml"], &proj)
			projWave, err := strconv.Atoi(proj.Metadata.Annotations["argocd.argoproj.io/sync-wave"])
			if err != nil {
				t.Fatalf("project sync-wave: %v", err)
			}
			if proj.Kind != "AppProject" || proj.Metadata.Name != o.Project || proj.Metadata.Namespace != o.Namespace {
				t.Errorf("project: got %s %s/%s", proj.Kind, proj.Metadata.Namespace, proj.Metadata.Name)
			}
			if !slices.Equal(proj.Spec.SourceRepos, []string{o.RepoURL}) {
				t.Errorf("project sourceRepos: got %v", proj.Spec.SourceRepos)
			}
			if len(proj.Spec.ClusterResourceWhitelist) != 1 || proj.Spec.ClusterResourceWhitelist[0].Group != "*" || proj.Spec.ClusterResourceWhitelist[0].Kind != "*" {
				t.Errorf("project clusterResourceWhitelist: got %v", proj.Spec.ClusterResourceWhitelist)
			}
			allowed := map[string]bool{}
			var prev string
			for _, d := range proj.Spec.Destinations {
				if d.Server != o.DestinationServer {
					t.Errorf("project destination %v: want server %s", d, o.DestinationServer)
				}
				if d.Namespace <= prev {
					t.Errorf("project destinations not sorted and unique: %v", proj.Spec.Destinations)
				}
				prev = d.Namespace
				allowed[d.Namespace] = true
			}

			for _, a := range o.Apps {
				var app parsedApp
				mustUnmarshal(t, byPath["argocd/apps/"+a.Name+".yaml"], &app)
				m, s := app.Metadata, app.Spec
				if app.Kind != "Application" || m.Name != o.StackName+"-"+a.Name || m.Namespace != o.Namespace {
					t.Errorf("app %s: got %s %s/%s", a.Name, app.Kind, m.Namespace, m.Name)
				}
				if !slices.Equal(m.Finalizers, []string{"resources-finalizer.argocd.argoproj.io"}) {
					t.Errorf("app %s: finalizers %v", a.Name, m.Finalizers)
				}
				wave, err := strconv.Atoi(m.Annotations["argocd.argoproj.io/sync-wave"])
				if err != nil || wave != a.Wave {
					t.Errorf("app %s: sync-wave %q, want %d", a.Name, m.Annotations["argocd.argoproj.io/sync-wave"], a.Wave)
				}
				if wave <= projWave {
					t.Errorf("app %s: wave %d does not come after the project's %d", a.Name, wave, projWave)
				}
				if s.Project != o.Project {
					t.Errorf("app %s: project %q", a.Name, s.Project)
				}
				wantPath := "apps/" + a.Name
				if a.Path != "" {
					wantPath = a.Path
				}
				if s.Source.RepoURL != o.RepoURL || s.Source.TargetRevision != o.TargetRevision || s.Source.Path != wantPath {
					t.Errorf("app %s: source %+v", a.Name, s.Source)
				}
				if s.Destination.Server != o.DestinationServer || s.Destination.Namespace != a.Namespace || !allowed[a.Namespace] {
					t.Errorf("app %s: destination %+v (allowed: %v)", a.Name, s.Destination, allowed)
				}
				for _, ns := range a.Namespaces {
					if !allowed[ns] {
						t.Errorf("app %s: namespace %s not allowed by the project", a.Name, ns)
					}
				}
				if s.SyncPolicy == nil || !slices.Contains(s.SyncPolicy.SyncOptions, "CreateNamespace=true") {
					t.Fatalf("app %s: syncPolicy %+v", a.Name, s.SyncPolicy)
				}
				switch au := s.SyncPolicy.Automated; {
				case o.Automated && (au == nil || au.Prune != o.Prune || au.SelfHeal != o.SelfHeal):
					t.Errorf("app %s: automated %+v, want prune %v selfHeal %v", a.Name, au, o.Prune, o.SelfHeal)
				case !o.Automated && au != nil:
					t.Errorf("app %s: automated sync, want manual", a.Name)
				}
			}

			var root parsedApp
			mustUnmarshal(t, byPath["argocd/root.yaml"], &root)
			if root.Metadata.Name != o.StackName || root.Metadata.Namespace != o.Namespace || len(root.Metadata.Finalizers) != 0 {
				t.Errorf("root: metadata %+v", root.Metadata)
			}
			if root.Spec.Project != "default" || root.Spec.Source.Path != "argocd/apps" ||
				root.Spec.Source.RepoURL != o.RepoURL || root.Spec.Source.TargetRevision != o.TargetRevision {
				t.Errorf("root: spec %+v", root.Spec)
			}
			if root.Spec.Destination.Server != DefaultDestinationServer || root.Spec.Destination.Namespace != o.Namespace {
				t.Errorf("root: destination %+v", root.Spec.Destination)
			}
			if root.Spec.SyncPolicy == nil || root.Spec.SyncPolicy.Automated == nil {
				t.Errorf("root: want automated sync")
			}
		})
	}
}

// TestCRDs validates every generated object against Argo CD's own CRDs
// (the argo-cd chart in the shared chart corpus).
func TestCRDs(t *testing.T) {
	validators := map[string]*crdvalidate.Validator{}
	for kind, file := range map[string]string{"Application": "crd-application.yaml", "AppProject": "crd-appproject.yaml"} {
		v, err := crdvalidate.New(argoCDCRD(t, file))
		if err != nil {
			t.Fatal(err)
		}
		validators[kind] = v
	}
	for _, tc := range goldenCases {
		files, err := Generate(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			var head struct{ Kind string }
			mustUnmarshal(t, f.Data, &head)
			v := validators[head.Kind]
			if v == nil {
				t.Fatalf("%s: %s: unexpected kind %q", tc.name, f.Path, head.Kind)
			}
			if err := v.Validate(f.Data); err != nil {
				t.Errorf("%s: %s: %v", tc.name, f.Path, err)
			}
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	ok := func(edit func(*Options)) Options {
		o := Options{
			StackName: "data", RepoURL: "oci://registry.example.com/data", TargetRevision: "1.0.0",
			Apps: []App{{Name: "a", Namespace: "data"}},
		}
		edit(&o)
		return o
	}
	tests := []struct {
		name string
		opts Options
		want string // regular expression
	}{
		{"no stack name", ok(func(o *Options) { o.StackName = "" }), `(?m)^stack name is empty$`},
		{"bad stack name", ok(func(o *Options) { o.StackName = "Data" }), `(?m)^stack name "Data": a lowercase RFC 1123 label`},
		{"project default", ok(func(o *Options) { o.Project = "default" }), `(?m)^project "default" is Argo CD's own`},
		{"bad namespace", ok(func(o *Options) { o.Namespace = "argo_cd" }), `(?m)^namespace "argo_cd": `},
		{"repo URL without scheme", ok(func(o *Options) { o.RepoURL = "registry.example.com/data" }), `(?m)^repo URL "registry.example.com/data": want oci://<registry>/<repository>$`},
		{"repo URL without repository", ok(func(o *Options) { o.RepoURL = "oci://registry.example.com" }), `(?m)^repo URL "oci://registry.example.com": want oci://<registry>/<repository>$`},
		{"repo URL with a tag", ok(func(o *Options) { o.RepoURL = "oci://registry.example.com:5000/data:1.0.0" }), `(?m)^repo URL ".*": no tag here; the revision goes in the target revision$`},
		{"repo URL with a digest", ok(func(o *Options) { o.RepoURL = "oci://registry.example.com/data@sha256:00" }), `(?m)^repo URL ".*": no digest here`},
		{"repo URL with capitals", ok(func(o *Options) { o.RepoURL = "oci://registry.example.com/Data" }), `(?m)^repo URL "oci://registry.example.com/Data": `},
		{"https repo URL", ok(func(o *Options) { o.RepoURL = "https://github.com/x/y" }), `(?m)^repo URL "https://github.com/x/y": want oci://`},
		{"no revision", ok(func(o *Options) { o.TargetRevision = "" }), `(?m)^target revision is empty$`},
		{"revision with spaces", ok(func(o *Options) { o.TargetRevision = "1.0.0\n" }), `(?m)^target revision "1.0.0\\n": leading or trailing space$`},
		{"bad destination", ok(func(o *Options) { o.DestinationServer = "in-cluster" }), `(?m)^destination server "in-cluster": want an http\(s\) URL$`},
		{"prune without automated", ok(func(o *Options) { o.Prune = true }), `(?m)^prune and self-heal need automated sync$`},
		{"no apps", ok(func(o *Options) { o.Apps = nil }), `(?m)^no apps$`},
		{"app without name", ok(func(o *Options) { o.Apps[0].Name = "" }), `(?m)^app 0: name is empty$`},
		{"app without namespace", ok(func(o *Options) { o.Apps[0].Namespace = "" }), `(?m)^app "a": namespace is empty$`},
		{"app with a bad other namespace", ok(func(o *Options) { o.Apps[0].Namespaces = []string{"Kube"} }), `(?m)^app "a": other namespace "Kube": `},
		{"app twice", ok(func(o *Options) { o.Apps = append(o.Apps, App{Name: "a", Namespace: "x"}) }), `(?m)^app "a": defined twice$`},
		{"app named project", ok(func(o *Options) { o.Apps[0].Name = "project" }), `(?m)^app "project": the name clashes with argocd/apps/project.yaml; rename the app$`},
		{"absolute path", ok(func(o *Options) { o.Apps[0].Path = "/monitoring" }), `(?m)^app "a": path "/monitoring": want a clean relative path inside the bundle$`},
		{"path outside the bundle", ok(func(o *Options) { o.Apps[0].Path = "../x" }), `(?m)^app "a": path "../x": want a clean relative path`},
		{"unclean path", ok(func(o *Options) { o.Apps[0].Path = "monitoring/" }), `(?m)^app "a": path "monitoring/": want a clean relative path`},
		{"name too long", ok(func(o *Options) { o.Apps[0].Name = strings.Repeat("a", 60) }), `(?m)^app "a{60}": Application name "data-a{60}" is longer than 63 characters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Generate(tt.opts)
			if err == nil {
				t.Fatalf("got %d files and no error, want an error matching %s", len(files), tt.want)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("got error:\n%v\nwant it to match:\n%s", err, tt.want)
			}
		})
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if b == nil {
		t.Fatal("file missing")
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// argoCDCRD reads one of Argo CD's CRDs from the argo-cd chart in the shared
// chart corpus, dropping the whole-line {{ ... }} template directives around
// the plain YAML.
func argoCDCRD(tb testing.TB, file string) []byte {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = filepath.Dir(dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "..", "shared", "charts", "argo-cd", "templates", "crds", file))
	if err != nil {
		tb.Skipf("argo-cd chart not available: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if tl := strings.TrimSpace(l); strings.HasPrefix(tl, "{{") && strings.HasSuffix(tl, "}}") {
			continue
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}

func BenchmarkGenerate(b *testing.B) {
	o := goldenCases[0].opts
	for b.Loop() {
		if _, err := Generate(o); err != nil {
			b.Fatal(err)
		}
	}
}
