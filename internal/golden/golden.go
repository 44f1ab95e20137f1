// Package golden is the one update knob and the one comparison for every
// golden file and script suite of galley's tests.
//
// GALLEY_UPDATE=1 (what `make update` sets) makes every golden test and
// every testscript suite rewrite its expectations instead of checking
// them, as CUE_UPDATE does for cue's. `go test -update` does the same for
// one package; it is kept from when each package had its own flag. CI runs
// the update and fails when it changes a tracked file: an expectation
// nobody regenerated is a failure, never a silent pass.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// Env is the environment variable that turns updating on.
const Env = "GALLEY_UPDATE"

var updateFlag = flag.Bool("update", false, "rewrite golden files and script expectations (same as "+Env+"=1)")

// Update reports whether this run rewrites expectations.
func Update() bool {
	return *updateFlag || os.Getenv(Env) != ""
}

// hint says how to accept a change.
const hint = "if the change is intended, run `make update` (or " + Env + "=1 go test) and review git diff"

// Check compares got with the file at path, or writes got there under
// Update.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if Update() {
		if cur, err := os.ReadFile(path); err != nil || !bytes.Equal(cur, got) {
			write(t, path, got)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file: %v (%s)", err, hint)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs: %s\n%s", path, hint, describe(got, want))
	}
}

// Dir compares the files under dir with got (slash-separated paths
// relative to dir), or replaces dir with them under Update.
func Dir(t testing.TB, dir string, got map[string][]byte) {
	t.Helper()
	if Update() {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		for name, data := range got {
			write(t, filepath.Join(dir, filepath.FromSlash(name)), data)
		}
		return
	}
	want := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		want[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatalf("reading golden files: %v (%s)", err, hint)
		return
	}
	for name, data := range got {
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s: a new file (%s)", name, hint)
		case !bytes.Equal(w, data):
			t.Errorf("%s differs from %s: %s\n%s", name, dir, hint, describe(data, w))
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("%s: golden file no longer produced (%s)", name, hint)
		}
	}
}

// Section compares got with the section name of the txtar archive ar,
// read from file, or rewrites that section (adding it when missing) under
// Update.
func Section(t testing.TB, file string, ar *txtar.Archive, name, got string) {
	t.Helper()
	i := -1
	for j, f := range ar.Files {
		if f.Name == name {
			i = j
		}
	}
	if Update() {
		if i >= 0 && string(ar.Files[i].Data) == got {
			return
		}
		if i < 0 {
			ar.Files = append(ar.Files, txtar.File{Name: name})
			i = len(ar.Files) - 1
		}
		ar.Files[i].Data = []byte(got)
		write(t, file, txtar.Format(ar))
		return
	}
	if i < 0 {
		t.Fatalf("%s has no %q section (%s)", file, name, hint)
		return
	}
	if want := string(ar.Files[i].Data); got != want {
		t.Errorf("%s: the %q section differs: %s\n%s", file, name, hint, describe([]byte(got), []byte(want)))
	}
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// describe shows the first line that differs, then both texts whole.
func describe(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	line := 0
	for line < len(g) && line < len(w) && g[line] == w[line] {
		line++
	}
	at := func(ls []string) string {
		if line < len(ls) {
			return fmt.Sprintf("%q", ls[line])
		}
		return "(end)"
	}
	return fmt.Sprintf("first difference at line %d:\n  got  %s\n  want %s\n--- got\n%s\n--- want\n%s", line+1, at(g), at(w), got, want)
}
