package bundles

import (
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// Tree is the in-memory file tree of a bundle: slash-separated relative
// paths to file contents. It holds regular files only; directories are
// implied by the paths of the files in them. The zero Tree is not usable:
// call NewTree.
type Tree struct {
	files map[string][]byte
	dirs  map[string]struct{}
	size  int64
}

// File is one regular file of a Tree.
type File struct {
	Path string
	Data []byte
}

// NewTree returns an empty Tree.
func NewTree() *Tree {
	return &Tree{files: map[string][]byte{}, dirs: map[string]struct{}{}}
}

// Add adds a regular file. The path must be relative, clean and
// slash-separated, with no "..", no backslash and no control characters,
// and must not collide with another file or with a directory implied by one
// ("a" and "a/b" cannot both be files). Errors are *InvalidPathError.
//
// Add keeps data without copying it: do not modify it afterwards.
func (t *Tree) Add(name string, data []byte) error {
	if reason := checkPath(name); reason != "" {
		return &InvalidPathError{Path: name, Reason: reason}
	}
	if _, ok := t.files[name]; ok {
		return &InvalidPathError{Path: name, Reason: "duplicate file"}
	}
	if _, ok := t.dirs[name]; ok {
		return &InvalidPathError{Path: name, Reason: "already a directory"}
	}
	for d := range parents(name) {
		if _, ok := t.files[d]; ok {
			return &InvalidPathError{Path: name, Reason: "parent " + d + " is a file"}
		}
	}
	for d := range parents(name) {
		t.dirs[d] = struct{}{}
	}
	if data == nil {
		data = []byte{}
	}
	t.files[name] = data
	t.size += int64(len(data))
	return nil
}

// Get returns the content of a file. The slice is the Tree's own: do not
// modify it.
func (t *Tree) Get(name string) ([]byte, bool) {
	data, ok := t.files[name]
	return data, ok
}

// Files returns every file sorted by path.
func (t *Tree) Files() []File {
	files := make([]File, 0, len(t.files))
	for p, d := range t.files {
		files = append(files, File{Path: p, Data: d})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files
}

// Len returns the number of files.
func (t *Tree) Len() int { return len(t.files) }

// Size returns the total size of all files in bytes.
func (t *Tree) Size() int64 { return t.size }

// dirList returns every implied directory as a tar directory name (with a
// trailing slash), sorted.
func (t *Tree) dirList() []string {
	dirs := make([]string, 0, len(t.dirs))
	for d := range t.dirs {
		dirs = append(dirs, d+"/")
	}
	slices.Sort(dirs)
	return dirs
}

// checkPath returns why name is not an acceptable bundle path, or "".
func checkPath(name string) string {
	switch {
	case name == "":
		return "empty path"
	case name == ".":
		return "names the root directory"
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "contains a control character"
	case strings.Contains(name, `\`):
		return "contains a backslash"
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case slices.Contains(strings.Split(name, "/"), ".."):
		return `contains a ".." element`
	case path.Clean(name) != name:
		return "not a clean path (want " + path.Clean(name) + ")"
	}
	return ""
}

// parents yields every ancestor directory of a clean relative path, from
// the deepest up: "a/b/c" yields "a/b", "a".
func parents(name string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if !yield(d) {
				return
			}
		}
	}
}
