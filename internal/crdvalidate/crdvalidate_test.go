package crdvalidate

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1, format: int32}
              port: {x-kubernetes-int-or-string: true}
              color: {type: string, enum: [red, blue]}
              when: {type: string, format: date-time}
              owner: {type: string, format: not-a-k8s-format}
              labels: {type: object, additionalProperties: {type: string}}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
              template: {type: object, x-kubernetes-embedded-resource: true, properties: {spec: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
              items:
                type: array
                items: {type: object, properties: {name: {type: string}}}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v0
    served: false
    storage: false
`

const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Cluster
  names: {kind: Gadget, plural: gadgets}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		crd  string
		obj  string
		want string // regular expression; empty: valid
	}{{
		name: "valid",
		crd:  widgetCRD,
		obj: `apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: data, labels: {app: w}, annotations: {note: "any value: at all"}}
spec:
  size: 2
  port: http
  color: red
  when: "2024-01-02T03:04:05Z"
  owner: "not checked: format unknown to the API server"
  labels: {a: b}
  extra: {anything: [1, 2]}
  template: {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}
  items: [{name: a}]
status: {whatever: true}
`,
	}, {
		name: "int-or-string takes an integer",
		crd:  widgetCRD,
		obj:  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1, port: 8080}\n",
	}, {
		name: "schema violations, all reported",
		crd:  widgetCRD,
		obj: `apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  size: 0
  port: true
  color: green
  when: yesterday
  labels: {a: 1}
`,
		want: `^Widget/w: spec.color in body should be one of \[red blue\]; spec.labels.a in body must be of type string: "integer"; spec.port in body must be of type integer,string: "boolean"; spec.size in body should be greater than or equal to 1; spec.when in body must be of type date-time: "yesterday"$`,
	}, {
		name: "missing required fields",
		crd:  widgetCRD,
		obj:  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n",
		want: `^Widget/w: spec.size in body is required$`,
	}, {
		name: "unknown fields, where the API server would prune",
		crd:  widgetCRD,
		obj: `apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  size: 1
  sise: 2
  items: [{name: a, nmae: b}]
  template: {apiVersion: v1, kind: Pod, metadata: {name: p}, oops: 1}
top: level
`,
		want: `^Widget/w: spec.items\[0\].nmae: unknown field; spec.sise: unknown field; spec.template.oops: unknown field; top: unknown field$`,
	}, {
		name: "metadata",
		crd:  widgetCRD,
		obj:  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {namespace: Data, labels: {ok: \"no spaces allowed\"}, annotations: {\"bad key\": x}}\nspec: {size: 1}\n",
		want: `^Widget/: metadata.annotations: "bad key": .*; metadata.labels: "ok": .*; metadata.name: Required value; metadata.namespace: .*RFC 1123 label`,
	}, {
		name: "namespace on a cluster-scoped object",
		crd:  gadgetCRD,
		obj:  "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g, namespace: data}\n",
		want: `^Gadget/g: metadata.namespace: must be empty: Gadget is cluster-scoped$`,
	}, {
		name: "another kind",
		crd:  widgetCRD,
		obj:  "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n",
		want: `^Gadget/g: apiVersion "example.com/v1" kind "Gadget" is not defined by CustomResourceDefinition widgets.example.com \(example.com Widget\)$`,
	}, {
		name: "a version not served",
		crd:  widgetCRD,
		obj:  "apiVersion: example.com/v0\nkind: Widget\nmetadata: {name: w}\n",
		want: `^Widget/w: version "v0" is not served by CustomResourceDefinition widgets.example.com \(served: v1\)$`,
	}, {
		name: "not a mapping",
		crd:  widgetCRD,
		obj:  "- a\n",
		want: `^reading object: want a YAML mapping`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateAgainstCRD([]byte(tt.crd), []byte(tt.obj))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && err == nil:
				t.Fatalf("got no error, want %s", tt.want)
			case tt.want != "" && !regexp.MustCompile(tt.want).MatchString(err.Error()):
				t.Fatalf("got error:\n%v\nwant it to match:\n%s", err, tt.want)
			}
			var e *Error
			if tt.want != "" && strings.Contains(tt.want, "in body") && !errors.As(err, &e) {
				t.Fatalf("got %T, want *Error", err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct{ name, crd, want string }{
		{"not YAML", "a: [", `^reading CustomResourceDefinition: `},
		{"not a CRD", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", `^not a CustomResourceDefinition: want apiextensions.k8s.io/v1 CustomResourceDefinition, got "v1" "ConfigMap"$`},
		{"no group", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\nspec: {names: {kind: X}}\n", `^CustomResourceDefinition x: spec.group and spec.names.kind are required$`},
		{"nothing served", strings.Replace(gadgetCRD, "served: true", "served: false", 1), `^CustomResourceDefinition gadgets.example.com: serves no version$`},
		{"a reference", strings.Replace(gadgetCRD, "{type: object, x-kubernetes-preserve-unknown-fields: true}", "{$ref: '#/x'}", 1), `^CustomResourceDefinition gadgets.example.com: version v1: schema references`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New([]byte(tt.crd))
			if err == nil || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("got %v, want an error matching %s", err, tt.want)
			}
		})
	}
	if _, err := New([]byte("apiVersion: v1\nkind: ConfigMap\n")); !errors.Is(err, ErrNotCRD) {
		t.Errorf("got %v, want ErrNotCRD", err)
	}
}

// TestArgoCD checks Argo CD's own CRDs from the shared chart corpus: they
// load, and they tell a good Application from a broken one.
func TestArgoCD(t *testing.T) {
	app := ArgoCDCRD(t, "crd-application.yaml")
	v, err := New(app)
	if err != nil {
		t.Fatal(err)
	}
	if v.Group() != "argoproj.io" || v.Kind() != "Application" {
		t.Fatalf("got %s %s", v.Group(), v.Kind())
	}
	good := `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a, namespace: argocd, finalizers: [resources-finalizer.argocd.argoproj.io]}
