package flux

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
		StackName: "data",
		URL:       "oci://registry.example.com/platform/data",
		Ref:       Ref{Tag: "1.4.0"},
		Prune:     true, Wait: true,
		Apps: []App{
			{Name: "postgres", Namespace: "data"},
			{Name: "airflow", Namespace: "airflow", DependsOn: []string{"postgres"}, PreHooks: true},
			{Name: "metabase", Namespace: "data", DependsOn: []string{"postgres", "airflow"}},
			{Name: "monitoring", Namespace: "monitoring", Path: "monitoring", DependsOn: []string{"airflow", "metabase", "postgres"}},
		},
	},
}, {
	name: "verified",
	opts: Options{
		StackName:    "obs",
		Environment:  "prod",
		URL:          "oci://localhost:5000/obs",
		Ref:          Ref{Semver: "~1.4.0"},
		Namespace:    "gitops",
		Interval:     "1h",
		Timeout:      "5m30s",
		VerifySecret: "cosign-pub",
		PullSecret:   "registry-creds",
		Apps: []App{
			{Name: "crds", Namespace: "monitoring"},
			{Name: "prometheus", Namespace: "monitoring", KeepNamespaces: true, DependsOn: []string{"crds", "crds"}},
			{Name: "gitops-tools", Namespace: "gitops"},
		},
	},
}, {
	name: "keyless",
	opts: Options{
		StackName: "data",
		URL:       "oci://ghcr.io/acme/data",
		Ref:       Ref{Tag: "2.0.0"},
		VerifyIdentities: []OIDCIdentity{{
			Issuer:  `^https://token\.actions\.githubusercontent\.com$`,
			Subject: `^https://github\.com/acme/platform/\.github/workflows/release\.yml@refs/tags/v.*$`,
		}},
		TrustedRootSecret: "sigstore-root",
		Prune:             true, Wait: true,
		Apps: []App{{Name: "postgres", Namespace: "data"}},
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

// TestDeterministic: the order of Apps and of their dependencies does not
// matter, and two runs give the same bytes.
func TestDeterministic(t *testing.T) {
	o := goldenCases[0].opts
	a, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	o.Apps = slices.Clone(o.Apps)
	slices.Reverse(o.Apps)
	for i := range o.Apps {
		o.Apps[i].DependsOn = slices.Clone(o.Apps[i].DependsOn)
		slices.Reverse(o.Apps[i].DependsOn)
	}
	b, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a, b, func(x, y bundles.File) bool { return x.Path == y.Path && bytes.Equal(x.Data, y.Data) }) {
		t.Fatal("reordering the apps changed the output")
	}
}

// parsedKustomization holds the fields of a Kustomization galley relies on.
type parsedKustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string
	Metadata   struct {
		Name, Namespace string
		Labels          map[string]string
	}
	Spec struct {
		Interval, Timeout, Path string
		Prune, Wait             bool
		TargetNamespace         string `json:"targetNamespace"`
		SourceRef               struct {
			Kind, Name, Namespace string
		} `json:"sourceRef"`
		DependsOn []struct{ Name, Namespace string } `json:"dependsOn"`
	}
}

type parsedRepository struct {
	APIVersion string `json:"apiVersion"`
	Kind       string
	Metadata   struct{ Name, Namespace string }
	Spec       struct {
		Interval, URL string
		Ref           struct{ Tag, Semver, Digest string }
		LayerSelector struct {
			MediaType string `json:"mediaType"`
			Operation string
		} `json:"layerSelector"`
		Verify *struct {
			Provider             string
			SecretRef            *struct{ Name string } `json:"secretRef"`
			MatchOIDCIdentity    []OIDCIdentity         `json:"matchOIDCIdentity"`
			TrustedRootSecretRef *struct{ Name string } `json:"trustedRootSecretRef"`
		}
		SecretRef *struct{ Name string } `json:"secretRef"`
	}
}

