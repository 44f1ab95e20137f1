package bundles

import (
	"errors"
	"slices"
	"testing"
)

func TestTreeAddPaths(t *testing.T) {
	tests := []struct {
		name   string
		reason string // "" when valid
	}{
		{name: "a"},
		{name: "a/b/c.yaml"},
		{name: ".hidden"},
		{name: "a/..b"},
		{name: "a/b..c"},
		{name: "ünïcode/файл.yaml"},
		{name: "with space.yaml"},
		{name: "", reason: "empty path"},
		{name: ".", reason: "names the root directory"},
		{name: "..", reason: `contains a ".." element`},
		{name: "../a", reason: `contains a ".." element`},
		{name: "a/../b", reason: `contains a ".." element`},
		{name: "a/..", reason: `contains a ".." element`},
		{name: "/a", reason: "absolute path"},
		{name: "//a", reason: "absolute path"},
		{name: `a\b`, reason: "contains a backslash"},
		{name: `C:\a`, reason: "contains a backslash"},
		{name: "./a", reason: "not a clean path (want a)"},
		{name: "a/./b", reason: "not a clean path (want a/b)"},
		{name: "a//b", reason: "not a clean path (want a/b)"},
		{name: "a/", reason: "not a clean path (want a)"},
		{name: "a\x00b", reason: "contains a control character"},
		{name: "a\nb", reason: "contains a control character"},
		{name: "a\x7fb", reason: "contains a control character"},
		{name: "\xff", reason: "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewTree().Add(tt.name, []byte("x"))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Add(%q) = %v, want nil", tt.name, err)
				}
				return
			}
			var pe *InvalidPathError
			if !errors.As(err, &pe) {
				t.Fatalf("Add(%q) = %v, want *InvalidPathError", tt.name, err)
			}
			if pe.Path != tt.name || pe.Reason != tt.reason {
				t.Errorf("Add(%q) = %+v, want reason %q", tt.name, pe, tt.reason)
			}
		})
	}
}

func TestTreeAddConflicts(t *testing.T) {
	tests := []struct {
		desc   string
		first  string
		second string
		reason string
	}{
		{"duplicate", "a/b", "a/b", "duplicate file"},
		{"file over implied dir", "a/b", "a", "already a directory"},
		{"file under a file", "a", "a/b", "parent a is a file"},
		{"deep file under a file", "a/b", "a/b/c/d", "parent a/b is a file"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tree := NewTree()
			if err := tree.Add(tt.first, []byte("1")); err != nil {
				t.Fatal(err)
			}
			err := tree.Add(tt.second, []byte("2"))
			var pe *InvalidPathError
			if !errors.As(err, &pe) || pe.Reason != tt.reason {
				t.Fatalf("Add(%q) after %q = %v, want reason %q", tt.second, tt.first, err, tt.reason)
			}
			// A refused Add changes nothing.
			if tree.Len() != 1 || tree.Size() != 1 {
				t.Errorf("tree has %d files, %d bytes after a refused Add, want 1, 1", tree.Len(), tree.Size())
			}
			if got, _ := tree.Get(tt.first); string(got) != "1" {
				t.Errorf("Get(%q) = %q, want %q", tt.first, got, "1")
			}
		})
	}
}

func TestTreeFilesSorted(t *testing.T) {
	tree := NewTree()
	for _, name := range []string{"b", "a/z", "a-b", "a/b/c", "A"} {
		if err := tree.Add(name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, f := range tree.Files() {
		got = append(got, f.Path)
		if string(f.Data) != f.Path {
			t.Errorf("file %s holds %q", f.Path, f.Data)
		}
	}
	want := []string{"A", "a-b", "a/b/c", "a/z", "b"}
	if !slices.Equal(got, want) {
		t.Errorf("Files() = %q, want %q", got, want)
	}
	if got, want := tree.dirList(), []string{"a/", "a/b/"}; !slices.Equal(got, want) {
		t.Errorf("dirList() = %q, want %q", got, want)
	}
	if _, ok := tree.Get("a"); ok {
		t.Error(`Get("a") found a directory`)
	}
	if tree.Len() != 5 {
		t.Errorf("Len() = %d, want 5", tree.Len())
	}
}
