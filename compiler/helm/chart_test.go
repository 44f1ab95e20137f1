package helm

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	c := mustLoad(t, testChart("parent"))
	if c.Name != "parent" || c.Version != "1.0.0" || c.AppVersion != "2.0" {
		t.Errorf("got %s %s (app %s), want parent 1.0.0 (app 2.0)", c.Name, c.Version, c.AppVersion)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(c.Digest) {
		t.Errorf("digest %q is not sha256:<hex>", c.Digest)
	}
	want := map[string]any{
		"global": map[string]any{"env": "production"},
		"child":  map[string]any{"greeting": "hello from parent"},
		"extra":  map[string]any{"enabled": false},
	}
	if got := DefaultValues(c); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultValues: got %v, want %v", got, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	notGzip := filepath.Join(dir, "chart.tgz")
	if err := os.WriteFile(notGzip, []byte("apiVersion: v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		is     error
		substr string
	}{
		{"missing path", filepath.Join(dir, "nope"), fs.ErrNotExist, "loading chart " + filepath.Join(dir, "nope")},
		{"directory without Chart.yaml", dir, ErrNotChart, "no Chart.yaml in " + dir},
		{"file that is not an archive", notGzip, ErrNotChart, "not a directory or a gzip-compressed chart archive"},
		{"dependency missing", testChart("needsdep"), ErrMissingDependency,
			"chart needsdep: dependency database 1.2.3 (from https://charts.example.com) not found in needsdep/charts/; run `helm dependency build`"},
		{"dependency at the wrong version", testChart("wrongdep"), ErrMissingDependency,
			"dependency database ^1.0.0 (from https://charts.example.com) (charts/ has version 0.9.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got error %v, want %v containing %q", err, tt.is, tt.substr)
			}
		})
	}

	var de *DependencyError
	if _, err := Load(testChart("needsdep")); !errors.As(err, &de) || de.Chart != "needsdep" || len(de.Missing) != 1 {
		t.Errorf("got %#v, want a DependencyError for needsdep with one dependency", err)
	}
}

// copyDir copies a test chart into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestDirDigest(t *testing.T) {
	orig := mustLoad(t, testChart("hooks")).Digest
	dir := copyDir(t, testChart("hooks"))
	if got := mustLoad(t, dir).Digest; got != orig {
		t.Fatalf("digest of a copy is %s, want %s", got, orig)
	}

	// Files .helmignore excludes do not count.
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "docs", "more.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, dir).Digest; got != orig {
		t.Errorf("changing ignored files changed the digest to %s", got)
	}

	if err := os.WriteFile(filepath.Join(dir, "templates", "NOTES.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, dir).Digest; got == orig {
		t.Error("changing a template left the digest unchanged")
	}
}

