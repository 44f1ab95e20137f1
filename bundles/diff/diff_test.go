package diff

import (
	"bytes"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/golden"
)

// tree builds a bundle tree from path -> content.
func tree(t testing.TB, files map[string]string) *bundles.Tree {
	t.Helper()
	tr := bundles.NewTree()
	for p, data := range files {
		if err := tr.Add(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// indexJSON is a bundle.json with one app per name -> chart version.
func indexJSON(version string, charts map[string]string) string {
	x := bundles.Index{
		SchemaVersion: bundles.IndexSchemaVersion,
		Stack:         bundles.IndexStack{Name: "data", Version: version, Kubernetes: "1.33.0"},
		Apps:          []bundles.IndexApp{},
		Images:        []string{},
	}
	for _, name := range slices.Sorted(maps.Keys(charts)) {
		x.Apps = append(x.Apps, bundles.IndexApp{
			Name: name, Namespace: "data", Path: "apps/" + name,
			Chart:     bundles.IndexChart{Name: name, Version: charts[name], Digest: "sha256:" + charts[name]},
			DependsOn: []string{}, Images: []string{},
		})
	}
	b, err := x.Marshal()
	if err != nil {
		panic(err)
	}
	return string(b)
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        image: "web:1"
        env:
        - name: A
          value: "1"
        - name: B
          value: "2"
`

func TestDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b map[string]string
		// want lists "<section path> <status> <object id or file> <field path> <field status>"
		// for every change, in order; "" fields for a section-level or
		// object-level line.
		want    []string
		summary string
	}{{
		name:    "identical",
		a:       map[string]string{"apps/web/deployment-web.yaml": deployment},
		b:       map[string]string{"apps/web/deployment-web.yaml": deployment},
		summary: "no changes",
	}, {
		name: "formatting, comments and file names do not count",
		a:    map[string]string{"apps/web/deployment-web.yaml": deployment},
		b: map[string]string{"apps/web/web.yml": "# a comment\n" + strings.Replace(deployment, `image: "web:1"`, "image: web:1", 1) +
			"---\n"},
		summary: "no changes",
	}, {
		name: "changed field",
		a:    map[string]string{"apps/web/deployment-web.yaml": deployment},
		b:    map[string]string{"apps/web/deployment-web.yaml": strings.Replace(deployment, "web:1", "web:2", 1)},
		want: []string{
			`apps/web changed | Deployment web changed | spec.template.spec.containers[0].image changed "web:1" -> "web:2"`,
		},
		summary: "1 app changed, 0 objects added, 0 removed, 1 changed",
	}, {
		name: "quoted keys, numbers and added maps",
		a:    map[string]string{"apps/web/d.yaml": deployment},
		b: map[string]string{"apps/web/d.yaml": strings.Replace(strings.Replace(deployment, "replicas: 2", "replicas: 3\n  paused: true", 1),
			"app.kubernetes.io/name: web", "app.kubernetes.io/name: web2\n    tier.example.com/x: \"\"", 1)},
		want: []string{
			`apps/web changed | Deployment web changed | metadata.labels["app.kubernetes.io/name"] changed "web" -> "web2"`,
			`apps/web changed | Deployment web changed | metadata.labels["tier.example.com/x"] added -> ""`,
			`apps/web changed | Deployment web changed | spec.paused added -> true`,
			`apps/web changed | Deployment web changed | spec.replicas changed 2 -> 3`,
		},
		summary: "1 app changed, 0 objects added, 0 removed, 1 changed",
	}, {
		name: "named list items are matched by name",
		a:    map[string]string{"apps/web/d.yaml": deployment},
		b:    map[string]string{"apps/web/d.yaml": strings.Replace(deployment, "        - name: A\n", "        - name: Z\n          value: \"0\"\n        - name: A\n", 1)},
		want: []string{
			`apps/web changed | Deployment web changed | spec.template.spec.containers[0].env[0] added -> {"name":"Z","value":"0"}`,
		},
		summary: "1 app changed, 0 objects added, 0 removed, 1 changed",
	}, {
		name: "reordering named items is a change",
		a:    map[string]string{"apps/web/d.yaml": deployment},
		b: map[string]string{"apps/web/d.yaml": strings.Replace(deployment, "        - name: A\n          value: \"1\"\n        - name: B\n          value: \"2\"\n",
			"        - name: B\n          value: \"2\"\n        - name: A\n          value: \"1\"\n", 1)},
		want: []string{
			`apps/web changed | Deployment web changed | spec.template.spec.containers[0].env[0].name changed "A" -> "B"`,
			`apps/web changed | Deployment web changed | spec.template.spec.containers[0].env[0].value changed "1" -> "2"`,
			`apps/web changed | Deployment web changed | spec.template.spec.containers[0].env[1].name changed "B" -> "A"`,
			`apps/web changed | Deployment web changed | spec.template.spec.containers[0].env[1].value changed "2" -> "1"`,
		},
		summary: "1 app changed, 0 objects added, 0 removed, 1 changed",
	}, {
		name: "unnamed lists by position",
		a:    map[string]string{"argocd/x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\nl: [1, 2, 3]\n"},
		b:    map[string]string{"argocd/x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\nl: [1, 5]\n"},
		want: []string{
			`argocd changed | ConfigMap x changed | l[1] changed 2 -> 5`,
			`argocd changed | ConfigMap x changed | l[2] removed 3`,
		},
		summary: "0 apps changed, 0 objects added, 0 removed, 1 changed",
	}, {
		name: "apiVersion bump is a change, not a replacement",
		a:    map[string]string{"apps/web/pdb.yaml": "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: data}\n"},
		b:    map[string]string{"apps/web/pdb.yaml": "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web, namespace: data}\n"},
		want: []string{
			`apps/web changed | PodDisruptionBudget data/web changed | apiVersion changed "policy/v1beta1" -> "policy/v1"`,
		},
		summary: "1 app changed, 0 objects added, 0 removed, 1 changed",
	}, {
		name: "objects and apps added and removed",
		a: map[string]string{
			"apps/web/deployment-web.yaml": deployment,
			"apps/old/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\n",
			"flux/apps/web.yaml":           "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: web, namespace: flux-system}\n",
		},
		b: map[string]string{
			"apps/web/deployment-web.yaml": deployment,
			"apps/web/service-web.yaml":    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
			"apps/new/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n",
			"apps/new/cm2.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new2}\n",
		},
		want: []string{
			`apps/new added | ConfigMap new added`,
			`apps/new added | ConfigMap new2 added`,
			`apps/old removed | ConfigMap old removed`,
			`apps/web changed | Service web added`,
			`flux removed | Kustomization flux-system/web removed`,
		},
		summary: "3 apps changed (1 added, 1 removed), 3 objects added, 2 removed, 0 changed",
	}, {
		name: "chart versions and app fields from bundle.json",
		a: map[string]string{
			bundles.IndexPath:           indexJSON("1.0.0", map[string]string{"web": "1.0.0", "db": "2.0.0"}),
			"apps/web/deployment.yaml":  deployment,
			"apps/db/configmap-db.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\n",
		},
		b: map[string]string{
			bundles.IndexPath:           strings.Replace(indexJSON("1.1.0", map[string]string{"web": "1.1.0", "db": "2.0.0"}), `"namespace": "data",`+"\n      \"path\": \"apps/db\"", `"namespace": "db",`+"\n      \"path\": \"apps/db\"", 1),
			"apps/web/deployment.yaml":  deployment,
			"apps/db/configmap-db.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\n",
		},
		want: []string{
			`stack | version changed "1.0.0" -> "1.1.0"`,
			`apps/db changed | namespace changed "data" -> "db"`,
			`apps/web changed | chart web 1.0.0 -> 1.1.0`,
		},
		summary: "2 apps changed, 0 objects added, 0 removed, 0 changed",
	}, {
		name: "terraform files",
		a: map[string]string{
			"terraform/net/main.tf":                 "variable \"a\" {}\n\nresource \"x\" \"y\" {\n  n = 1\n}\n",
			"terraform/net/galley.auto.tfvars.json": `{"a": "1", "b": [1, 2]}`,
			"terraform/net/old.tf":                  "",
		},
		b: map[string]string{
			"terraform/net/main.tf":                 "variable \"a\" {}\n\nresource \"x\" \"y\" {\n  n = 2\n}\n",
			"terraform/net/galley.auto.tfvars.json": "{\n  \"a\": \"1\",\n  \"b\": [1, 3]\n}\n",
			"terraform/net/backend.tf.json":         `{}`,
		},
		want: []string{
			`terraform changed | terraform/net/backend.tf.json added`,
			`terraform changed | terraform/net/galley.auto.tfvars.json changed | b[1] changed 2 -> 3`,
			"terraform changed | terraform/net/main.tf changed | @@ -1,5 +1,5 @@\n variable \"a\" {}\n \n resource \"x\" \"y\" {\n-  n = 1\n+  n = 2\n }",
			`terraform changed | terraform/net/old.tf removed`,
		},
		summary: "0 apps changed, 0 objects added, 0 removed, 0 changed, 4 other files changed",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Diff(tree(t, tc.a), tree(t, tc.b))
			if err != nil {
				t.Fatal(err)
			}
			got := flatten(r)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if s := r.summaryLine(); s != tc.summary {
				t.Errorf("summary %q, want %q", s, tc.summary)
			}
			if r.Equal() != (len(tc.want) == 0) {
				t.Errorf("Equal() = %v with %d changes", r.Equal(), len(tc.want))
			}
		})
	}
}

// flatten lists a Result's changes one per line for comparison.
func flatten(r *Result) []string {
	var out []string
	val := func(v any) string {
		if v == nil {
			return ""
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	field := func(prefix string, f FieldChange) string {
		s := prefix + f.Path + " " + string(f.Status)
		if f.From != nil {
			s += " " + val(f.From)
		}
		if f.To != nil {
			s += " -> " + val(f.To)
		}
		return s
	}
	for _, f := range r.Stack {
		out = append(out, field("stack | ", f))
	}
	for _, s := range r.Sections {
		head := s.Path + " " + string(s.Status)
		if s.Path == "" {
			head = "/ " + string(s.Status)
		}
		if s.Chart != nil {
			out = append(out, head+" | chart "+chartText(s.Chart, "->"))
		}
		for _, f := range s.Fields {
			out = append(out, field(head+" | ", f))
		}
		for _, o := range s.Objects {
			if len(o.Fields) == 0 {
				out = append(out, head+" | "+o.ID()+" "+string(o.Status))
			}
			for _, f := range o.Fields {
				out = append(out, field(head+" | "+o.ID()+" "+string(o.Status)+" | ", f))
			}
		}
		for _, fc := range s.Files {
			switch {
			case fc.Status != Changed:
				out = append(out, head+" | "+fc.Path+" "+string(fc.Status))
			case fc.Diff != "":
				out = append(out, head+" | "+fc.Path+" changed | "+fc.Diff)
			}
			for _, f := range fc.Fields {
				out = append(out, field(head+" | "+fc.Path+" changed | ", f))
			}
		}
	}
	return out
}

const secretA = `apiVersion: v1
kind: Secret
metadata:
  name: creds
  labels: {tier: a}
type: Opaque
data:
  password: aHVudGVyMg==
  token: c2VjcmV0LXRva2Vu
  same: c2FtZQ==
stringData:
  url: postgres://user:hunter2@db/app
`

const secretB = `apiVersion: v1
kind: Secret
metadata:
  name: creds
  labels: {tier: b}
type: Opaque
data:
  password: Y29ycmVjdGhvcnNl
  same: c2FtZQ==
  tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t
`

// TestSecretsMasked: a Secret's values appear in no output, while its
// other fields and which keys changed do.
func TestSecretsMasked(t *testing.T) {
	secretValues := []string{
		"aHVudGVyMg==", "hunter2", "c2VjcmV0LXRva2Vu", "secret-token", "Y29ycmVjdGhvcnNl", "correcthorse",
		"c2FtZQ==", "postgres://", "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t", "BEGIN PRIVATE",
	}
	for _, tc := range []struct {
		name string
		a, b map[string]string
		want []string
	}{{
		name: "changed",
		a:    map[string]string{"apps/db/secret.yaml": secretA},
		b:    map[string]string{"apps/db/secret.yaml": secretB},
		want: []string{
			"apps/db changed | Secret creds changed | data.password changed",
			`apps/db changed | Secret creds changed | data["tls.key"] added`,
			"apps/db changed | Secret creds changed | data.token removed",
			`apps/db changed | Secret creds changed | metadata.labels.tier changed "a" -> "b"`,
			"apps/db changed | Secret creds changed | stringData.url removed",
		},
	}, {
		name: "added and removed",
		a:    map[string]string{"apps/db/secret.yaml": secretA},
		b:    map[string]string{"apps/db/other.yaml": strings.Replace(secretB, "name: creds", "name: other", 1)},
		want: []string{
			"apps/db changed | Secret creds removed",
			"apps/db changed | Secret other added",
		},
	}, {
		name: "data not a map",
		a:    map[string]string{"apps/db/secret.yaml": secretA},
		b:    map[string]string{"apps/db/secret.yaml": strings.Replace(secretA, "stringData:\n  url: postgres://user:hunter2@db/app\n", "stringData: postgres://user:hunter2@db/app\n", 1)},
		want: []string{
			"apps/db changed | Secret creds changed | stringData changed",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Diff(tree(t, tc.a), tree(t, tc.b))
			if err != nil {
				t.Fatal(err)
			}
			if got := flatten(r); !slices.Equal(got, tc.want) {
				t.Errorf("got changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, s := range r.Sections {
				for _, o := range s.Objects {
					for _, f := range o.Fields {
						if strings.HasPrefix(f.Path, "data") || strings.HasPrefix(f.Path, "stringData") {
							if !f.Masked || f.From != nil || f.To != nil {
								t.Errorf("%s: not masked: %+v", f.Path, f)
							}
						}
					}
				}
			}
			var out bytes.Buffer
			if err := r.WriteJSON(&out); err != nil {
				t.Fatal(err)
			}
			if err := r.WriteText(&out, TextOptions{Color: true}); err != nil {
				t.Fatal(err)
			}
			if err := r.WriteMarkdown(&out); err != nil {
				t.Fatal(err)
			}
			for _, v := range secretValues {
				if strings.Contains(out.String(), v) {
					t.Errorf("output shows a Secret value %q:\n%s", v, out.String())
				}
			}
		})
	}
}

// A ConfigMap is not a Secret: its values show.
func TestConfigMapNotMasked(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: one\n"
	r, err := Diff(tree(t, map[string]string{"apps/a/c.yaml": cm}), tree(t, map[string]string{"apps/a/c.yaml": strings.Replace(cm, "one", "two", 1)}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`apps/a changed | ConfigMap c changed | data.k changed "one" -> "two"`}
	if got := flatten(r); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// richCase exercises every kind of line the renderers write.
func richCase(t testing.TB) (*bundles.Tree, *bundles.Tree) {
	dashboard := func(title string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dash, namespace: monitoring}\ndata:\n  dash.json: |\n    {\n      \"a\": 1,\n      \"b\": 2,\n      \"c\": 3,\n      \"d\": 4,\n      \"e\": 5,\n      \"title\": \"" + title + "\"\n    }\n"
	}
	a := map[string]string{
		bundles.IndexPath:              indexJSON("1.4.0", map[string]string{"web": "1.0.0", "db": "2.0.0", "old": "0.1.0"}),
		"apps/web/deployment-web.yaml": deployment,
		"apps/db/secret.yaml":          secretA,
		"apps/old/cm.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\n",
		"monitoring/dash.yaml":         dashboard("Old"),
		"terraform/net/main.tf":        "a = 1\nb = 2\n",
	}
	b := map[string]string{
		bundles.IndexPath: indexJSON("1.5.0", map[string]string{"web": "1.1.0", "db": "2.0.0", "new": "0.2.0"}),
		"apps/web/deployment-web.yaml": strings.Replace(strings.Replace(deployment, "web:1", "web:2", 1), "replicas: 2",
			"replicas: 2\n  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1}", 1),
		"apps/web/service-web.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
		"apps/db/secret.yaml":       secretB,
		"apps/new/cm.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n",
		"monitoring/dash.yaml":      dashboard("New"),
		"terraform/net/main.tf":     "a = 1\nb = 3\n",
	}
	return tree(t, a), tree(t, b)
}

// TestRender compares the three renderings of richCase with
// testdata/golden/rich.{txt,md,json}.
func TestRender(t *testing.T) {
	a, b := richCase(t)
	r, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"rich.txt", func(w *bytes.Buffer) error { return r.WriteText(w, TextOptions{}) }},
		{"rich-color.txt", func(w *bytes.Buffer) error { return r.WriteText(w, TextOptions{Color: true}) }},
		{"rich.md", func(w *bytes.Buffer) error { return r.WriteMarkdown(w) }},
		{"rich.json", func(w *bytes.Buffer) error { return r.WriteJSON(w) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var got bytes.Buffer
			if err := tc.write(&got); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "golden", tc.file), got.Bytes())
		})
	}
	// The JSON decodes back to the same Result.
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Result
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if back.Summary != r.Summary || len(back.Sections) != len(r.Sections) {
		t.Errorf("JSON round trip: %+v", back.Summary)
	}
	// Colour only when asked for.
	var plain bytes.Buffer
	if err := r.WriteText(&plain, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Error("plain text has ANSI escapes")
	}
}

// TestDeterministic: the same trees give the same bytes, and the sections
// come in the documented order.
func TestDeterministic(t *testing.T) {
	a, b := richCase(t)
	var first []byte
	for i := range 5 {
		r, err := Diff(a, b)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := r.WriteJSON(&out); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = out.Bytes()
			var kinds []string
			for _, s := range r.Sections {
				kinds = append(kinds, s.Kind+":"+s.Name)
			}
			want := []string{"app:db", "app:new", "app:old", "app:web", "monitoring:monitoring", "terraform:terraform"}
			if !slices.Equal(kinds, want) {
				t.Errorf("sections %v, want %v", kinds, want)
			}
			continue
		}
		if !bytes.Equal(out.Bytes(), first) {
			t.Fatal("two diffs of the same trees differ")
		}
	}
}

func TestDiffBadIndex(t *testing.T) {
	good := tree(t, map[string]string{"apps/a/x.yaml": "x: 1\n"})
	bad := tree(t, map[string]string{bundles.IndexPath: "{not json"})
	if _, err := Diff(good, bad); err == nil || !strings.Contains(err.Error(), "second bundle: decoding bundle.json") {
		t.Errorf("got %v", err)
	}
}

func TestSummaryString(t *testing.T) {
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{Summary{}, "no changes"},
		{Summary{Apps: 3, ObjectsAdded: 2, ObjectsRemoved: 1, ObjectsChanged: 5}, "3 apps changed, 2 objects added, 1 removed, 5 changed"},
		{Summary{Apps: 1, AppsAdded: 1, ObjectsAdded: 1}, "1 app changed (1 added), 1 object added, 0 removed, 0 changed"},
		{Summary{FilesChanged: 1}, "0 apps changed, 0 objects added, 0 removed, 0 changed, 1 other file changed"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestUnified(t *testing.T) {
	lines := func(s string) []string { return splitLines(s) }
	for _, tc := range []struct {
		name, a, b string
		want       string
	}{
		{"same", "a\nb\n", "a\nb\n", ""},
		{"one line", "a\nb\nc\n", "a\nB\nc\n", "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c"},
		{"added at end", "a\n", "a\nb\n", "@@ -1 +1,2 @@\n a\n+b"},
		{"from empty", "", "a\n", "@@ -0,0 +1 @@\n+a"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "x\n2\n3\n4\n5\n6\n7\n8\n9\ny\n",
			"@@ -1,2 +1,2 @@\n-1\n+x\n 2\n@@ -9,2 +9,2 @@\n 9\n-10\n+y"},
		{"close changes join", "1\n2\n3\n4\n", "x\n2\n3\ny\n", "@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n-4\n+y"},
		{"far changes part", "1\n2\n3\n4\n5\n", "x\n2\n3\n4\ny\n", "@@ -1,2 +1,2 @@\n-1\n+x\n 2\n@@ -4,2 +4,2 @@\n 4\n-5\n+y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := 1
			got := strings.Join(unified(lines(tc.a), lines(tc.b), ctx), "\n")
			if got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestDiffLinesMinimal checks the line diff keeps every common line it can
// and always turns a into b.
func TestDiffLinesMinimal(t *testing.T) {
	a := strings.Split("a b c d e f g h", " ")
	b := strings.Split("a x c d y f g z h", " ")
	ops := diffLines(a, b)
	var gotA, gotB []string
	kept := 0
	for _, o := range ops {
		if o.kind != '+' {
			gotA = append(gotA, o.text)
		}
		if o.kind != '-' {
			gotB = append(gotB, o.text)
		}
		if o.kind == ' ' {
			kept++
		}
	}
	if !slices.Equal(gotA, a) || !slices.Equal(gotB, b) {
		t.Fatalf("ops do not rebuild the inputs: %v", ops)
	}
	if kept != 6 { // a c d f g h
		t.Errorf("kept %d lines, want 6 (the longest common subsequence)", kept)
	}
}

func BenchmarkDiff(b *testing.B) {
	ta, tb := richCase(b)
	for b.Loop() {
		if _, err := Diff(ta, tb); err != nil {
			b.Fatal(err)
		}
	}
}

// A broken Secret in an app directory is not an object: it is listed as a
// changed file, and its content is not shown.
func TestUnparsableFileNotShown(t *testing.T) {
	broken := "apiVersion: v1\nkind: Secret\nmetadata: {name: s\ndata:\n  password: aHVudGVyMg==\n"
	r, err := Diff(tree(t, map[string]string{"apps/a/s.yaml": broken}),
		tree(t, map[string]string{"apps/a/s.yaml": strings.Replace(broken, "aHVudGVyMg==", "Y29ycmVjdA==", 1)}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"apps/a changed | apps/a/s.yaml changed"}
	var out bytes.Buffer
	if err := r.WriteText(&out, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "aHVudGVyMg==") || strings.Contains(out.String(), "Y29ycmVjdA==") {
		t.Errorf("output shows the file's content:\n%s", out.String())
	}
	got := []string{}
	for _, s := range r.Sections {
		for _, f := range s.Files {
			got = append(got, s.Path+" "+string(s.Status)+" | "+f.Path+" "+string(f.Status))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