// TestObjects parses every generated object and checks what Flux needs:
// the references between the objects resolve, paths point into the
// bundle, dependencies mirror the apps'.
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
				if !strings.HasPrefix(f.Path, "flux/") || !strings.HasSuffix(f.Path, ".yaml") {
					t.Errorf("file %s: want flux/**.yaml", f.Path)
				}
				byPath[f.Path] = f.Data
			}

			var repo parsedRepository
			mustUnmarshal(t, byPath[OCIRepositoryFile], &repo)
			if repo.APIVersion != SourceAPIVersion || repo.Kind != "OCIRepository" || repo.Metadata.Name != o.rootName() || repo.Metadata.Namespace != o.Namespace {
				t.Errorf("OCIRepository: %s %s %s/%s", repo.APIVersion, repo.Kind, repo.Metadata.Namespace, repo.Metadata.Name)
			}
			if s := repo.Spec; s.URL != o.URL || s.Interval != o.Interval || s.Ref.Tag != o.Ref.Tag || s.Ref.Semver != o.Ref.Semver || s.Ref.Digest != "" {
				t.Errorf("OCIRepository spec: %+v", s)
			}
			if ls := repo.Spec.LayerSelector; ls.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" || ls.Operation != "extract" {
				t.Errorf("OCIRepository layerSelector: %+v", ls)
			}
			switch v := repo.Spec.Verify; {
			case o.VerifySecret == "" && len(o.VerifyIdentities) == 0 && v != nil:
				t.Errorf("OCIRepository verify: %+v, want none", v)
			case o.VerifySecret != "" && (v == nil || v.Provider != "cosign" || v.SecretRef == nil || v.SecretRef.Name != o.VerifySecret || v.MatchOIDCIdentity != nil):
				t.Errorf("OCIRepository verify: %+v, want cosign with secret %s", v, o.VerifySecret)
			case len(o.VerifyIdentities) > 0 && (v == nil || v.Provider != "cosign" || v.SecretRef != nil || !slices.Equal(v.MatchOIDCIdentity, o.VerifyIdentities)):
				// Keyless is never unconstrained: the identities are there,
				// and no key secret that would make Flux ignore them.
				t.Errorf("OCIRepository verify: %+v, want cosign keyless with %+v", v, o.VerifyIdentities)
			}
			if v := repo.Spec.Verify; v != nil && (o.TrustedRootSecret == "") != (v.TrustedRootSecretRef == nil) {
				t.Errorf("OCIRepository verify trustedRootSecretRef: %+v, want %q", v.TrustedRootSecretRef, o.TrustedRootSecret)
			}
			if sr := repo.Spec.SecretRef; (o.PullSecret == "") != (sr == nil) || sr != nil && sr.Name != o.PullSecret {
				t.Errorf("OCIRepository secretRef: %+v, want %q", sr, o.PullSecret)
			}

			checkSource := func(what string, k parsedKustomization) {
				t.Helper()
				if k.APIVersion != KustomizeAPIVersion || k.Kind != "Kustomization" || k.Metadata.Namespace != o.Namespace {
					t.Errorf("%s: %s %s in namespace %s", what, k.APIVersion, k.Kind, k.Metadata.Namespace)
				}
				if sr := k.Spec.SourceRef; sr.Kind != "OCIRepository" || sr.Name != repo.Metadata.Name || sr.Namespace != "" {
					t.Errorf("%s: sourceRef %+v does not name the OCIRepository", what, sr)
				}
				if k.Spec.Interval != o.Interval || k.Spec.Timeout != o.Timeout {
					t.Errorf("%s: interval %q timeout %q", what, k.Spec.Interval, k.Spec.Timeout)
				}
				if k.Metadata.Labels["app.kubernetes.io/part-of"] != o.StackName {
					t.Errorf("%s: labels %v", what, k.Metadata.Labels)
				}
			}

			var root parsedKustomization
			mustUnmarshal(t, byPath[KustomizationFile], &root)
			checkSource("root", root)
			if root.Metadata.Name != o.rootName() || root.Spec.Path != "./flux/apps" || !root.Spec.Prune || root.Spec.TargetNamespace != "" || len(root.Spec.DependsOn) != 0 {
				t.Errorf("root: %+v", root)
			}

			names := map[string]string{} // Kustomization name -> app
			wantNamespaces := map[string]bool{}
			hookFiles := 0
			for _, a := range o.Apps {
				if a.PreHooks {
					// TestHookPatchesSplitTheApp checks the rest.
					hookFiles++
					var h parsedKustomization
					mustUnmarshal(t, byPath["flux/apps/"+a.Name+"-hooks.yaml"], &h)
					checkSource(a.Name+" hooks", h)
					names[h.Metadata.Name] = a.Name + "-hooks"
				}
				var k parsedKustomization
				mustUnmarshal(t, byPath["flux/apps/"+a.Name+".yaml"], &k)
				checkSource(a.Name, k)
				names[k.Metadata.Name] = a.Name
				wantPath := "./apps/" + a.Name
				if a.Path != "" {
					wantPath = "./" + a.Path
				}
				if k.Spec.Path != wantPath || k.Spec.Prune != o.Prune || k.Spec.Wait != o.Wait {
					t.Errorf("app %s: path %q prune %v wait %v", a.Name, k.Spec.Path, k.Spec.Prune, k.Spec.Wait)
				}
				switch {
				case a.KeepNamespaces && k.Spec.TargetNamespace != "":
					t.Errorf("app %s: targetNamespace %q would move its objects", a.Name, k.Spec.TargetNamespace)
				case !a.KeepNamespaces && k.Spec.TargetNamespace != a.Namespace:
					t.Errorf("app %s: targetNamespace %q, want %q", a.Name, k.Spec.TargetNamespace, a.Namespace)
				}
				if a.Namespace != o.Namespace {
					wantNamespaces[a.Namespace] = true
				}
			}
			for _, a := range o.Apps {
				var k parsedKustomization
				mustUnmarshal(t, byPath["flux/apps/"+a.Name+".yaml"], &k)
				var got []string
				for _, d := range k.Spec.DependsOn {
					app, ok := names[d.Name]
					if !ok || d.Namespace != "" {
						t.Errorf("app %s: dependsOn %+v names no app Kustomization", a.Name, d)
					}
					got = append(got, app)
				}
				want := slices.Compact(slices.Sorted(slices.Values(a.DependsOn)))
				if a.PreHooks {
					want = append(want, a.Name+"-hooks")
				}
				if !slices.Equal(got, want) {
					t.Errorf("app %s: depends on %v, want %v", a.Name, got, want)
				}
			}

			gotNamespaces := map[string]bool{}
			for p, data := range byPath {
				ns, ok := strings.CutPrefix(p, "flux/apps/namespaces/")
				if !ok {
					continue
				}
				var n struct {
					APIVersion string `json:"apiVersion"`
					Kind       string
					Metadata   struct {
						Name        string
						Annotations map[string]string
					}
				}
				mustUnmarshal(t, data, &n)
				if n.APIVersion != "v1" || n.Kind != "Namespace" || n.Metadata.Name+".yaml" != ns || n.Metadata.Annotations[PruneDisabledKey] != "disabled" {
					t.Errorf("%s: %+v", p, n)
				}
				gotNamespaces[n.Metadata.Name] = true
			}
			if !maps.Equal(gotNamespaces, wantNamespaces) {
				t.Errorf("namespaces: got %v, want %v", gotNamespaces, wantNamespaces)
			}
			if want := 2 + len(o.Apps) + hookFiles + len(wantNamespaces); len(files) != want {
				t.Errorf("got %d files, want %d", len(files), want)
			}
		})
	}
}