func TestLoadDirSymlinks(t *testing.T) {
	dir := copyDir(t, testChart("hooks"))
	if err := os.MkdirAll(filepath.Join(dir, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared", "shared.tpl")
	if err := os.WriteFile(shared, []byte(`{{- define "shared.name" -}}shared{{- end }}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A link inside the chart is followed, as helm does, and said.
	if err := os.Symlink(shared, filepath.Join(dir, "templates", "_shared.tpl")); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, dir)
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "found symbolic link in path: "+filepath.Join(dir, "templates", "_shared.tpl")) {
		t.Errorf("got warnings %q, want one about the symlink", c.Warnings)
	}
	found := false
	for _, f := range c.chart.Templates {
		found = found || f.Name == "templates/_shared.tpl"
	}
	if !found {
		t.Error("the symlinked template was not loaded")
	}

	// A link out of the chart could publish any file of the machine (a
	// key, a kubeconfig) to whoever pulls the bundle: refused, unlike helm.
	outside := filepath.Join(t.TempDir(), "id_rsa")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "files-key")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "symbolic link files-key points outside the chart") {
		t.Errorf("got %v, want a link-outside error", err)
	}
	if err := os.Remove(filepath.Join(dir, "files-key")); err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink("..", filepath.Join(dir, "templates", "loop")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "symbolic link loop") {
		t.Errorf("got %v, want a symbolic link loop error", err)
	}
}

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name string
	typ  byte
	body []byte
	link string
}

func file(name, body string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, body: []byte(body)}
}

func tgz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hd := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			hd.Size = 0
		}
		if err := tw.WriteHeader(hd); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil && e.typ == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dirEntries lists a chart directory as archive entries under prefix,
// as `helm package` lays them out.
func dirEntries(t testing.TB, dir, prefix string) []tarEntry {
	t.Helper()
	var out []tarEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, tarEntry{name: prefix + "/" + filepath.ToSlash(rel), typ: tar.TypeReg, body: data})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadArchive(t *testing.T) {
	// parent with the child subchart packaged as charts/child-0.3.1.tgz
	// and the extra subchart as a directory, as helm dependency build
	// and hand vendoring leave them.
	var entries []tarEntry
	for _, e := range dirEntries(t, testChart("parent"), "parent") {
		if !strings.HasPrefix(e.name, "parent/charts/child/") {
			entries = append(entries, e)
		}
	}
	child := tgz(t, dirEntries(t, testChart("parent/charts/child"), "child")...)
	entries = append(entries, tarEntry{name: "parent/charts/child-0.3.1.tgz", typ: tar.TypeReg, body: child})
	data := tgz(t, entries...)
	path := writeFile(t, "parent-1.0.0.tgz", data)

	c := mustLoad(t, path)
	sum := sha256.Sum256(data)
	if want := "sha256:" + hex.EncodeToString(sum[:]); c.Digest != want {
		t.Errorf("digest %s, want the file's %s", c.Digest, want)
	}
	if c.Name != "parent" || c.Version != "1.0.0" {
		t.Errorf("got %s %s, want parent 1.0.0", c.Name, c.Version)
	}

	req := baseRequest()
	req.Values = map[string]any{"extra": map[string]any{"enabled": true}}
	got := mustRender(t, c, req)
	want := mustRender(t, mustLoad(t, testChart("parent")), req)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("archive renders\n%q\nwant the directory's\n%q", got, want)
	}
}

func TestLoadHostileArchive(t *testing.T) {
	chartYAML := file("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
	nested := func(entries ...tarEntry) tarEntry {
		return tarEntry{name: "c/charts/sub-0.1.0.tgz", typ: tar.TypeReg, body: tgz(t, entries...)}
	}
	subYAML := file("sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n")
	tests := []struct {
		name    string
		entries []tarEntry
		is      error
		substr  string
	}{
		{"parent path", []tarEntry{chartYAML, file("c/../../etc/cron.d/x", "boom")}, ErrUnsafeArchive, `entry "c/../../etc/cron.d/x" refers to a parent directory`},
		{"parent path inside", []tarEntry{chartYAML, file("c/templates/../../x", "boom")}, ErrUnsafeArchive, "refers to a parent directory"},
		{"backslash parent path", []tarEntry{chartYAML, file(`c\..\..\x`, "boom")}, ErrUnsafeArchive, "refers to a parent directory"},
		{"absolute path", []tarEntry{chartYAML, file("/etc/passwd", "root")}, ErrUnsafeArchive, `entry "/etc/passwd" has an absolute path`},
		{"drive path", []tarEntry{chartYAML, file("C:/x", "root")}, ErrUnsafeArchive, "has an absolute path"},
		{"symlink", []tarEntry{chartYAML, {name: "c/templates/x.yaml", typ: tar.TypeSymlink, link: "/etc/passwd"}}, ErrUnsafeArchive, `entry "c/templates/x.yaml" is a symbolic link`},
		{"hard link", []tarEntry{chartYAML, {name: "c/values.yaml", typ: tar.TypeLink, link: "c/Chart.yaml"}}, ErrUnsafeArchive, "is a hard link"},
		{"device", []tarEntry{chartYAML, {name: "c/dev", typ: tar.TypeChar}}, ErrUnsafeArchive, "is a device or pipe"},
		{"fifo", []tarEntry{chartYAML, {name: "c/fifo", typ: tar.TypeFifo}}, ErrUnsafeArchive, "is a device or pipe"},
		{"two top directories", []tarEntry{chartYAML, file("d/templates/x.yaml", "kind: X")}, ErrUnsafeArchive, `entries in two top directories, "c" and "d"`},
		{"file at the top", []tarEntry{file("Chart.yaml", "name: c")}, ErrUnsafeArchive, `entry "Chart.yaml" is not inside the chart directory`},
		{"duplicate", []tarEntry{chartYAML, file("c/values.yaml", "a: 1"), file("c/./values.yaml", "a: 2")}, ErrUnsafeArchive, "appears twice"},
		{"decompression bomb", []tarEntry{chartYAML, {name: "c/files/zeros", typ: tar.TypeReg, body: make([]byte, 6<<20)}}, ErrUnsafeArchive,
			`entry "c/files/zeros" is 6291456 bytes, over the 5242880 byte limit for one file`},
		{"no Chart.yaml", []tarEntry{file("c/values.yaml", "a: 1")}, ErrNotChart, "no Chart.yaml in c/"},
		{"empty", nil, ErrNotChart, "no files in chart archive"},
		{"hostile subchart archive", []tarEntry{chartYAML, nested(subYAML, tarEntry{name: "sub/templates/x.yaml", typ: tar.TypeSymlink, link: "/etc/shadow"})},
			ErrUnsafeArchive, `c.tgz: charts/sub-0.1.0.tgz: entry "sub/templates/x.yaml" is a symbolic link`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.tgz", tgz(t, tt.entries...)))
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got error %v, want %v containing %q", err, tt.is, tt.substr)
			}
		})
	}
}

// A directory chart's packaged subcharts get the same checks as archives.
func TestLoadDirHostileSubchartArchive(t *testing.T) {
	dir := copyDir(t, testChart("random"))
	sub := tgz(t, file("sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"), file("sub/../x", "boom"))
	if err := os.MkdirAll(filepath.Join(dir, "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "charts", "sub-0.1.0.tgz"), sub, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), `charts/sub-0.1.0.tgz: entry "sub/../x" refers to a parent directory`) {
		t.Errorf("got %v, want an unsafe archive error naming the subchart archive", err)
	}
}

// The limits on the whole archive, checked with small ones.
func TestReadArchiveLimits(t *testing.T) {
	chartYAML := file("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
	sub := func(name string, inner []byte) tarEntry {
		return tarEntry{name: name, typ: tar.TypeReg, body: inner}
	}
	level2 := tgz(t, file("s2/Chart.yaml", "apiVersion: v2\nname: s2\nversion: 0.1.0\n"))
	level1 := tgz(t, file("s1/Chart.yaml", "apiVersion: v2\nname: s1\nversion: 0.1.0\n"), sub("s1/charts/s2-0.1.0.tgz", level2))

	lim := archiveLimits{maxTotal: 1000, maxFile: 600, maxEntries: 5, maxDepth: 1}
	tests := []struct {
		name    string
		entries []tarEntry
		substr  string
	}{
		{"total size", []tarEntry{chartYAML, file("c/a", strings.Repeat("a", 500)), file("c/b", strings.Repeat("b", 500))}, "decompresses to more than 1000 bytes"},
		{"entries", []tarEntry{chartYAML, file("c/1", ""), file("c/2", ""), file("c/3", ""), file("c/4", ""), file("c/5", "")}, "more than 5 entries"},
		{"nesting", []tarEntry{chartYAML, sub("c/charts/s1-0.1.0.tgz", level1)}, "subchart archives nested more than 1 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := lim
			if tt.name != "total size" {
				lim.maxTotal = 1 << 20
			}
			r := archiveReader{lim: lim}
			_, err := r.read(bytes.NewReader(tgz(t, tt.entries...)), "c.tgz", 0)
			if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got %v, want an unsafe archive error containing %q", err, tt.substr)
			}
		})
	}

	// The same archive passes within the limits.
	r := archiveReader{lim: defaultLimits}
	if _, err := r.read(bytes.NewReader(tgz(t, chartYAML, sub("c/charts/s1-0.1.0.tgz", level1))), "c.tgz", 0); err != nil {
		t.Errorf("nested archives within the limits: %v", err)
	}
}

func FuzzReadArchive(f *testing.F) {
	f.Add(tgz(f, file("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")))
	f.Add(tgz(f, file("c/../x", "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := archiveReader{lim: archiveLimits{maxTotal: 1 << 20, maxFile: 1 << 18, maxEntries: 100, maxDepth: 2}}
		files, err := r.read(bytes.NewReader(data), "fuzz.tgz", 0)
		if err != nil {
			return
		}
		for _, f := range files {
			if strings.HasPrefix(f.Name, "/") || strings.Contains("/"+f.Name+"/", "/../") {
				t.Errorf("accepted unsafe name %q", f.Name)
			}
		}
	})
}
