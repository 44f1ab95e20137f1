package compiler_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/crdvalidate"
)

// fluxStack delivers with Argo CD and Flux both: two apps, the second
// after the first, and a job after the second.
func fluxStack(flux string) map[string]string {
	return map[string]string{
		"stack.cue": `package p

stack: {
	name:    "s"
	version: "1.2.0"
	apps: {
		db: {namespace: "data", chart: path: "charts/c"}
		web: {namespace: "web", chart: path: "charts/c", dependsOn: ["db"]}
	}
	jobs: seed: {
		namespace: "data"
		image:     "registry.example.com/seed:1.0.0"
		command: ["/seed"]
		dependsOn: ["web"]
	}
	delivery: {
		argocd: repository: "oci://registry.example.com/team/s"
		flux: ` + flux + `
	}
}
`,
		"charts/c/Chart.yaml":        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"charts/c/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
	}
}

type fluxObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string
	Metadata   struct{ Name, Namespace string }
	Spec       struct {
		URL             string
		Ref             map[string]string
		Verify          *struct{ Provider string }
		Path            string
		TargetNamespace string `json:"targetNamespace"`
		Prune, Wait     bool
		Interval        string
		DependsOn       []struct{ Name string } `json:"dependsOn"`
	}
}

func TestCompileFlux(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, fluxStack(`{
			repository: "oci://registry.example.com/team/s"
			ref: semver: "~1.2.0"
			verify: secretRef: "cosign-pub"
			interval: "5m"
			wait: false
		}`))
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	var paths []string
	objs := map[string]fluxObject{}
	for _, f := range res.Tree.Files() {
		if !strings.HasPrefix(f.Path, "flux/") {
			continue
		}
		checkObject(t, f.Path, f.Data)
		paths = append(paths, f.Path)
		var o fluxObject
		if err := yaml.Unmarshal(f.Data, &o); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		objs[f.Path] = o
	}
	want := []string{
		"flux/apps/db.yaml", "flux/apps/namespaces/data.yaml", "flux/apps/namespaces/web.yaml",
		"flux/apps/seed.yaml", "flux/apps/web.yaml",
		"flux/root/kustomization.yaml", "flux/root/ocirepository.yaml",
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("flux/ holds\n%v\nwant\n%v", paths, want)
	}
	// Argo CD's objects are still there: a stack may target both.
	if _, ok := res.Tree.Get("argocd/root.yaml"); !ok {
		t.Error("argocd/root.yaml missing")
	}

	repo := objs["flux/root/ocirepository.yaml"]
	if repo.Spec.URL != "oci://registry.example.com/team/s" || repo.Spec.Ref["semver"] != "~1.2.0" || repo.Spec.Verify == nil || repo.Spec.Verify.Provider != "cosign" {
		t.Errorf("OCIRepository: %+v", repo.Spec)
	}
	for app, dep := range map[string]string{"db": "", "web": "s-db", "seed": "s-web"} {
		k := objs["flux/apps/"+app+".yaml"]
		var deps []string
		for _, d := range k.Spec.DependsOn {
			deps = append(deps, d.Name)
		}
		if dep == "" && len(deps) != 0 || dep != "" && !slices.Equal(deps, []string{dep}) {
			t.Errorf("%s: dependsOn %v, want %q", app, deps, dep)
		}
		if k.Metadata.Name != "s-"+app || k.Spec.Path != "./apps/"+app || k.Spec.Interval != "5m" || !k.Spec.Prune || k.Spec.Wait {
			t.Errorf("%s: %+v", app, k)
		}
		// Every Kustomization path is a directory of the bundle.
		if !slices.ContainsFunc(res.Tree.Files(), func(f bundles.File) bool { return strings.HasPrefix(f.Path, strings.TrimPrefix(k.Spec.Path, "./")+"/") }) {
			t.Errorf("%s: path %s is empty in the bundle", app, k.Spec.Path)
		}
	}
	if ns := objs["flux/apps/web.yaml"].Spec.TargetNamespace; ns != "web" {
		t.Errorf("web: targetNamespace %q", ns)
	}

	// The compiled objects pass the Flux CRDs.
	validators := map[string]*crdvalidate.Validator{}
	for kind, file := range map[string]string{
		"OCIRepository": "source.toolkit.fluxcd.io_ocirepositories.yaml",
		"Kustomization": "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
	} {
		b, err := os.ReadFile(filepath.Join("flux", "testdata", "crds", file))
		if err != nil {
			t.Fatal(err)
		}
		if validators[kind], err = crdvalidate.New(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		if v := validators[objs[p].Kind]; v != nil {
			data, _ := res.Tree.Get(p)
			if err := v.Validate(data); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
}

// TestCompileFluxDefaults: with only a repository, Flux deploys the tag of
// the stack version, prunes and waits.
func TestCompileFluxDefaults(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, fluxStack(`repository: "oci://registry.example.com/team/s"`))
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	var repo, db fluxObject
	for p, v := range map[string]*fluxObject{"flux/root/ocirepository.yaml": &repo, "flux/apps/db.yaml": &db} {
		data, ok := res.Tree.Get(p)
		if !ok {
			t.Fatalf("%s missing", p)
		}
		if err := yaml.Unmarshal(data, v); err != nil {
			t.Fatal(err)
		}
	}
	if repo.Metadata.Namespace != "flux-system" || repo.Spec.Ref["tag"] != "1.2.0" || len(repo.Spec.Ref) != 1 || repo.Spec.Verify != nil {
		t.Errorf("OCIRepository: %+v", repo)
	}
	if db.Spec.Interval != "10m" || !db.Spec.Prune || !db.Spec.Wait {
		t.Errorf("db: %+v", db.Spec)
	}
}

// TestCompileFluxKeepNamespaces: an app whose objects all carry their
// namespace, some outside the app's, gets no targetNamespace; one that
// also has objects without a namespace cannot be deployed by Flux.
func TestCompileFluxKeepNamespaces(t *testing.T) {
	const explicit = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n---\n" +
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-probe\n  namespace: kube-system\nspec:\n  ports: [{port: 80}]\n"

	dir := t.TempDir()
	files := fluxStack(`repository: "oci://registry.example.com/team/s"`)
	files["charts/c/templates/cm.yaml"] = explicit
	writeFiles(t, dir, files)
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	data, _ := res.Tree.Get("flux/apps/web.yaml")
	var k fluxObject
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	if k.Spec.TargetNamespace != "" {
		t.Errorf("web: targetNamespace %q would move its kube-system Service", k.Spec.TargetNamespace)
	}

	dir = t.TempDir()
	files["charts/c/templates/extra.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\n"
	writeFiles(t, dir, files)
	_, err = compiler.Compile(context.Background(), dir, opts())
	if err == nil {
		t.Fatal("compiled an app Flux cannot deploy")
	}
	msg := stack.FormatError(err, dir)
	for _, want := range []string{
		"stack.cue:7:3: stack.apps.db: Flux cannot deploy app db: it writes objects into namespaces kube-system",
		"objects with no namespace (ConfigMap/db-extra)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
}

// A keyless verify block reaches the OCIRepository as Flux reads it: the
// identities, and the trusted root Secret of a private Sigstore.
func TestCompileFluxKeyless(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, fluxStack(`{
			repository: "oci://registry.example.com/team/s"
			verify: {
				provider: "cosign"
				matchOIDCIdentity: [{issuer: "^https://gitlab\\.example\\.com$", subject: "^project_path:platform/data:ref_type:tag:ref:v"}]
				trustedRootSecretRef: "sigstore-root"
			}
		}`))
	res, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	f, ok := res.Tree.Get("flux/root/ocirepository.yaml")
	if !ok {
		t.Fatal("no flux/root/ocirepository.yaml")
	}
	var repo struct {
		Spec struct {
			Verify struct {
				Provider             string
				SecretRef            *struct{ Name string }             `json:"secretRef"`
				MatchOIDCIdentity    []struct{ Issuer, Subject string } `json:"matchOIDCIdentity"`
				TrustedRootSecretRef struct{ Name string }              `json:"trustedRootSecretRef"`
			}
		}
	}
	if err := yaml.Unmarshal(f, &repo); err != nil {
		t.Fatal(err)
	}
	v := repo.Spec.Verify
	if v.Provider != "cosign" || v.SecretRef != nil || len(v.MatchOIDCIdentity) != 1 ||
		v.MatchOIDCIdentity[0].Issuer != `^https://gitlab\.example\.com$` || v.MatchOIDCIdentity[0].Subject != "^project_path:platform/data:ref_type:tag:ref:v" ||
		v.TrustedRootSecretRef.Name != "sigstore-root" {
		t.Errorf("OCIRepository verify: %+v\n%s", v, f)
	}
}

func TestCompileFluxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, flux string
		want       []string
	}{
		{
			name: "semver",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			ref: semver: "~one.two"
		}`,
			want: []string{`stack.cue:20:17: stack.delivery.flux.ref.semver: semver range "~one.two": `},
		},
		{
			name: "tag and semver",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			ref: {tag: "1.2.0", semver: "~1.2"}
		}`,
			want: []string{"stack.delivery.flux.ref"},
		},
		{
			name: "interval",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			interval: "1d"
		}`,
			want: []string{"stack.cue:20:14: stack.delivery.flux.interval: invalid value \"1d\""},
		},
		{
			name: "repository with a tag",
			flux: `{repository: "oci://registry.example.com/team/s:1.2.0"}`,
			want: []string{"stack.delivery.flux.repository: invalid value"},
		},
		{
			name: "verify neither key nor identity",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			verify: provider: "cosign"
		}`,
			want: []string{"stack.cue:20:4: stack.delivery.flux.verify: verify needs secretRef (a Secret with the cosign public key) or matchOIDCIdentity (the keyless signers): without either Flux accepts a keyless signature from anyone"},
		},
		{
			name: "verify key and identity",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			verify: {provider: "cosign", secretRef: "pub", matchOIDCIdentity: [{issuer: "^https://x$", subject: "^y$"}]}
		}`,
			want: []string{"stack.delivery.flux.verify: secretRef and matchOIDCIdentity exclude each other"},
		},
		{
			name: "verify identity regexp",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			verify: {provider: "cosign", matchOIDCIdentity: [{issuer: "^https://x$", subject: "(unclosed"}]}
		}`,
			want: []string{`stack.cue:20:86: stack.delivery.flux.verify.matchOIDCIdentity[0].subject: subject "(unclosed" is not a Go regular expression (Flux compiles it with Go): error parsing regexp`},
		},
		{
			name: "verify empty identity list",
			flux: `{
			repository: "oci://registry.example.com/team/s"
			verify: {provider: "cosign", matchOIDCIdentity: []}
		}`,
			want: []string{"stack.delivery.flux.verify.matchOIDCIdentity"},
		},
		{
			name: "unknown field",
			flux: `{repository: "oci://registry.example.com/team/s", healthChecks: []}`,
			want: []string{"stack.delivery.flux.healthChecks: field not allowed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, fluxStack(tc.flux))
			_, err := compiler.Compile(context.Background(), dir, opts())
			if err == nil {
				t.Fatal("no error")
			}
			msg := stack.FormatError(err, dir)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q:\n%s", w, msg)
				}
			}
		})
	}
}
