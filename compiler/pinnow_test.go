package compiler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// A chart that reads the clock fails the build, pointing at pinNow; with
// pinNow it renders SOURCE_DATE_EPOCH: three builds give one digest, and
// builds with different SOURCE_DATE_EPOCH values give different apps.
func TestPinNow(t *testing.T) {
	chart, err := filepath.Abs(filepath.Join("..", "testdata", "charts", "nondet"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(pin bool) string {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"stack.cue": fmt.Sprintf(`package s

stack: {
	name: "s"
	version: "0.1.0"
	kubernetes: version: "1.37.0"
	apps: clock: {
		namespace: "c"
		chart: path: %q
		values: family: "now"
		pinNow: %v
	}
	delivery: argocd: repository: "oci://registry.example.com/p/s"
}
`, chart, pin)})
		return dir
	}
	build := func(dir, epoch string) (*compiler.Result, error) {
		o := opts()
		o.Root = stack.Root{AllowOutside: true} // the test chart is named by absolute path
		o.Getenv = func(k string) string {
			if k == "SOURCE_DATE_EPOCH" {
				return epoch
			}
			return ""
		}
		return compiler.Compile(context.Background(), dir, o)
	}

	_, err = build(write(false), "1700000000")
	if err == nil {
		t.Fatal("a chart reading the clock built without pinNow")
	}
	msg := stack.FormatError(err, "")
	for _, want := range []string{"now at nondet/templates/_helpers.tpl:21 reads the clock", "set `pinNow: true`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}

	dir := write(true)
	app := func(epoch string) (string, string) {
		t.Helper()
		res, err := build(dir, epoch)
		if err != nil {
			t.Fatal(stack.FormatError(err, dir))
		}
		cm, ok := res.Tree.Get("apps/clock/configmap-clock-nondet.yaml")
		if !ok {
			var names []string
			for _, f := range res.Tree.Files() {
				names = append(names, f.Path)
			}
			t.Fatalf("no ConfigMap in %v", names)
		}
		return string(res.Bundle.Digest()), string(cm)
	}
	d1, a1 := app("1700000000")
	for range 2 {
		if d, _ := app("1700000000"); d != d1 {
			t.Errorf("same SOURCE_DATE_EPOCH, digests %s and %s", d1, d)
		}
	}
	if !strings.Contains(a1, `value: "1700000000"`) {
		t.Errorf("now is not SOURCE_DATE_EPOCH:\n%s", a1)
	}
	if _, a2 := app("1800000000"); a2 == a1 {
		t.Errorf("different SOURCE_DATE_EPOCH, same app:\n%s", a1)
	}
}
