package stack_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/galley-dev/galley/compiler/stack"
)

// FuzzLoad feeds arbitrary CUE to the loader: it must never panic, and a
// failure must be reported as positioned stack errors or a plain error,
// never as a half-decoded stack.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"package p\nstack: {name: \"a\", version: \"1.0.0\", apps: {}}\n",
		"package p\nstack: {name: \"a\", version: \"1.0.0\", apps: x: {namespace: \"n\", chart: path: \"c\", dependsOn: [\"x\"]}}\n",
		"package p\nstack: name: 1\n",
		"package p\nstack: [[[[[[[[[[]]]]]]]]]]\n",
		"package p\na: b\nb: a\nstack: a\n",
		"package p\nimport \"galley.dev/stack/v1alpha1\"\nstack: v1alpha1.#Stack\n",
		"stack: {",
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		if err := os.WriteFile(filepath.Join(dir, "stack.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := stack.Load(context.Background(), dir)
		if err != nil {
			if s != nil {
				t.Fatalf("Load returned a stack and an error: %v", err)
			}
			var es stack.Errors
			if errors.As(err, &es) && len(es) == 0 {
				t.Fatal("Load returned an empty error list")
			}
			return
		}
		if s.Name == "" || s.Version == "" {
			t.Fatalf("Load accepted a stack without name or version: %+v", s)
		}
	})
}
