package kustomize

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
      - name: side
        image: docker.io/library/busybox:1.36
`

const service = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: edge
  labels: {app: web, tier: front}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

// widget is a custom resource with no CRD among the documents.
const widget = `apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  items: [a, b]
  size: 1
`

const gadgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: Gadget, plural: gadgets}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`

const gadget = `apiVersion: example.com/v1
kind: Gadget
metadata:
  name: g
`

const roleBinding = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: rb
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
subjects:
- {kind: ServiceAccount, name: web}
- {kind: ServiceAccount, name: other, namespace: elsewhere}
- {kind: User, name: jane}
`

const namespaceObj = `apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
`

const clusterRole = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules: []
`

func TestApply(t *testing.T) {
	tests := []struct {
		name string
		docs []string
		opts Options
		want []string
	}{{
		name: "strategic merge patch naming its object",
		docs: []string{deployment},
		opts: Options{Patches: []Patch{{Patch: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template:
    spec:
      containers: [{name: web, image: nginx:2}]
`}}},
		want: []string{`apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: web
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: nginx:2
        name: web
      - image: docker.io/library/busybox:1.36
        name: side
`},
	}, {
		name: "labels and annotations on pod templates, opt-in, never on selectors or other kinds",
		docs: []string{deployment, service, cronJob},
		opts: Options{Labels: map[string]string{"cost-center": "data"}, Annotations: map[string]string{"owner": "analytics"}, PodTemplates: true},
		want: []string{`apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    owner: analytics
  labels:
    app: web
    cost-center: data
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      annotations:
        owner: analytics
      labels:
        app: web
        cost-center: data
    spec:
      containers:
      - image: nginx:1.25
        name: web
      - image: docker.io/library/busybox:1.36
        name: side
`, `apiVersion: v1
kind: Service
metadata:
  annotations:
    owner: analytics
  labels:
    app: web
    cost-center: data
    tier: front
  name: web
  namespace: edge
spec:
  ports:
  - port: 80
  selector:
    app: web
`, `apiVersion: batch/v1
kind: CronJob
metadata:
  annotations:
    owner: analytics
  labels:
    cost-center: data
  name: nightly
spec:
  jobTemplate:
    metadata:
      annotations:
        owner: analytics
      labels:
        cost-center: data
    spec:
      template:
        metadata:
          annotations:
            owner: analytics
          labels:
            cost-center: data
        spec:
          containers:
          - image: job:1
            name: job
          restartPolicy: Never
  schedule: 0 2 * * *
`},
	}, {
		name: "strategic merge patch with a label selector target",
		docs: []string{deployment, service},
		opts: Options{Patches: []Patch{{
			Target: &Target{Kind: "Service", LabelSelector: "tier=front"},
			Patch:  "apiVersion: v1\nkind: Service\nmetadata: {name: any}\nspec: {type: NodePort}\n",
		}}},
		want: []string{deployment, `apiVersion: v1
kind: Service
metadata:
  labels:
    app: web
    tier: front
  name: web
  namespace: edge
spec:
  ports:
  - port: 80
  selector:
    app: web
  type: NodePort
`},
	}, {
		name: "strategic merge patch on a custom resource replaces lists",
		docs: []string{widget},
		opts: Options{Patches: []Patch{{Patch: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {items: [c]}\n"}}},
		want: []string{`apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  items:
  - c
  size: 1
`},
	}, {
		name: "JSON6902 patch in YAML and in JSON",
		docs: []string{deployment, widget},
		opts: Options{Patches: []Patch{{
			Target: &Target{Group: "apps", Kind: "Deployment", Name: "web"},
			Patch:  "- {op: replace, path: /spec/template/spec/containers/1/image, value: busybox:1.37}\n- {op: add, path: /spec/paused, value: true}\n",
		}, {
			Target: &Target{Kind: "Widget"},
			Patch:  `[{"op": "remove", "path": "/spec/items/0"}]`,
		}}},
		want: []string{`apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: web
spec:
  paused: true
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.25
        name: web
      - image: busybox:1.37
        name: side
`, `apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  items:
  - b
  size: 1
`},
	}, {
		name: "labels and annotations go to metadata only",
		docs: []string{deployment},
		opts: Options{
			Labels:      map[string]string{"galley.dev/stack": "data", "app": "override"},
			Annotations: map[string]string{"galley.dev/version": "1.2.3"},
		},
		want: []string{`apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    galley.dev/version: 1.2.3
  labels:
    app: override
    galley.dev/stack: data
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.25
        name: web
      - image: docker.io/library/busybox:1.36
        name: side
`},
	}, {
		name: "images: tag, name and digest; an unmatched override is fine",
		docs: []string{deployment, `apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec:
  deep:
    containers: [{name: c, image: nginx}]
`},
		opts: Options{Images: []Image{
			{Name: "nginx", NewTag: "1.27"},
			{Name: "docker.io/library/busybox", NewName: "mirror.local/busybox", Digest: "sha256:" + strings.Repeat("ab", 32)},
			{Name: "not-used", NewTag: "x"},
		}},
		want: []string{`apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.27
        name: web
      - image: mirror.local/busybox@sha256:` + strings.Repeat("ab", 32) + `
        name: side
`, `apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  deep:
    containers:
    - image: nginx:1.27
      name: c
`},
	}, {
		name: "namespace fills in only what is missing",
		docs: []string{service, widget, gadgetCRD, gadget, roleBinding, namespaceObj, clusterRole},
		opts: Options{Namespace: "data"},
		want: []string{
			service, // already in edge
			`apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: data
spec:
  items:
  - a
  - b
  size: 1
`,
			gadgetCRD,
			gadget, // cluster-scoped by its CRD
			`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: rb
  namespace: data
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: r
subjects:
- kind: ServiceAccount
  name: web
  namespace: data
- kind: ServiceAccount
  name: other
  namespace: elsewhere
- kind: User
  name: jane
`,
			namespaceObj, // not renamed
			clusterRole,
		},
	}, {
		name: "patches see the namespace: own target and namespaced target",
		docs: []string{deployment},
		opts: Options{Namespace: "data", Patches: []Patch{
			{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n"},
			{Target: &Target{Kind: "Deployment", Namespace: "data"}, Patch: "[{op: add, path: /spec/paused, value: true}]"},
		}},
		want: []string{`apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: web
  namespace: data
spec:
  paused: true
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.25
        name: web
      - image: docker.io/library/busybox:1.36
        name: side
`},
	}, {
		name: "a patch that deletes an object drops it; empty documents pass through",
		docs: []string{"# Source: chart/templates/empty.yaml\n", deployment, widget, "\n---\n"},
		opts: Options{Patches: []Patch{{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n$patch: delete\n"}}},
		want: []string{"# Source: chart/templates/empty.yaml\n", widget, "\n---\n"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(bytesOf(tt.docs), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d documents, want %d:\n%s", len(got), len(tt.want), bytes.Join(got, []byte("---\n")))
			}
			for i := range got {
				if isEmptyDoc([]byte(tt.want[i])) {
					if string(got[i]) != tt.want[i] {
						t.Errorf("document %d: got %q, want it unchanged %q", i, got[i], tt.want[i])
					}
					continue
				}
				if g, w := normalize(t, string(got[i])), normalize(t, tt.want[i]); g != w {
					t.Errorf("document %d:\ngot:\n%s\nwant:\n%s", i, g, w)
				}
			}
		})
	}
}

// normalize re-encodes a YAML object with sorted keys in block style, so
// expectations can be written compactly.
func normalize(t *testing.T, s string) string {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	return string(y)
}

func bytesOf(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func TestApplyKeepsFormat(t *testing.T) {
	in := `# Source: chart/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm # the name
data:
  z: "1"
  a: two
`
	got, err := Apply([][]byte{[]byte(in)}, Options{Namespace: "data", Labels: map[string]string{"l": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Source: chart/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm # the name
  namespace: data
  labels:
    l: v
data:
  z: "1"
  a: two
`
	if string(got[0]) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got[0], want)
	}
}

func TestApplyNothingToDo(t *testing.T) {
	// Not even YAML: the fast path must not parse anything.
	docs := [][]byte{[]byte(deployment), []byte("{not yaml"), nil}
	got, err := Apply(docs, Options{Labels: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(docs) || &got[0] != &docs[0] {
		t.Fatalf("got a new slice, want the input itself")
	}

	// Only empty documents: nothing for Kustomize to do either.
	empty := [][]byte{[]byte("# only a comment\n"), []byte("---\n")}
	got, err = Apply(empty, Options{Namespace: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || &got[0] != &empty[0] {
		t.Fatalf("got %q, want the input itself", got)
	}
}

func TestApplyErrors(t *testing.T) {
	deploy := []string{deployment, service}
	tests := []struct {
		name string
		docs []string
		opts Options
		want string // regular expression
	}{{
		name: "target matching nothing",
		docs: deploy,
		opts: Options{Patches: []Patch{
			{Target: &Target{Kind: "Service"}, Patch: "[{op: add, path: /spec/type, value: NodePort}]"},
			{Target: &Target{Kind: "Service", Name: "nope"}, Patch: "[{op: add, path: /spec/type, value: NodePort}]"},
		}},
		want: `^patch 1: target kind=Service,name=nope matches no object$`,
	}, {
		name: "strategic merge patch naming a missing object",
		docs: deploy,
		opts: Options{Patches: []Patch{{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {replicas: 2}\n"}}},
		want: `^patch 0: target group=apps,version=v1,kind=Deployment,name=api matches no object$`,
	}, {
		name: "strategic merge patch in another namespace",
		docs: deploy,
		opts: Options{Namespace: "data", Patches: []Patch{{Patch: "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: data}\nspec: {type: NodePort}\n"}}},
		want: `^patch 0: target version=v1,kind=Service,name=web,namespace=data matches no object$`,
	}, {
		name: "label selector matching nothing",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{LabelSelector: "tier=back"}, Patch: "[{op: add, path: /metadata/labels/x, value: y}]"}}},
		want: `^patch 0: target labelSelector=tier=back matches no object$`,
	}, {
		name: "patch that is not YAML",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{Kind: "Service"}, Patch: "spec: [unclosed"}}},
		want: `^patch 0: not YAML: `,
	}, {
		name: "patch that is a scalar",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{Kind: "Service"}, Patch: "replicas"}}},
		want: `^patch 0: want a strategic merge patch \(an object\) or a JSON6902 operation list, got a string$`,
	}, {
		name: "empty patch",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{Kind: "Service"}, Patch: " \n"}}},
		want: `^patch 0: empty patch$`,
	}, {
		name: "JSON6902 patch without a target",
		docs: deploy,
		opts: Options{Patches: []Patch{{Patch: "[{op: add, path: /spec/type, value: NodePort}]"}}},
		want: `^patch 0: a JSON6902 patch \(an operation list\) needs a target$`,
	}, {
		name: "strategic merge patch without kind",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{Kind: "Service"}, Patch: "spec: {type: NodePort}"}}},
		want: `^patch 0: a strategic merge patch needs kind and metadata.name`,
	}, {
		name: "strategic merge patch without apiVersion or target",
		docs: deploy,
		opts: Options{Patches: []Patch{{Patch: "kind: Service\nmetadata: {name: web}\nspec: {type: NodePort}"}}},
		want: `^patch 0: a strategic merge patch without a target needs apiVersion$`,
	}, {
		name: "two objects in one patch",
		docs: deploy,
		opts: Options{Patches: []Patch{{Patch: "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web2}\n"}}},
		want: `^patch 0: holds 2 objects; give one object per patch$`,
	}, {
		name: "JSON6902 operation on a missing path",
		docs: deploy,
		opts: Options{Patches: []Patch{
			{Target: &Target{Kind: "Service"}, Patch: "[{op: add, path: /spec/type, value: NodePort}]"},
			{Target: &Target{Kind: "Deployment"}, Patch: "[{op: remove, path: /spec/nope}]"},
		}},
		want: `^patch 1 \(target kind=Deployment\): .*nope`,
	}, {
		name: "unknown JSON6902 operation",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{Kind: "Service"}, Patch: "[{op: frobnicate, path: /spec}]"}}},
		want: `^patch 0 \(target kind=Service\): .*frobnicate`,
	}, {
		name: "bad target regular expression",
		docs: deploy,
		opts: Options{Patches: []Patch{{Target: &Target{Name: "web("}, Patch: "[{op: add, path: /spec/x, value: 1}]"}}},
		want: `^patch 0: target name=web\(: .*missing closing \)`,
	}, {
		name: "document with two objects",
		docs: []string{deployment + "---\n" + widget},
		opts: Options{Namespace: "data"},
		want: `^document 0: holds 2 objects; pass one object per document$`,
	}, {
		name: "document with two objects, found while checking patches",
		docs: []string{service, deployment + "---\n" + widget},
		opts: Options{Patches: []Patch{{Target: &Target{Kind: "Service"}, Patch: "[{op: add, path: /spec/type, value: NodePort}]"}}},
		want: `^document 1: holds 2 objects; pass one object per document$`,
	}, {
		name: "document Kustomize would drop",
		docs: []string{deployment, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations: {config.kubernetes.io/local-config: \"true\"}\n"},
		opts: Options{Labels: map[string]string{"a": "b"}},
		want: `^document 1: annotated config.kubernetes.io/local-config, which Kustomize drops$`,
	}, {
		name: "document holding an empty mapping",
		docs: []string{deployment, "{}\n"},
		opts: Options{Labels: map[string]string{"a": "b"}},
		want: `^document 1: holds 0 objects; pass one object per document$`,
	}, {
		name: "document without a name",
		docs: []string{deployment, "apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n"},
		opts: Options{Labels: map[string]string{"a": "b"}},
		want: `^document 1: .*metadata.name`,
	}, {
		name: "the same object twice",
		docs: []string{deployment, deployment},
		opts: Options{Labels: map[string]string{"a": "b"}},
		want: `^document 1: .*already registered id`,
	}, {
		name: "invalid options",
		docs: deploy,
		opts: Options{
			Namespace:   "Data_1",
			Labels:      map[string]string{"bad key!": "ok", "ok": "bad value!"},
			Annotations: map[string]string{"/x": "fine"},
			Images:      []Image{{NewTag: "1"}, {Name: "a"}, {Name: "b", NewTag: "1", Digest: "sha256:00"}, {Name: "c", Digest: "00"}},
		},
		want: `(?s)^namespace "Data_1": .*\nlabel "bad key!": key: .*\nlabel "ok": value "bad value!": .*\nannotation "/x": key: .*\nimage 0: name is empty\nimage 1 \(a\): set newName, newTag or digest\nimage 2 \(b\): newTag and digest are exclusive\nimage 3 \(c\): digest "00" is not algorithm:hex$`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(bytesOf(tt.docs), tt.opts)
			if err == nil {
				t.Fatalf("got no error and %d documents, want an error matching %s", len(got), tt.want)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("got error:\n%v\nwant it to match:\n%s", err, tt.want)
			}
		})
	}
}

