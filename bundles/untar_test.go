package bundles

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var testLimits = Limits{MaxFiles: 5, MaxFileSize: 100, MaxTotalSize: 200}

// hostileCase is an archive that both ReadTree and Untar must refuse.
type hostileCase struct {
	desc    string
	archive func(t testing.TB) []byte
	lim     Limits
	reason  string // *UnsafeEntryError reason; "" when wantErr is set
	wantErr error  // errors.Is target
}

func hostileCases() []hostileCase {
	entries := func(es ...entry) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return tarGz(t, es...) }
	}
	link := func(typ byte, name, target string) entry {
		return entry{hdr: tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777}}
	}
	special := func(typ byte, name string) entry {
		return entry{hdr: tar.Header{Typeflag: typ, Name: name, Mode: 0o644, Devmajor: 1, Devminor: 3}}
	}
	many := func(n int, size int) []entry {
		var es []entry
		for i := range n {
			es = append(es, reg("f"+strings.Repeat("x", i), strings.Repeat("a", size)))
		}
		return es
	}
	return []hostileCase{
		{desc: "parent traversal", archive: entries(reg("ok", "1"), reg("../evil", "x")), reason: `contains a ".." element`},
		{desc: "inner traversal", archive: entries(reg("a/../../evil", "x")), reason: `contains a ".." element`},
		{desc: "traversal dir", archive: entries(dir("../")), reason: `contains a ".." element`},
		{desc: "absolute", archive: entries(reg("/etc/passwd", "x")), reason: "absolute path"},
		{desc: "backslash", archive: entries(reg(`..\evil`, "x")), reason: "contains a backslash"},
		{desc: "not clean", archive: entries(reg("a//b", "x")), reason: "not a clean path (want a/b)"},
		{desc: "symlink", archive: entries(link(tar.TypeSymlink, "apps", "/etc")), reason: "symbolic link to /etc"},
		{desc: "symlink then write through it", archive: entries(link(tar.TypeSymlink, "up", ".."), reg("up/evil", "x")), reason: "symbolic link to .."},
		{desc: "hard link", archive: entries(reg("a", "x"), link(tar.TypeLink, "b", "a")), reason: "hard link to a"},
		{desc: "char device", archive: entries(special(tar.TypeChar, "null")), reason: "device file"},
		{desc: "block device", archive: entries(special(tar.TypeBlock, "sda")), reason: "device file"},
		{desc: "fifo", archive: entries(special(tar.TypeFifo, "pipe")), reason: "named pipe"},
		{desc: "global pax header", archive: entries(entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"path": "evil"}}}), reason: `unsupported entry type 'g'`},
		{desc: "duplicate file", archive: entries(reg("a", "1"), reg("a", "2")), reason: "duplicate of an earlier file"},
		{desc: "duplicate dir", archive: entries(dir("a/"), dir("a/")), reason: "duplicate of an earlier directory"},
		{desc: "dir over file", archive: entries(reg("a", "1"), dir("a/")), reason: "directory where an earlier entry has a file"},
		{desc: "file over dir", archive: entries(dir("a/"), reg("a", "1")), reason: "file where an earlier entry has a directory"},
		{desc: "file under file", archive: entries(reg("a", "1"), reg("a/b", "2")), reason: "parent a is a file"},
		{desc: "dotslash duplicate", archive: entries(reg("a", "1"), reg("./a", "2")), reason: "duplicate of an earlier file"},
		{desc: "file too big", archive: entries(reg("big", strings.Repeat("x", 101))), lim: testLimits, wantErr: ErrLimitExceeded},
		{desc: "too many files", archive: entries(many(6, 1)...), lim: testLimits, wantErr: ErrLimitExceeded},
		{desc: "too many dirs", archive: entries(dir("a/"), dir("b/"), dir("c/"), dir("d/"), dir("e/"), dir("f/")), lim: testLimits, wantErr: ErrLimitExceeded},
		{desc: "total too big", archive: entries(many(3, 100)...), lim: testLimits, wantErr: ErrLimitExceeded},
		{
			// A valid archive followed by 16 MiB of zeros, inside one gzip
			// stream: only counting decompressed bytes stops it.
			desc: "gzip bomb after the archive",
			archive: func(t testing.TB) []byte {
				return gzipBytes(t, rawTar(t, reg("a", "1")), make([]byte, 16<<20))
			},
			lim:     Limits{MaxFiles: 10, MaxFileSize: 1 << 10, MaxTotalSize: 1 << 10},
			wantErr: ErrLimitExceeded,
		},
		{
			// Empty files with huge PAX records: no file body ever counts
			// against MaxTotalSize, the headers do.
			desc: "gzip bomb in pax headers",
			archive: func(t testing.TB) []byte {
				var es []entry
				for i := range 8 {
					e := reg("f"+strings.Repeat("x", i), "")
					e.hdr.PAXRecords = map[string]string{"comment": strings.Repeat("z", 900<<10)}
					es = append(es, e)
				}
				return tarGz(t, es...)
			},
			lim:     Limits{MaxFiles: 10, MaxFileSize: 1 << 10, MaxTotalSize: 1 << 10},
			wantErr: ErrLimitExceeded,
		},
	}
}

