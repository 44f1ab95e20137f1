package compiler_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// TestRenderCache: a warm build renders nothing and gives the same digest
// as a cold one; changing one app's values re-renders only that app; a
// damaged entry is a miss, not a failure.
func TestRenderCache(t *testing.T) {
	src := filepath.Join(repoRoot(t), "examples", "data-platform")
	dir := filepath.Join(t.TempDir(), "stack")
	copyDir(t, src, dir)
	o := opts()
	o.CacheDir = t.TempDir()
	var rendered []string
	o.Progress = func(e compiler.Event) {
		if !e.Cached {
			rendered = append(rendered, e.App)
		}
	}

	uncached, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, ""))
	}
	cold, err := compiler.Compile(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rendered) != len(cold.Index.Apps) {
		t.Fatalf("cold build rendered %v", rendered)
	}
	rendered = nil
	warm, err := compiler.Compile(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rendered) != 0 {
		t.Errorf("warm build rendered %v, want nothing", rendered)
	}
	for _, r := range []*compiler.Result{cold, warm} {
		if r.Bundle.Digest() != uncached.Bundle.Digest() {
			t.Fatalf("cached build digest %s, uncached %s", r.Bundle.Digest(), uncached.Bundle.Digest())
		}
	}

	// One app's values change: only it renders again.
	extra := []byte("package platform\n\nstack: apps: postgres: values: storage: storageClassName: \"fast\"\n")
	if err := os.WriteFile(filepath.Join(dir, "extra.cue"), extra, 0o644); err != nil {
		t.Fatal(err)
	}
	rendered = nil
	if _, err := compiler.Compile(context.Background(), dir, o); err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	if len(rendered) != 1 || rendered[0] != "postgres" {
		t.Errorf("after changing postgres's values, rendered %v", rendered)
	}

	// Damage every entry: the build renders again and still succeeds.
	err = filepath.WalkDir(o.CacheDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.WriteFile(p, []byte("{not json"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	rendered = nil
	if _, err := compiler.Compile(context.Background(), dir, o); err != nil {
		t.Fatal(err)
	}
	if len(rendered) == 0 {
		t.Error("damaged cache entries were used")
	}
}
