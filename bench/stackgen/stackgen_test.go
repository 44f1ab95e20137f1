package stackgen_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bench/stackgen"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// TestWriteCompiles: a generated stack compiles, every app with its four
// objects (the test hook dropped), its patch and its labels.
func TestWriteCompiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack")
	if err := stackgen.Write(dir, stackgen.Options{Apps: 12}); err != nil {
		t.Fatal(err)
	}
	res, err := compiler.Compile(context.Background(), dir, compiler.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(stack.FormatError(err, dir))
	}
	if len(res.Index.Apps) != 12 {
		t.Fatalf("%d apps compiled, want 12", len(res.Index.Apps))
	}
	for _, a := range res.Index.Apps {
		if a.Objects != 4 {
			t.Errorf("app %s: %d objects, want 4", a.Name, a.Objects)
		}
	}
	deploy, ok := res.Tree.Get("apps/app-005/deployment-app-005.yaml")
	if !ok {
		t.Fatal("apps/app-005/deployment-app-005.yaml missing")
	}
	for _, want := range []string{"revisionHistoryLimit: 3", "platform.example.com/team: ingest", "image: registry.example.com/platform/service:1.5.0"} {
		if !strings.Contains(string(deploy), want) {
			t.Errorf("app-005's Deployment lacks %q:\n%s", want, deploy)
		}
	}
}

// TestFilesDeterministic: the same options give the same files.
func TestFilesDeterministic(t *testing.T) {
	o := stackgen.Options{Apps: 7, Name: "s", Version: "1.2.3"}
	if !reflect.DeepEqual(stackgen.Files(o), stackgen.Files(o)) {
		t.Fatal("two generations differ")
	}
	if n := len(stackgen.Files(o)); n != 1+7*8 {
		t.Errorf("%d files, want %d", n, 1+7*8)
	}
}

// TestWriteRefuses: no apps, or an existing directory, is an error and
// leaves nothing behind.
func TestWriteRefuses(t *testing.T) {
	parent := t.TempDir()
	if err := stackgen.Write(filepath.Join(parent, "none"), stackgen.Options{}); err == nil {
		t.Error("a stack of 0 apps was written")
	}
	existing := filepath.Join(parent, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := stackgen.Write(existing, stackgen.Options{Apps: 1}); !errors.Is(err, stackgen.ErrExists) {
		t.Errorf("writing over a directory: %v, want ErrExists", err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "existing" {
		t.Errorf("left behind: %v", entries)
	}
	if left, _ := os.ReadDir(existing); len(left) != 0 {
		t.Errorf("wrote into the existing directory: %v", left)
	}
}
