package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

// recorder is a testing.TB that keeps the failures it is told about.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }
func (r *recorder) Fatal(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)) }

func TestCheck(t *testing.T) {
	t.Setenv(Env, "")
	p := filepath.Join(t.TempDir(), "golden", "out.txt")
	tests := []struct {
		name, file, got string
		update          bool
		fail            string // a failure must contain this; "" for none
		after           string // the file afterwards
	}{
		{name: "same", file: "a\nb\n", got: "a\nb\n", after: "a\nb\n"},
		{name: "differs", file: "a\nb\n", got: "a\nc\n", fail: "first difference at line 2", after: "a\nb\n"},
		{name: "missing", got: "a\n", fail: "reading golden file"},
		{name: "update rewrites", file: "a\nb\n", got: "a\nc\n", update: true, after: "a\nc\n"},
		{name: "update creates", got: "new\n", update: true, after: "new\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(filepath.Dir(p))
			if tc.file != "" {
				write(t, p, []byte(tc.file))
			}
			if tc.update {
				t.Setenv(Env, "1")
			}
			r := &recorder{TB: t}
			Check(r, p, []byte(tc.got))
			switch {
			case tc.fail == "" && len(r.failures) > 0:
				t.Errorf("failed: %v", r.failures)
			case tc.fail != "" && (len(r.failures) != 1 || !strings.Contains(r.failures[0], tc.fail)):
				t.Errorf("failures %q, want one saying %q", r.failures, tc.fail)
			}
			if tc.after != "" {
				if b, _ := os.ReadFile(p); string(b) != tc.after {
					t.Errorf("file holds %q, want %q", b, tc.after)
				}
			}
		})
	}
}

func TestSection(t *testing.T) {
	t.Setenv(Env, "")
	file := filepath.Join(t.TempDir(), "case.txtar")
	ar := &txtar.Archive{Comment: []byte("a case\n"), Files: []txtar.File{{Name: "input", Data: []byte("x\n")}}}
	write(t, file, txtar.Format(ar))

	r := &recorder{TB: t}
	Section(r, file, ar, "want", "ok\n")
	if len(r.failures) != 1 || !strings.Contains(r.failures[0], `no "want" section`) {
		t.Errorf("a missing section: %q", r.failures)
	}

	t.Setenv(Env, "1")
	Section(t, file, ar, "want", "ok\n")
	back, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Files) != 2 || back.Files[1].Name != "want" || string(back.Files[1].Data) != "ok\n" {
		t.Fatalf("after the update: %+v", back.Files)
	}

	t.Setenv(Env, "")
	r = &recorder{TB: t}
	Section(r, file, back, "want", "changed\n")
	if len(r.failures) != 1 || !strings.Contains(r.failures[0], `the "want" section differs`) {
		t.Errorf("a changed section: %q", r.failures)
	}
}

func TestDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "golden")
	t.Setenv(Env, "1")
	Dir(t, dir, map[string][]byte{"a.txt": []byte("a"), "sub/b.txt": []byte("b")})

	t.Setenv(Env, "")
	r := &recorder{TB: t}
	Dir(r, dir, map[string][]byte{"a.txt": []byte("A"), "c.txt": []byte("c")})
	want := []string{"a.txt differs", "c.txt: a new file", "sub/b.txt: golden file no longer produced"}
	if len(r.failures) != len(want) {
		t.Fatalf("failures %q, want %d", r.failures, len(want))
	}
	for _, w := range want {
		found := false
		for _, f := range r.failures {
			found = found || strings.Contains(f, w)
		}
		if !found {
			t.Errorf("no failure says %q: %q", w, r.failures)
		}
	}
}
