package flux

import (
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestHookPatchesSplitTheApp builds an app directory the way
// kustomize-controller does (a generated kustomization.yaml listing every
// file, the Kustomization's patches and targetNamespace) with the real
// kustomize, once per Kustomization galley generates for an app with
// pre-install hooks: the hooks Kustomization must build exactly the marked
// objects, the app's Kustomization exactly the others.
func TestHookPatchesSplitTheApp(t *testing.T) {
	o := Options{
		StackName: "s", URL: "oci://registry.example.com/s", Ref: Ref{Tag: "1.0.0"}, Wait: false,
		Apps: []App{{Name: "db"}, {Name: "web", Namespace: "web", DependsOn: []string{"db"}, PreHooks: true}},
	}
	o.Apps[0].Namespace = "data"
	files, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	ks := map[string]kustomization{}
	for _, f := range files {
		var k kustomization
		if err := yaml.Unmarshal(f.Data, &k); err != nil {
			t.Fatal(err)
		}
		if k.Kind == "Kustomization" {
			ks[k.Metadata.Name] = k
		}
	}
	hooks, app := ks["s-web-hooks"], ks["s-web"]
	if hooks.Spec.Path != "./apps/web" || !hooks.Spec.Wait || hooks.Spec.TargetNamespace != "web" {
		t.Errorf("hooks Kustomization: %+v", hooks.Spec)
	}
	if got := names(hooks.Spec.DependsOn); !slices.Equal(got, []string{"s-db"}) {
		t.Errorf("hooks Kustomization depends on %v, want the app's dependencies", got)
	}
	if got := names(app.Spec.DependsOn); !slices.Equal(got, []string{"s-db", "s-web-hooks"}) {
		t.Errorf("app Kustomization depends on %v", got)
	}

	objects := map[string]string{
		"deployment-web.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n",
		"service-web.yaml":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: other\n",
		"job-migrate.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n" +
			"    helm.sh/hook: post-install\n",
		"job-setup.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: setup\n  annotations:\n" +
			"    helm.sh/hook: pre-install,pre-upgrade\n    " + HookPhaseKey + ": " + HookPhasePre + "\n",
		"secret-key.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: key\n  annotations:\n" +
			"    " + HookPhaseKey + ": " + HookPhasePre + "\n",
	}
	for _, tc := range []struct {
		k    kustomization
		want []string
	}{
		{hooks, []string{"Job/web/setup", "Secret/web/key"}},
		{app, []string{"Deployment/web/web", "Job/web/migrate", "Service/web/web"}},
	} {
		if got := build(t, objects, tc.k); !slices.Equal(got, tc.want) {
			t.Errorf("%s builds %v, want %v", tc.k.Metadata.Name, got, tc.want)
		}
	}
}

func names(deps []dependency) []string {
	var out []string
	for _, d := range deps {
		out = append(out, d.Name)
	}
	return out
}

// build runs kustomize on objects with k's patches and target namespace,
// as kustomize-controller generates the kustomization.yaml of a directory
// without one, and returns Kind/namespace/name of what comes out, sorted.
func build(t *testing.T, objects map[string]string, k kustomization) []string {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	gen := map[string]any{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": k.Spec.TargetNamespace}
	var resources []string
	for name, data := range objects {
		if err := fs.WriteFile("/app/"+name, []byte(data)); err != nil {
			t.Fatal(err)
		}
		resources = append(resources, name)
	}
	slices.Sort(resources)
	gen["resources"] = resources
	gen["patches"] = k.Spec.Patches
	b, err := yaml.Marshal(gen)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile("/app/kustomization.yaml", b); err != nil {
		t.Fatal(err)
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/app")
	if err != nil {
		t.Fatalf("%s: kustomize: %v", k.Metadata.Name, err)
	}
	var out []string
	for _, r := range rm.Resources() {
		out = append(out, strings.Join([]string{r.GetKind(), r.GetNamespace(), r.GetName()}, "/"))
	}
	slices.Sort(out)
	return out
}
