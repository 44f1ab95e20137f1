package compiler_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/golden"
)

func opts() compiler.Options {
	return compiler.Options{GalleyVersion: "test", Getenv: func(string) string { return "" }}
}

// TestCompileExample compiles the README's example stack and compares every
// file of the bundle tree, and the manifest, with testdata/golden.
func TestCompileExample(t *testing.T) {
	res, err := compiler.Compile(context.Background(), filepath.Join(repoRoot(t), "examples", "data-platform"), opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, ""))
	}
	goldenDir := filepath.Join("testdata", "golden", "data-platform")
	got := map[string][]byte{"manifest.json": res.Bundle.Manifest}
	for _, f := range res.Tree.Files() {
		got["tree/"+f.Path] = f.Data
	}
	golden.Dir(t, goldenDir, got)

	// Every app directory holds only Kubernetes objects (Flux fails on
	// anything else), and every app has an Argo CD Application.
	for _, f := range res.Tree.Files() {
		if strings.HasPrefix(f.Path, "apps/") || strings.HasPrefix(f.Path, "argocd/") {
			checkObject(t, f.Path, f.Data)
		}
	}
	for _, a := range res.Index.Apps {
		if _, ok := res.Tree.Get("argocd/apps/" + a.Name + ".yaml"); !ok {
			t.Errorf("no Argo CD Application for app %s", a.Name)
		}
	}
}

// TestReproducible builds the example from two checkouts in different
// directories: the digests must match, and SOURCE_DATE_EPOCH must be the
// only clock that can change them.
func TestReproducible(t *testing.T) {
	src := filepath.Join(repoRoot(t), "examples", "data-platform")
	var digests []string
	for _, name := range []string{"first", "second/nested/checkout"} {
		dir := filepath.Join(t.TempDir(), name)
		copyDir(t, src, dir)
		res, err := compiler.Compile(context.Background(), dir, opts())
		if err != nil {
			t.Fatal(stack.FormatError(err, ""))
		}
		digests = append(digests, res.Bundle.Digest().String())
	}
	if digests[0] != digests[1] {
		t.Fatalf("same stack in two directories gave %s and %s", digests[0], digests[1])
	}
	o := opts()
	o.Getenv = func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "1700000000"
		}
		return ""
	}
	res, err := compiler.Compile(context.Background(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bundle.Digest().String() == digests[0] {
		t.Fatal("SOURCE_DATE_EPOCH did not change the created annotation")
	}
}

// TestCompileErrors covers the checks made on rendered output.
func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "random",
			files: map[string]string{
				"charts/r/templates/secret.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r\ndata:\n  token: {{ randAlphaNum 16 | quote }}\n",
			},
			want: []string{
				"stack.cue:6:8: stack.apps.r.values: chart output is not deterministic",
				"ConfigMap/r field data.token (from r/templates/secret.yaml)",
			},
		},
		{
			name: "secret",
			files: map[string]string{
				"charts/r/values.yaml":           "auth:\n  existingSecret: \"\"\n  password: hunter2\n",
				"charts/r/templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: r\nstringData:\n  password: {{ .Values.auth.password }}\n",
			},
			want: []string{
				"stack.apps.r.secrets: chart r renders Secrets with data in plain text",
				"Secret/r (stringData.password, from r/templates/secret.yaml)",
				"this chart's values for that: auth.existingSecret",
				"secrets: allowPlaintext: true",
			},
		},
		{
			name: "template-error",
			files: map[string]string{
				"charts/r/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.missing.name }}\n",
			},
			want: []string{
				"stack.apps.r.chart: rendering chart r:",
				"r/templates/cm.yaml:4:",
			},
		},
		{
			name: "not-an-object",
			files: map[string]string{
				"charts/r/templates/cm.yaml": "just: data\n",
			},
			want: []string{"r/templates/cm.yaml: not a Kubernetes object"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{
				"stack.cue":           "package p\n\nstack: {\n\tname: \"s\"\n\tversion: \"1.0.0\"\n\tapps: r: {\n\t\tnamespace: \"n\"\n\t\tchart: path: \"charts/r\"\n\t}\n}\n",
				"charts/r/Chart.yaml": "apiVersion: v2\nname: r\nversion: 0.1.0\n",
			}
			for k, v := range tc.files {
				files[k] = v
			}
			writeFiles(t, dir, files)
			_, err := compiler.Compile(context.Background(), dir, opts())
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			var es stack.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, not stack.Errors: %v", err, err)
			}
			msg := stack.FormatError(err, dir)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestCollision: two apps writing the same object into one namespace.
func TestCollision(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"stack.cue": `package p

stack: {
	name: "s"
	version: "1.0.0"
	apps: {
		a: {namespace: "n", chart: path: "charts/c"}
		b: {namespace: "n", chart: path: "charts/c", releaseName: "a"}
	}
}
`,
		"charts/c/Chart.yaml":        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
		"charts/c/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
	})
	_, err := compiler.Compile(context.Background(), dir, opts())
	want := "stack.cue:8:3: stack.apps.b: apps a and b both write ConfigMap a in namespace n"
	if err == nil || !strings.Contains(stack.FormatError(err, dir), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func checkObject(t *testing.T, path string, data []byte) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	meta, _ := obj["metadata"].(map[string]any)
	if obj["apiVersion"] == nil || obj["kind"] == nil || meta["name"] == nil {
		t.Errorf("%s is not a Kubernetes object", path)
	}
	if bytes.Contains(data, []byte("\n---")) {
		t.Errorf("%s holds more than one document", path)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// sharedCharts is ../shared/charts beside the checkout; the tests fail
// rather than skip without it, since CI always has it.
func sharedCharts(t testing.TB) string {
	dir := filepath.Join(filepath.Dir(repoRoot(t)), "shared", "charts")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the real chart corpus is missing: %v (it lives in ../shared/charts beside the checkout)", err)
	}
	return dir
}
