package compiler_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/yaml11"
)

// TestBundlesReadTheSameInYAML11: every YAML file of the bundle of every
// example, in every environment, and of the stacks on the real upstream
// charts, reads the same in a YAML 1.1 reader (PyYAML, Ansible's k8s
// module, the Python yq) as in a YAML 1.2 one, and yaml.v2 (YAML 1.1's
// Go reader, through sigs.k8s.io/yaml what kubectl, Argo CD and Flux use)
// reads what yaml.v3 reads.
func TestBundlesReadTheSameInYAML11(t *testing.T) {
	root := repoRoot(t)
	dirs, err := filepath.Glob(filepath.Join(root, "examples", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	dirs = append(dirs,
		filepath.Join(root, "testdata", "stacks", "real-charts"),
		filepath.Join(root, "testdata", "stacks", "reference-platform"))
	files := 0
	for _, dir := range dirs {
		// real-charts takes its charts from ../shared, outside the
		// checkout: every stack here is read with the checkout's parent as
		// its root.
		s, err := stack.Load(context.Background(), dir, stack.WithRoot(realChartsRoot(t)))
		if err != nil {
			t.Fatal(stack.FormatError(err, root))
		}
		for _, env := range append([]string{""}, s.Environments()...) {
			o := opts()
			o.Environment = env
			o.Root = realChartsRoot(t)
			res, err := compiler.Compile(context.Background(), dir, o)
			if err != nil {
				t.Fatalf("%s %s: %s", dir, env, stack.FormatError(err, root))
			}
			for _, f := range res.Tree.Files() {
				if !strings.HasSuffix(f.Path, ".yaml") {
					continue
				}
				files++
				name := filepath.Base(dir) + " " + env + " " + f.Path
				if err := yaml11.Check(f.Data); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				sameInGoReaders(t, name, f.Data)
			}
		}
	}
	if files < 100 {
		t.Fatalf("only %d YAML files checked", files)
	}
}

func sameInGoReaders(t *testing.T, name string, data []byte) {
	t.Helper()
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var v2, v3 any
		if err := yaml2.Unmarshal([]byte(doc), &v2); err != nil {
			t.Errorf("%s#%d: yaml.v2: %v", name, i, err)
			continue
		}
		if err := yaml.Unmarshal([]byte(doc), &v3); err != nil {
			t.Errorf("%s#%d: yaml.v3: %v", name, i, err)
			continue
		}
		if !reflect.DeepEqual(normal(v2), normal(v3)) {
			t.Errorf("%s#%d: yaml.v2 and yaml.v3 read different values", name, i)
		}
	}
}

// normal makes both readers' values comparable: maps with string keys,
// every number a float64.
func normal(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := map[string]any{}
		for k, e := range v {
			m[k.(string)] = normal(e)
		}
		return m
	case map[string]any:
		m := map[string]any{}
		for k, e := range v {
			m[k] = normal(e)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = normal(e)
		}
		return l
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return v
}
