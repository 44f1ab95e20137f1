package compiler_test

import (
	"context"
	"maps"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// hookChart has what real charts do with hooks: a CRD and a custom
// resource of it, a workload, pre-install hooks (a Secret, then a Job) and
// two post-install Jobs, the second after the first (Airflow's migrations,
// then its user creation).
var hookChart = map[string]string{
	"charts/h/Chart.yaml": "apiVersion: v2\nname: h\nversion: 0.1.0\n",
	"charts/h/crds/widget.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`,
	"charts/h/templates/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}\n",
	"charts/h/templates/role.yaml":   "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: {{ .Release.Name }}\nrules: []\n",
	"charts/h/templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: "registry.example.com/x:1"}]}
`,
	"charts/h/templates/hooks.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-key
  annotations:
    helm.sh/hook: pre-install
    helm.sh/hook-weight: "-1"
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-setup
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: x, image: "registry.example.com/x:1"}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: post-install,post-upgrade
    helm.sh/hook-weight: "1"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: x, image: "registry.example.com/x:1"}]}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-create-user
  annotations:
    helm.sh/hook: post-install,post-upgrade
    helm.sh/hook-weight: "2"
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: x, image: "registry.example.com/x:1"}]}
`,
}

func hookStack(app, delivery string) map[string]string {
	files := maps.Clone(hookChart)
	files["stack.cue"] = `package p

stack: {
	name:    "s"
	version: "1.2.0"
	apps: h: {
		namespace: "data"
		chart: path: "charts/h"
		` + app + `
	}
	delivery: {` + delivery + `}
	environments: prod: {}
}
`
	return files
}

const bothEngines = `
		argocd: repository: "oci://registry.example.com/team/s"
		flux: repository: "oci://registry.example.com/team/s"
`

func annotationsOf(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var o struct {
		Metadata struct{ Annotations map[string]string }
	}
	if err := yaml.Unmarshal(data, &o); err != nil {
		t.Fatal(err)
	}
	return o.Metadata.Annotations
}

func TestHookMarks(t *testing.T) {
	tests := []struct {
		name, app, delivery string
		// want: file of apps/h/ -> annotation -> value ("" for absent)
		want map[string]map[string]string
	}{{
		name: "both engines, defaults", delivery: bothEngines,
		want: map[string]map[string]string{
			"customresourcedefinition-widgets.example.com.yaml": {"argocd.argoproj.io/sync-wave": "-1"},
			"deployment-h.yaml": {"argocd.argoproj.io/sync-wave": "", "argocd.argoproj.io/hook": "", "kustomize.toolkit.fluxcd.io/force": ""},
			"secret-h-key.yaml": {
				"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
				"argocd.argoproj.io/sync-wave": "", "kustomize.toolkit.fluxcd.io/force": "",
				"galley.dev/hook-phase": "pre",
			},
			"job-h-setup.yaml": {
				"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "",
				"kustomize.toolkit.fluxcd.io/force": "enabled", "galley.dev/hook-phase": "pre",
			},
			"job-h-migrate.yaml": {
				"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "0",
				"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded",
				"kustomize.toolkit.fluxcd.io/force":     "enabled",
				"galley.dev/hook-phase":                 "",
			},
			"job-h-create-user.yaml": {
				"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "1",
				"argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
			},
		},
	}, {
		name: "argo CD only, hooks overridden",
		app: `hooks: argocd: {
			preInstall: "Sync"
			objects: "Job/h-create-user": "PostSync"
		}`,
		delivery: `argocd: repository: "oci://registry.example.com/team/s"`,
		want: map[string]map[string]string{
			// pre-install hooks in the Sync phase, one wave per weight
			// before the app's objects; the CRDs before them all.
			"secret-h-key.yaml":      {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "-2"},
			"job-h-setup.yaml":       {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "-1", "kustomize.toolkit.fluxcd.io/force": "", "galley.dev/hook-phase": ""},
			"job-h-migrate.yaml":     {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "0"},
			"job-h-create-user.yaml": {"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/sync-wave": ""},
			"customresourcedefinition-widgets.example.com.yaml": {"argocd.argoproj.io/sync-wave": "-3"},
		},
	}, {
		name: "flux only", delivery: `flux: repository: "oci://registry.example.com/team/s"`,
		want: map[string]map[string]string{
			"customresourcedefinition-widgets.example.com.yaml": {"argocd.argoproj.io/sync-wave": ""},
			"job-h-migrate.yaml": {"argocd.argoproj.io/hook": "", "kustomize.toolkit.fluxcd.io/force": "enabled"},
			"secret-h-key.yaml":  {"kustomize.toolkit.fluxcd.io/force": ""},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, hookStack(tt.app, tt.delivery))
			res, err := compiler.Compile(context.Background(), dir, opts())
			if err != nil {
				t.Fatal(stack.FormatError(err, dir))
			}
			_, hooksK := res.Tree.Get("flux/apps/h-hooks.yaml")
			if want := strings.Contains(tt.delivery, "flux"); hooksK != want {
				t.Errorf("flux/apps/h-hooks.yaml exists: %v, want %v", hooksK, want)
			}
			for file, want := range tt.want {
				data, ok := res.Tree.Get("apps/h/" + file)
				if !ok {
					t.Fatalf("no apps/h/%s", file)
				}
				got := annotationsOf(t, data)
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: annotation %s = %q, want %q", file, k, got[k], v)
					}
				}
			}
		})
	}
}