spec:
  project: default
  source: {repoURL: oci://registry.example.com/stack, targetRevision: 1.0.0, path: apps/a}
  destination: {server: https://kubernetes.default.svc, namespace: data}
  syncPolicy: {automated: {prune: true, selfHeal: true}, syncOptions: [CreateNamespace=true]}
`
	if err := v.Validate([]byte(good)); err != nil {
		t.Fatal(err)
	}
	bad := strings.NewReplacer("project: default", "project: 1", "path: apps/a", "pth: apps/a", "prune: true", "prune: sure").Replace(good)
	err = v.Validate([]byte(bad))
	want := `Application/a: spec.project in body must be of type string: "integer"; spec.source.pth: unknown field; spec.syncPolicy.automated.prune in body must be of type boolean: "string"`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	for _, f := range []string{"crd-appproject.yaml", "crd-applicationset.yaml"} {
		if _, err := New(ArgoCDCRD(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestCharts loads every CRD of the chart corpus (kube-prometheus-stack's
// are large and varied) and checks every custom resource in the reference
// renders against its CRD: charts that install fine must pass.
func TestCharts(t *testing.T) {
	root := sharedCharts(t)
	var crdFiles []string
	for _, g := range []string{"_golden/*.yaml", "*/crds/*.yaml", "*/charts/*/crds/*.yaml"} {
		m, _ := filepath.Glob(filepath.Join(root, g))
		crdFiles = append(crdFiles, m...)
	}
	crdDoc := regexp.MustCompile(`(?m)^kind: CustomResourceDefinition$`)
	validators := map[string]*Validator{} // group/kind
	for _, f := range crdFiles {
		for _, d := range documents(t, f) {
			if !crdDoc.MatchString(d) {
				continue
			}
			v, err := New([]byte(d))
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			validators[v.Group()+"/"+v.Kind()] = v
		}
	}
	if len(validators) == 0 {
		t.Fatal("no CRDs found in the chart corpus (../shared/charts)")
	}
	goldens, _ := filepath.Glob(filepath.Join(root, "_golden", "*.yaml"))
	var checked int
	for _, f := range goldens {
		for _, d := range documents(t, f) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(d), &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			group, _, _ := strings.Cut(head.APIVersion, "/")
			v := validators[group+"/"+head.Kind]
			if v == nil {
				continue
			}
			checked++
			if err := v.Validate([]byte(d)); err != nil {
				t.Errorf("%s: %v", filepath.Base(f), err)
			}
		}
	}
	t.Logf("%d CRDs, %d custom resources checked", len(validators), checked)
}

func documents(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1)
}

func BenchmarkValidateApplication(b *testing.B) {
	v, err := New(ArgoCDCRD(b, "crd-application.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	obj := []byte(`apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: a, namespace: argocd}
spec:
  project: default
  source: {repoURL: oci://registry.example.com/stack, targetRevision: 1.0.0, path: apps/a}
  destination: {server: https://kubernetes.default.svc, namespace: data}
`)
	for b.Loop() {
		if err := v.Validate(obj); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewApplicationSet(b *testing.B) {
	crd := ArgoCDCRD(b, "crd-applicationset.yaml")
	b.SetBytes(int64(len(crd)))
	for b.Loop() {
		if _, err := New(crd); err != nil {
			b.Fatal(err)
		}
	}
}
