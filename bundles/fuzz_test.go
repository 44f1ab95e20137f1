package bundles

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimits keep each input cheap.
var fuzzLimits = Limits{MaxFiles: 64, MaxFileSize: 1 << 16, MaxTotalSize: 1 << 18}

// addFuzzSeeds seeds with uncompressed tars: the fuzz functions gzip them
// unless raw is set, so the fuzzer mutates tar structure rather than
// breaking the gzip checksum.
func addFuzzSeeds(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteTar(&buf, sampleTree(f)); err != nil {
		f.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		f.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(gz); err != nil {
		f.Fatal(err)
	}
	f.Add(plain.Bytes(), false)
	f.Add(tarGz(f, reg("a", "1")), true)
	f.Add(rawTar(f, dir("./"), reg("./x/y", "z")), false)
	for _, tc := range hostileCases() {
		if tc.desc == "gzip bomb after the archive" || tc.desc == "gzip bomb in pax headers" {
			continue // too big for a seed corpus
		}
		gz, err := gzip.NewReader(bytes.NewReader(tc.archive(f)))
		if err != nil {
			f.Fatal(err)
		}
		var plain bytes.Buffer
		if _, err := plain.ReadFrom(gz); err != nil {
			f.Fatal(err)
		}
		f.Add(plain.Bytes(), false)
	}
}

func fuzzInput(t *testing.T, data []byte, raw bool) []byte {
	if raw {
		return data
	}
	return gzipBytes(t, data)
}

// FuzzReadTree checks that ReadTree never panics and that whatever it
// accepts is a valid Tree that survives WriteTar and ReadTree unchanged.
func FuzzReadTree(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		input := fuzzInput(t, data, raw)
		tree, err := ReadTree(bytes.NewReader(input), fuzzLimits)
		// CheckArchive accepts exactly what ReadTree accepts.
		if cerr := CheckArchive(bytes.NewReader(input), fuzzLimits); (cerr == nil) != (err == nil) {
			t.Fatalf("ReadTree: %v, CheckArchive: %v", err, cerr)
		}
		if err != nil {
			return
		}
		if tree.Len() > fuzzLimits.MaxFiles || tree.Size() > fuzzLimits.MaxTotalSize {
			t.Fatalf("accepted %d files, %d bytes over %+v", tree.Len(), tree.Size(), fuzzLimits)
		}
		for _, file := range tree.Files() {
			if reason := checkPath(file.Path); reason != "" {
				t.Fatalf("accepted path %q: %s", file.Path, reason)
			}
		}
		var buf bytes.Buffer
		if err := WriteTar(&buf, tree); err != nil {
			t.Fatal(err)
		}
		again, err := ReadTree(&buf, fuzzLimits)
		if err != nil {
			t.Fatalf("re-reading our own tar: %v", err)
		}
		if g, w := treeMap(again), treeMap(tree); !mapsEqual(g, w) {
			t.Fatalf("round trip changed the tree: %v != %v", g, w)
		}
	})
}

// FuzzUntar checks that Untar either fails leaving nothing behind, or
// extracts exactly the files ReadTree sees, as regular files inside dir.
func FuzzUntar(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		archive := fuzzInput(t, data, raw)
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		err := Untar(bytes.NewReader(archive), out, fuzzLimits)
		tree, treeErr := ReadTree(bytes.NewReader(archive), fuzzLimits)
		if (err == nil) != (treeErr == nil) {
			t.Fatalf("Untar = %v but ReadTree = %v", err, treeErr)
		}
		if err != nil {
			if left := listDir(t, parent); len(left) != 0 {
				t.Fatalf("failed Untar (%v) left %q", err, left)
			}
			return
		}
		got := map[string]string{}
		walkErr := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			if !d.Type().IsRegular() {
				return errors.New(p + " is not a regular file")
			}
			data, err := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			got[filepath.ToSlash(rel)] = string(data)
			return err
		})
		if walkErr != nil {
			t.Fatal(walkErr)
		}
		if w := treeMap(tree); !mapsEqual(got, w) {
			t.Fatalf("Untar wrote %v, ReadTree read %v", got, w)
		}
	})
}