func TestHookMarksUnknownObject(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, hookStack(`hooks: argocd: objects: "Job/h-nope": "Sync"`, bothEngines))
	_, err := compiler.Compile(context.Background(), dir, opts())
	if err == nil {
		t.Fatal("no error for a hook override naming no hook")
	}
	msg := stack.FormatError(err, dir)
	want := `stack.cue:\d+:\d+: stack.apps.h.hooks.argocd.objects: Job/h-nope: no such Helm hook in the chart; its hooks are Job/h-create-user, Job/h-migrate, Job/h-setup, Secret/h-key`
	if !regexp.MustCompile(want).MatchString(msg) {
		t.Fatalf("got:\n%s\nwant a match for:\n%s", msg, want)
	}
}

// TestArgoCDDelivery: names carry the environment, children pin the exact
// version while the root follows the range, and the AppProject allows
// exactly the bundle's cluster-scoped kinds, the cluster-scoped CRD's
// included.
func TestArgoCDDelivery(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, hookStack(`argocd: syncOptions: ["ServerSideApply=false"]`, `argocd: {
		repository: "oci://registry.example.com/team/s"
		targetRevision: "~1.2.0"
		clusterResources: [{group: "example.org", kind: "Gadget"}]
	}`))
	o := opts()
	o.Environment = "prod"
	res, err := compiler.Compile(context.Background(), dir, o)
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	type object struct {
		Metadata struct {
			Name       string
			Finalizers []string
		}
		Spec struct {
			Project string
			Source  struct {
				TargetRevision string `json:"targetRevision"`
			}
			SyncPolicy struct {
				SyncOptions []string `json:"syncOptions"`
			} `json:"syncPolicy"`
			ClusterResourceWhitelist []struct{ Group, Kind string } `json:"clusterResourceWhitelist"`
		}
	}
	get := func(path string) object {
		data, ok := res.Tree.Get(path)
		if !ok {
			t.Fatalf("no %s", path)
		}
		var o object
		if err := yaml.Unmarshal(data, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	root, app, proj := get("argocd/root.yaml"), get("argocd/apps/h.yaml"), get("argocd/apps/project.yaml")
	if root.Metadata.Name != "s-prod" || app.Metadata.Name != "s-prod-h" || proj.Metadata.Name != "s-prod" || app.Spec.Project != "s-prod" {
		t.Errorf("names: root %s, app %s (project %s), project %s", root.Metadata.Name, app.Metadata.Name, app.Spec.Project, proj.Metadata.Name)
	}
	if root.Spec.Source.TargetRevision != "~1.2.0" || app.Spec.Source.TargetRevision != "1.2.0" {
		t.Errorf("revisions: root %s, app %s; want ~1.2.0 and 1.2.0", root.Spec.Source.TargetRevision, app.Spec.Source.TargetRevision)
	}
	if got := strings.Join(app.Metadata.Finalizers, ","); got != "resources-finalizer.argocd.argoproj.io/foreground" {
		t.Errorf("finalizers %s", got)
	}
	if got := strings.Join(app.Spec.SyncPolicy.SyncOptions, ","); got != "CreateNamespace=true,ServerSideApply=false" {
		t.Errorf("sync options %s", got)
	}
	var kinds []string
	for _, gk := range proj.Spec.ClusterResourceWhitelist {
		kinds = append(kinds, gk.Group+"/"+gk.Kind)
	}
	want := "/Namespace,apiextensions.k8s.io/CustomResourceDefinition,example.com/Widget,example.org/Gadget,rbac.authorization.k8s.io/ClusterRole"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("clusterResourceWhitelist:\n got %s\nwant %s", got, want)
	}
}