// TestCRDs validates every generated Flux object against the CRDs of the
// Flux controllers (testdata/crds, see its README).
func TestCRDs(t *testing.T) {
	validators := map[string]*crdvalidate.Validator{}
	for kind, file := range map[string]string{
		"OCIRepository": "source.toolkit.fluxcd.io_ocirepositories.yaml",
		"Kustomization": "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "crds", file))
		if err != nil {
			t.Fatal(err)
		}
		v, err := crdvalidate.New(b)
		if err != nil {
			t.Fatal(err)
		}
		validators[kind] = v
	}
	checked := 0
	for _, tc := range goldenCases {
		files, err := Generate(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			var head struct{ Kind string }
			mustUnmarshal(t, f.Data, &head)
			if head.Kind == "Namespace" {
				continue // a core kind, checked by TestObjects
			}
			v := validators[head.Kind]
			if v == nil {
				t.Fatalf("%s: %s: unexpected kind %q", tc.name, f.Path, head.Kind)
			}
			if err := v.Validate(f.Data); err != nil {
				t.Errorf("%s: %s: %v", tc.name, f.Path, err)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("validated nothing")
	}
}

// TestCRDsRejectMistakes makes sure the CRD check has teeth: objects
// with the mistakes Generate guards against fail it.
func TestCRDsRejectMistakes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "crds", "kustomize.toolkit.fluxcd.io_kustomizations.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := crdvalidate.New(b)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(goldenCases[0].opts)
	if err != nil {
		t.Fatal(err)
	}
	var app []byte
	for _, f := range files {
		if f.Path == "flux/apps/airflow.yaml" {
			app = f.Data
		}
	}
	for _, tc := range []struct{ old, new string }{
		{"interval: 10m", "interval: 10 minutes"},
		{"kind: OCIRepository", "kind: HelmRepository"},
		{"prune: true", "prune: yes please"},
		{"path: ./apps/airflow", "paths: ./apps/airflow"},
	} {
		bad := bytes.Replace(app, []byte(tc.old), []byte(tc.new), 1)
		if bytes.Equal(bad, app) {
			t.Fatalf("%q is not in the generated object", tc.old)
		}
		if err := v.Validate(bad); err == nil {
			t.Errorf("%s -> %s: the CRD accepted it", tc.old, tc.new)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	ok := func(edit func(*Options)) Options {
		o := Options{
			StackName: "data", URL: "oci://registry.example.com/data", Ref: Ref{Tag: "1.0.0"},
			Apps: []App{{Name: "a", Namespace: "data"}, {Name: "b", Namespace: "data", DependsOn: []string{"a"}}},
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
		{"bad environment", ok(func(o *Options) { o.Environment = "Prod" }), `(?m)^environment "Prod": a lowercase RFC 1123 label`},
		{"bad namespace", ok(func(o *Options) { o.Namespace = "flux_system" }), `(?m)^namespace "flux_system": `},
		{"URL without scheme", ok(func(o *Options) { o.URL = "registry.example.com/data" }), `(?m)^URL "registry.example.com/data": want oci://<registry>/<repository>$`},
		{"URL without repository", ok(func(o *Options) { o.URL = "oci://registry.example.com" }), `(?m)^URL "oci://registry.example.com": want oci://`},
		{"URL with a tag", ok(func(o *Options) { o.URL = "oci://registry.example.com:5000/data:1.0.0" }), `(?m)^URL ".*": no tag here; the version goes in the ref$`},
		{"URL with a digest", ok(func(o *Options) { o.URL = "oci://registry.example.com/data@sha256:00" }), `(?m)^URL ".*": no digest here`},
		{"URL with capitals", ok(func(o *Options) { o.URL = "oci://registry.example.com/Data" }), `(?m)^URL "oci://registry.example.com/Data": `},
		{"no ref", ok(func(o *Options) { o.Ref = Ref{} }), `(?m)^ref: set a tag or a semver range$`},
		{"two refs", ok(func(o *Options) { o.Ref.Semver = "~1.0" }), `(?m)^ref: set a tag or a semver range, not both$`},
		{"bad tag", ok(func(o *Options) { o.Ref.Tag = "1.0.0+build" }), `(?m)^ref tag "1.0.0\+build": not a valid OCI tag$`},
		{"bad semver", ok(func(o *Options) { o.Ref = Ref{Semver: "~one"} }), `(?m)^ref semver range "~one": `},
		{"bad interval", ok(func(o *Options) { o.Interval = "10 minutes" }), `(?m)^interval "10 minutes": want a duration such as 30s, 10m or 1h30m$`},
		{"zero interval", ok(func(o *Options) { o.Interval = "0s" }), `(?m)^interval "0s": want a duration above zero$`},
		{"days", ok(func(o *Options) { o.Timeout = "1d" }), `(?m)^timeout "1d": want a duration`},
		{"bad verify secret", ok(func(o *Options) { o.VerifySecret = "Cosign" }), `(?m)^verify secret "Cosign": `},
		{"key and identities", ok(func(o *Options) {
			o.VerifySecret = "cosign-pub"
			o.VerifyIdentities = []OIDCIdentity{{Issuer: "^https://x$", Subject: "^y$"}}
		}), `(?m)^verify: a secret and OIDC identities exclude each other`},
		{"unconstrained subject", ok(func(o *Options) { o.VerifyIdentities = []OIDCIdentity{{Issuer: "^https://x$"}} }), `(?m)^verify identity 1: no subject: Flux would accept a keyless signature from any subject`},
		{"bad issuer regexp", ok(func(o *Options) { o.VerifyIdentities = []OIDCIdentity{{Issuer: "(", Subject: "x"}} }), `(?m)^verify identity 1: issuer "\(": error parsing regexp`},
		{"root alone", ok(func(o *Options) { o.TrustedRootSecret = "root" }), `(?m)^verify: a trusted root secret verifies nothing`},
		{"bad pull secret", ok(func(o *Options) { o.PullSecret = "-creds" }), `(?m)^pull secret "-creds": `},
		{"no apps", ok(func(o *Options) { o.Apps = nil }), `(?m)^no apps$`},
		{"app without name", ok(func(o *Options) { o.Apps[0].Name = "" }), `(?m)^app 0: name is empty$`},
		{"app without namespace", ok(func(o *Options) { o.Apps[0].Namespace = "" }), `(?m)^app "a": namespace is empty$`},
		{"app twice", ok(func(o *Options) { o.Apps[1].Name = "a"; o.Apps[1].DependsOn = nil }), `(?m)^app "a": defined twice$`},
		{"absolute path", ok(func(o *Options) { o.Apps[0].Path = "/monitoring" }), `(?m)^app "a": path "/monitoring": want a clean relative path inside the bundle$`},
		{"path outside the bundle", ok(func(o *Options) { o.Apps[0].Path = "../x" }), `(?m)^app "a": path "../x": want a clean relative path`},
		{"name too long", ok(func(o *Options) { o.Apps[0].Name = strings.Repeat("a", 60); o.Apps[1].DependsOn = nil }), `(?m)^app "a{60}": Kustomization name "data-a{60}" is longer than 63 characters`},
		{"depends on itself", ok(func(o *Options) { o.Apps[0].DependsOn = []string{"a"} }), `(?m)^app "a": depends on itself$`},
		{"depends on nothing", ok(func(o *Options) { o.Apps[1].DependsOn = []string{"c"} }), `(?m)^app "b": depends on "c", which is not an app$`},
		{"cycle", ok(func(o *Options) { o.Apps[0].DependsOn = []string{"b"} }), `(?m)^dependency cycle: a -> b -> a: Flux would wait forever$`},
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

func BenchmarkGenerate(b *testing.B) {
	o := goldenCases[0].opts
	for b.Loop() {
		if _, err := Generate(o); err != nil {
			b.Fatal(err)
		}
	}
}
