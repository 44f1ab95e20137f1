package bundles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestWriteTarIndependentOfInsertionOrder(t *testing.T) {
	names := sortedKeys(sampleFiles)
	var want []byte
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		tree := NewTree()
		for _, name := range names {
			if err := tree.Add(name, []byte(sampleFiles[name])); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if err := WriteTar(&buf, tree); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = buf.Bytes()
		} else if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("insertion order %q gave different bytes", names)
		}
		rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	}
}

// TestWriteTarFormat reads the archive back with the standard library and
// checks every field the format fixes.
func TestWriteTarFormat(t *testing.T) {
	tree := treeOf(t, map[string]string{
		"z.yaml":     "z",
		"a/b/c.yaml": "c",
		"a-b.yaml":   "ab",
		"a/d.yaml":   "d",
		strings.Repeat("long/", 30) + "name.yaml": "long",
		"ünïcode.yaml": "u",
	})
	var buf bytes.Buffer
	if err := WriteTar(&buf, tree); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || gz.Comment != "" || !gz.ModTime.IsZero() || gz.OS != 255 || gz.Extra != nil {
		t.Errorf("gzip header = %+v, want no name, comment, mtime or extra, OS unknown", gz.Header)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		wantMode, wantType := int64(0o644), byte(tar.TypeReg)
		if strings.HasSuffix(hdr.Name, "/") {
			wantMode, wantType = 0o755, tar.TypeDir
		}
		if hdr.Typeflag != wantType || hdr.Mode != wantMode {
			t.Errorf("%s: type %q mode %o, want %q %o", hdr.Name, hdr.Typeflag, hdr.Mode, wantType, wantMode)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q, want 0:0 with no names", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if !hdr.ModTime.Equal(time.Unix(0, 0)) || !hdr.AccessTime.IsZero() || !hdr.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v, want mtime at the epoch only", hdr.Name, hdr.ModTime, hdr.AccessTime, hdr.ChangeTime)
		}
		if hdr.Format != tar.FormatPAX && hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want PAX or its USTAR subset", hdr.Name, hdr.Format)
		}
		if wantType == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			if want, _ := tree.Get(hdr.Name); !bytes.Equal(data, want) {
				t.Errorf("%s: content %q, want %q", hdr.Name, data, want)
			}
		}
	}
	want := []string{
		"a-b.yaml", "a/", "a/b/", "a/b/c.yaml", "a/d.yaml",
		"long/", "long/long/",
	}
	if !strings.HasPrefix(strings.Join(names, "\n"), strings.Join(want, "\n")) {
		t.Errorf("entries start %q, want %q", names, want)
	}
	if last := names[len(names)-2:]; last[0] != "z.yaml" || last[1] != "ünïcode.yaml" {
		t.Errorf("entries end %q, want z.yaml then ünïcode.yaml (byte order)", last)
	}
	if len(names) != 6+2+30 {
		t.Errorf("%d entries, want 6 files and 32 directories: %q", len(names), names)
	}
}

func TestWriteTarEmptyTree(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTar(&buf, NewTree()); err != nil {
		t.Fatal(err)
	}
	tree, err := ReadTree(&buf, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if tree.Len() != 0 {
		t.Errorf("read back %d files from an empty tree", tree.Len())
	}
}

func TestWriteTarReadTreeRoundTrip(t *testing.T) {
	tree := sampleTree(t)
	var buf bytes.Buffer
	if err := WriteTar(&buf, tree); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTree(&buf, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := treeMap(got), treeMap(tree); !mapsEqual(g, w) {
		t.Errorf("round trip = %v, want %v", g, w)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