func TestHostileArchives(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.desc, func(t *testing.T) {
			archive := tc.archive(t)
			check := func(op string, err error) {
				t.Helper()
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("%s = %v, want %v", op, err, tc.wantErr)
					}
					return
				}
				var ue *UnsafeEntryError
				if !errors.As(err, &ue) || ue.Reason != tc.reason {
					t.Fatalf("%s = %v, want *UnsafeEntryError with reason %q", op, err, tc.reason)
				}
			}
			_, err := ReadTree(bytes.NewReader(archive), tc.lim)
			check("ReadTree", err)
			check("CheckArchive", CheckArchive(bytes.NewReader(archive), tc.lim))

			parent := t.TempDir()
			err = Untar(bytes.NewReader(archive), filepath.Join(parent, "out"), tc.lim)
			check("Untar", err)
			if left := listDir(t, parent); len(left) != 0 {
				t.Errorf("failed Untar left %q", left)
			}
		})
	}
}

func TestReadTreeMalformed(t *testing.T) {
	valid := tarGz(t, reg("a", "hello"))
	tests := []struct {
		desc    string
		archive []byte
		want    string
	}{
		{"not gzip", []byte("plain text"), "reading gzip header"},
		{"empty", nil, "reading gzip header"},
		{"truncated gzip", valid[:len(valid)-6], "unexpected EOF"},
		{"bad gzip checksum", append(valid[:len(valid)-8:len(valid)-8], 0, 0, 0, 0, 0, 0, 0, 0), "checksum"},
		{"gzip of garbage", gzipBytes(t, bytes.Repeat([]byte("garbage!"), 100)), "reading tar"},
		{"truncated tar", gzipBytes(t, rawTar(t, reg("a", strings.Repeat("x", 600)))[:1024]), "reading a from tar"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := ReadTree(bytes.NewReader(tt.archive), Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadTree = %v, want an error containing %q", err, tt.want)
			}
			if err := CheckArchive(bytes.NewReader(tt.archive), Limits{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckArchive = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestUntarAccepts covers archives from other tools that are still safe.
func TestUntarAccepts(t *testing.T) {
	archive := tarGz(t,
		dir("./"),
		dir("./apps/"),
		reg("./apps/a.yaml", "a"),
		dir("./empty/"),
		reg("b/c.yaml", "c"), // parent never listed
		entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "mode.sh", Mode: 0o4777, Size: 1, Uid: 1000, Uname: "someone"}, body: "x"},
	)
	tree, err := ReadTree(bytes.NewReader(archive), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"apps/a.yaml": "a", "b/c.yaml": "c", "mode.sh": "x"}
	if got := treeMap(tree); !mapsEqual(got, want) {
		t.Errorf("ReadTree = %v, want %v", got, want)
	}

	out := filepath.Join(t.TempDir(), "out")
	if err := Untar(bytes.NewReader(archive), out, Limits{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var dirs []string
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, rel)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(data)
			// Modes from the archive are ignored: no setuid, no exec.
			if info.Mode().Perm()&0o7111 != 0 || info.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s has mode %v", rel, info.Mode())
			}
		default:
			t.Errorf("%s has mode %v, want a regular file or directory", rel, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(got, want) {
		t.Errorf("extracted %v, want %v", got, want)
	}
	if want := []string{".", "apps", "b", "empty"}; !slices.Equal(dirs, want) {
		t.Errorf("extracted directories %q, want %q", dirs, want)
	}
}

func TestUntarAtomic(t *testing.T) {
	good := tarGz(t, reg("new.yaml", "new"))
	// The first entry is written before the second is refused.
	bad := tarGz(t, reg("partial.yaml", "x"), reg("../evil", "x"))

	tests := []struct {
		desc    string
		prepare func(t *testing.T, out string)
		archive []byte
		wantErr error // when the archive is good; a bad one must fail anyhow
		check   func(t *testing.T, out string)
	}{
		{desc: "fails into a missing dir", archive: bad, check: isAbsent},
		{
			desc:    "fails into an empty dir",
			prepare: func(t *testing.T, out string) { mkdir(t, out) },
			archive: bad,
			check:   holds(),
		},
		{
			desc: "refuses a non-empty dir",
			prepare: func(t *testing.T, out string) {
				mkdir(t, out)
				writeFile(t, filepath.Join(out, "mine.txt"), "keep me")
			},
			archive: good,
			wantErr: ErrRefuseOverwrite,
			check:   holds("mine.txt"),
		},
		{
			desc:    "refuses a file",
			prepare: func(t *testing.T, out string) { writeFile(t, out, "keep me") },
			archive: good,
			wantErr: ErrRefuseOverwrite,
			check: func(t *testing.T, out string) {
				if data, err := os.ReadFile(out); err != nil || string(data) != "keep me" {
					t.Errorf("out = %q, %v; want the file untouched", data, err)
				}
			},
		},
		{
			desc: "refuses a symlink to a dir",
			prepare: func(t *testing.T, out string) {
				target := filepath.Join(filepath.Dir(out), "target")
				mkdir(t, target)
				if err := os.Symlink(target, out); err != nil {
					t.Fatal(err)
				}
			},
			archive: good,
			wantErr: ErrRefuseOverwrite,
			check: func(t *testing.T, out string) {
				if fi, err := os.Lstat(out); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("out is no longer the symlink: %v", err)
				}
			},
		},
		{
			desc:    "replaces an empty dir",
			prepare: func(t *testing.T, out string) { mkdir(t, out) },
			archive: good,
			check:   holds("new.yaml"),
		},
		{desc: "creates a missing dir", archive: good, check: holds("new.yaml")},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			if tt.prepare != nil {
				tt.prepare(t, out)
			}
			before := listDir(t, parent)
			err := Untar(bytes.NewReader(tt.archive), out, Limits{})
			succeeded := err == nil
			switch {
			case bytes.Equal(tt.archive, bad) && succeeded:
				t.Fatal("Untar succeeded on a hostile archive")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Untar = %v, want %v", err, tt.wantErr)
			case bytes.Equal(tt.archive, good) && tt.wantErr == nil && !succeeded:
				t.Fatalf("Untar = %v", err)
			}
			// Nothing but out itself may appear beside it: no temp dirs.
			want := before
			if succeeded && !slices.Contains(before, "out") {
				want = append(slices.Clone(before), "out")
				slices.Sort(want)
			}
			if after := listDir(t, parent); !slices.Equal(after, want) {
				t.Errorf("parent holds %q after Untar, want %q", after, want)
			}
			tt.check(t, out)
		})
	}
}

func isAbsent(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists: %v", out, err)
	}
}

func holds(names ...string) func(t *testing.T, out string) {
	return func(t *testing.T, out string) {
		t.Helper()
		if got := listDir(t, out); !slices.Equal(got, names) {
			t.Errorf("%s holds %q, want %q", out, got, names)
		}
	}
}

func TestUntarMissingParent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "missing", "out")
	err := Untar(bytes.NewReader(tarGz(t, reg("a", "1"))), out, Limits{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Untar = %v, want fs.ErrNotExist", err)
	}
}

func TestLimitsDefaults(t *testing.T) {
	got, err := Limits{MaxFileSize: 7}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Limits{MaxFiles: DefaultLimits.MaxFiles, MaxFileSize: 7, MaxTotalSize: DefaultLimits.MaxTotalSize}); got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
	if _, err := ReadTree(bytes.NewReader(tarGz(t, reg("a", "1"))), Limits{MaxFiles: -1}); err == nil {
		t.Error("ReadTree accepted negative limits")
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