// TestApplyCharts runs the reference renders of real charts through Apply
// and checks that every object comes back once, in order, with the label
// and (when it is namespaced and had none) the namespace.
func TestApplyCharts(t *testing.T) {
	renders := chartRenders(t)
	for name, docs := range renders {
		t.Run(name, func(t *testing.T) {
			got, err := Apply(docs, Options{
				Namespace:   "galley-test",
				Labels:      map[string]string{"galley.dev/app": name},
				Annotations: map[string]string{"galley.dev/stack": "test"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(docs) {
				t.Fatalf("got %d documents, want %d", len(got), len(docs))
			}
			for i := range got {
				var in, out struct {
					Kind     string
					Metadata struct {
						Name, Namespace string
						Labels          map[string]string
					}
				}
				if err := yaml.Unmarshal(docs[i], &in); err != nil {
					t.Fatal(err)
				}
				if err := yaml.Unmarshal(got[i], &out); err != nil {
					t.Fatal(err)
				}
				if in.Kind != out.Kind || in.Metadata.Name != out.Metadata.Name {
					t.Fatalf("document %d: got %s/%s, want %s/%s", i, out.Kind, out.Metadata.Name, in.Kind, in.Metadata.Name)
				}
				if out.Metadata.Labels["galley.dev/app"] != name {
					t.Errorf("document %d (%s/%s): label missing", i, out.Kind, out.Metadata.Name)
				}
				if in.Metadata.Namespace != "" && out.Metadata.Namespace != in.Metadata.Namespace {
					t.Errorf("document %d (%s/%s): namespace %q moved to %q", i, out.Kind, out.Metadata.Name, in.Metadata.Namespace, out.Metadata.Namespace)
				}
				if in.Metadata.Namespace == "" && out.Metadata.Namespace != "" && out.Metadata.Namespace != "galley-test" {
					t.Errorf("document %d (%s/%s): namespace %q", i, out.Kind, out.Metadata.Name, out.Metadata.Namespace)
				}
			}
		})
	}
}

// chartRenders reads the reference renders of the shared chart corpus,
// split into documents that hold an object.
func chartRenders(tb testing.TB) map[string][][]byte {
	tb.Helper()
	dir := filepath.Join(repoRoot(tb), "..", "shared", "charts", "_golden")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		tb.Skipf("no chart renders in %s", dir)
	}
	out := map[string][][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var docs [][]byte
		for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if !isEmptyDoc([]byte(d)) {
				docs = append(docs, []byte(d))
			}
		}
		out[strings.TrimSuffix(filepath.Base(f), ".yaml")] = docs
	}
	return out
}

func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// TestApplyConcurrent runs Apply from several goroutines (run it with
// -race: Kustomize keeps its OpenAPI schema in globals) and checks that
// every run gives the same bytes.
func TestApplyConcurrent(t *testing.T) {
	docs := bytesOf([]string{deployment, service, widget, gadgetCRD, gadget, roleBinding})
	opts := Options{
		Namespace: "data",
		Patches:   []Patch{{Target: &Target{Kind: "Deployment"}, Patch: "[{op: add, path: /spec/replicas, value: 2}]"}},
		Labels:    map[string]string{"a": "b"},
		Images:    []Image{{Name: "nginx", NewTag: "2"}},
	}
	want, err := Apply(docs, opts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			got, err := Apply(docs, opts)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("goroutine %d: output differs", g)
			}
		})
	}
	wg.Wait()
}

func BenchmarkApply(b *testing.B) {
	docs := chartRenders(b)["kube-prometheus-stack"]
	if docs == nil {
		b.Skip("no kube-prometheus-stack render")
	}
	var size int
	for _, d := range docs {
		size += len(d)
	}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"nothing", Options{}},
		{"labels+namespace", Options{Namespace: "monitoring", Labels: map[string]string{"galley.dev/app": "prom"}}},
		{"patches", Options{Namespace: "monitoring", Patches: []Patch{
			{Target: &Target{Kind: "Deployment"}, Patch: "[{op: add, path: /spec/revisionHistoryLimit, value: 3}]"},
			{Target: &Target{Kind: "ServiceAccount"}, Patch: "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, annotations: {a: b}}\n"},
		}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := Apply(docs, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const cronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: job
            image: job:1
`