// TestAPIChecks: a custom resource needs its CRD in the bundle, before it,
// or its API declared in kubernetes.apiVersions.
func TestAPIChecks(t *testing.T) {
	crd := hookChart["charts/h/crds/widget.yaml"]
	files := func(stackBody string) map[string]string {
		return map[string]string{
			"stack.cue":                    "package p\n\nstack: {\n\tname: \"s\"\n\tversion: \"1.0.0\"\n" + stackBody + "\n}\n",
			"charts/crd/Chart.yaml":        "apiVersion: v2\nname: crd\nversion: 0.1.0\n",
			"charts/crd/crds/widget.yaml":  crd,
			"charts/cr/Chart.yaml":         "apiVersion: v2\nname: cr\nversion: 0.1.0\n",
			"charts/cr/templates/cr.yaml":  "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n",
			"charts/cr/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
			"charts/cr/templates/cr2.yaml": "apiVersion: example.com/v2\nkind: Widget\nmetadata:\n  name: w2\n",
		}
	}
	const argo = `delivery: argocd: repository: "oci://registry.example.com/team/s"`
	const flux = `delivery: flux: repository: "oci://registry.example.com/team/s"`
	tests := []struct {
		name, stack string
		want        string // regular expression; "" for no error
	}{
		{"no CRD anywhere", `apps: cr: {namespace: "a", chart: path: "charts/cr"}`,
			`(?s)^stack.cue:\d+:\d+: stack.apps.cr: app cr: Widget/w \(from cr/templates/cr.yaml\) is a Widget of API example.com/v1, which neither Kubernetes, a CRD of the bundle, nor kubernetes.apiVersions provides: .*kubernetes.apiVersions \("example.com/v1"\)\n    the app has objects of 2 such APIs: example.com/v1 Widget, example.com/v2 Widget`},
		{"declared by the cluster", `kubernetes: apiVersions: ["example.com/v1", "example.com/v2/Widget"]
			apps: cr: {namespace: "a", chart: path: "charts/cr"}`, ""},
		{"CRD in an app that comes later (Argo CD)", `apps: {
				cr: {namespace: "a", chart: path: "charts/cr"}
				crd: {namespace: "a", chart: path: "charts/crd"}
			}
			kubernetes: apiVersions: ["example.com/v2"]
			` + argo,
			`stack.apps.cr: app cr: Widget/w \(from cr/templates/cr.yaml\) needs the CRD of example.com/v1 Widget, which app crd installs in Argo CD wave 0, not before this app's wave 0: add crd to dependsOn`},
		{"CRD in an app that Flux does not wait for", `apps: {
				cr: {namespace: "a", chart: path: "charts/cr", syncWave: 1}
				crd: {namespace: "a", chart: path: "charts/crd"}
			}
			kubernetes: apiVersions: ["example.com/v2"]
			` + flux,
			`stack.apps.cr.dependsOn: app cr: Widget/w .* needs the CRD of example.com/v1 Widget, which app crd installs: add crd to dependsOn, so that Flux applies it first`},
		{"CRD in an app it depends on", `apps: {
				cr: {namespace: "a", chart: path: "charts/cr", dependsOn: ["crd"]}
				crd: {namespace: "a", chart: path: "charts/crd"}
			}
			kubernetes: apiVersions: ["example.com/v2"]
			delivery: {
				argocd: repository: "oci://registry.example.com/team/s"
				flux: repository: "oci://registry.example.com/team/s"
			}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, files(tt.stack))
			_, err := compiler.Compile(context.Background(), dir, opts())
			if tt.want == "" {
				if err != nil {
					t.Fatal(stack.FormatError(err, dir))
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one matching %s", tt.want)
			}
			if msg := stack.FormatError(err, dir); !regexp.MustCompile(tt.want).MatchString(msg) {
				t.Fatalf("got:\n%s\nwant a match for:\n%s", msg, tt.want)
			}
		})
	}
}

// TestFluxNamesCarryTheEnvironment: one Flux holds several environments
// of a stack.
func TestFluxNamesCarryTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, hookStack("", `flux: repository: "oci://registry.example.com/team/s"`))
	o := opts()
	o.Environment = "prod"
	res, err := compiler.Compile(context.Background(), dir, o)
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	for path, want := range map[string]string{
		"flux/root/ocirepository.yaml": "s-prod",
		"flux/root/kustomization.yaml": "s-prod",
		"flux/apps/h.yaml":             "s-prod-h",
		"flux/apps/h-hooks.yaml":       "s-prod-h-hooks",
	} {
		data, ok := res.Tree.Get(path)
		if !ok {
			t.Fatalf("no %s", path)
		}
		var obj struct{ Metadata struct{ Name string } }
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Metadata.Name != want {
			t.Errorf("%s: name %s, want %s", path, obj.Metadata.Name, want)
		}
	}
}

// stsChart is a chart with a StatefulSet whose claim templates carry no
// apiVersion and kind, as most charts write them (Airflow's workers,
// triggerer and Redis), and a claim template that names them already.
var stsChart = map[string]string{
	"charts/h/Chart.yaml": "apiVersion: v2\nname: h\nversion: 0.1.0\n",
	"charts/h/templates/sts.yaml": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}
spec:
  serviceName: x
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: x, image: "registry.example.com/x:1"}]}
  volumeClaimTemplates:
  - metadata: {name: logs}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  - apiVersion: v1
    kind: PersistentVolumeClaim
    metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`,
}

// TestClaimTemplatesTyped: for Argo CD, every claim template of a
// StatefulSet has the apiVersion and kind the API server stores, or the
// StatefulSet stays OutOfSync after a successful server-side-apply sync
// (compiler/statefulset.go). Flux needs nothing: its dry-run diff goes
// through the API server's own conversion, so its output is left as the
// chart wrote it.
func TestClaimTemplatesTyped(t *testing.T) {
	typed := []map[string]any{
		{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "logs"},
		{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "data"},
	}
	tests := []struct {
		name, delivery string
		want           []map[string]any
	}{
		{"argo CD", `argocd: repository: "oci://registry.example.com/team/s"`, typed},
		{"both engines", bothEngines, typed},
		{"flux only", `flux: repository: "oci://registry.example.com/team/s"`, []map[string]any{
			{"apiVersion": nil, "kind": nil, "name": "logs"},
			{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "data"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(stsChart)
			files["stack.cue"] = hookStack("", tt.delivery)["stack.cue"]
			dir := t.TempDir()
			writeFiles(t, dir, files)
			res, err := compiler.Compile(context.Background(), dir, opts())
			if err != nil {
				t.Fatal(stack.FormatError(err, dir))
			}
			data, ok := res.Tree.Get("apps/h/statefulset-h.yaml")
			if !ok {
				t.Fatal("no apps/h/statefulset-h.yaml")
			}
			var sts struct {
				Spec struct {
					VolumeClaimTemplates []map[string]any `json:"volumeClaimTemplates"`
				}
			}
			if err := yaml.Unmarshal(data, &sts); err != nil {
				t.Fatal(err)
			}
			if len(sts.Spec.VolumeClaimTemplates) != len(tt.want) {
				t.Fatalf("%d claim templates, want %d:\n%s", len(sts.Spec.VolumeClaimTemplates), len(tt.want), data)
			}
			for i, w := range tt.want {
				got := sts.Spec.VolumeClaimTemplates[i]
				name, _ := got["metadata"].(map[string]any)["name"].(string)
				if name != w["name"] || got["apiVersion"] != w["apiVersion"] || got["kind"] != w["kind"] {
					t.Errorf("claim template %d: %s %v/%v, want %s %v/%v",
						i, name, got["apiVersion"], got["kind"], w["name"], w["apiVersion"], w["kind"])
				}
			}
		})
	}
}
