package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/fixture"
	"github.com/galley-dev/galley/internal/golden"
	"github.com/galley-dev/galley/internal/testregistry"
)

// TestBad runs the hostile and broken input corpus, testdata/bad/<category>/
// *.txtar, as testscript scripts. Beside testscript's own commands they
// use:
//
//   - fixture (internal/fixture) to build what text cannot hold: hostile
//     archives and bombs, linked directories, OCI layouts with computed
//     digests, raw pushes to a registry and blobs damaged in its storage;
//   - registry (internal/testregistry) to start a real registry;
//   - exits, which runs galley and holds it to an exact exit code and to
//     leaving the directory as it found it when it fails.
//
// Inputs a fixture is built from live under .gen/ and expected outputs
// under .want/, out of the way of the stacks and layouts under test. Set
// GALLEY_UPDATE=1 (make update) to rewrite the expected outputs.
func TestBad(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(repoRoot(t), "testdata", "bad", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			testscript.Run(t, testscript.Params{
				Dir:                 dir,
				UpdateScripts:       golden.Update(),
				RequireExplicitExec: true,
				Cmds: map[string]func(*testscript.TestScript, bool, []string){
					"exits":    exitsCmd,
					"fixture":  fixture.TestscriptCmd,
					"registry": testregistry.TestscriptCmd,
				},
				Setup: func(env *testscript.Env) error {
					for k, d := range map[string]string{"HOME": ".home", "GALLEY_CACHE_DIR": ".cache"} {
						p := filepath.Join(env.WorkDir, d)
						if err := os.Mkdir(p, 0o755); err != nil {
							return err
						}
						env.Setenv(k, p)
					}
					return nil
				},
			})
		})
	}
	if n == 0 {
		t.Fatal("no categories in testdata/bad")
	}
}

// notCase are the directories of a script's work directory that are not
// the case's: galley's home and cache, testscript's TMPDIR, the registry's
// storage. What galley does there is not partial output.
var notCase = []string{".home", ".cache", ".tmp", ".registry"}

// exitsCmd is the testscript command
//
//	exits CODE galley ARGS...
//
// It runs galley (the test binary, as testscript.Main installs it) in the
// script's directory with only HOME, GALLEY_CACHE_DIR and TMPDIR set, and
// fails unless galley exits with CODE. When CODE is not 0 the directory
// must be as it was: no partial output, no temporary files left. Its
// stdout and stderr are kept for cmp, with the work directory shown as
// $DIR, the registry as $REGISTRY and positions in galley's embedded
// schema as :L:C (they move whenever the schema is edited).
func exitsCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || args[1] != "galley" {
		ts.Fatalf("usage: exits CODE galley ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: CODE: %v", err)
	}
	bin, err := lookPath(ts, "galley")
	ts.Check(err)
	dir := ts.MkAbs(".")
	before, err := snapshot(dir)
	ts.Check(err)

	// A safety net, not an assertion: a case that hangs fails instead of
	// stalling the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args[2:]...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + ts.Getenv("HOME"), "GALLEY_CACHE_DIR=" + ts.Getenv("GALLEY_CACHE_DIR"), "TMPDIR=" + ts.Getenv("TMPDIR")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		ts.Fatalf("running galley: %v", err)
	}
	code := cmd.ProcessState.ExitCode()
	norm := func(s string) string {
		return normalizeOutput(withNewline(s), ts.Getenv("WORK"), ts.Getenv("REGISTRY"))
	}
	fmt.Fprint(ts.Stdout(), norm(stdout.String()))
	fmt.Fprint(ts.Stderr(), norm(stderr.String()))
	if code != want {
		ts.Fatalf("galley exited %d, want %d", code, want)
	}
	if code != 0 {
		after, err := snapshot(dir)
		ts.Check(err)
		if diff := diffSnapshots(before, after); diff != "" {
			ts.Fatalf("galley failed but changed the directory:\n%s", diff)
		}
	}
}

// lookPath finds name in the script's $PATH, where testscript.Main put
// the commands of the test binary.
func lookPath(ts *testscript.TestScript, name string) (string, error) {
	for _, d := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not in the script's $PATH", name)
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// schemaPosition matches positions in galley's embedded schema.
var schemaPosition = regexp.MustCompile(`(galley\.dev/stack/v1alpha1/[a-z_]+\.cue):\d+:\d+`)

func normalizeOutput(s, dir, registry string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		s = strings.ReplaceAll(s, real, "$DIR")
	}
	s = strings.ReplaceAll(s, dir, "$DIR")
	if registry != "" {
		s = strings.ReplaceAll(s, registry, "$REGISTRY")
	}
	return schemaPosition.ReplaceAllString(s, "$1:L:C")
}

// snapshot lists every path below dir with its type and size, but for
// the directories of notCase at its top.
func snapshot(dir string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && slices.Contains(notCase, rel) {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "symlink to " + target
		default:
			out[rel] = fmt.Sprintf("%v %d bytes", fi.Mode().Type(), fi.Size())
		}
		return nil
	})
	return out, err
}

func diffSnapshots(before, after map[string]string) string {
	var lines []string
	for p, a := range after {
		switch b, ok := before[p]; {
		case !ok:
			lines = append(lines, "  added "+p+" ("+a+")")
		case a != b:
			lines = append(lines, "  changed "+p+" ("+b+" -> "+a+")")
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			lines = append(lines, "  removed "+p)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestBadSnapshot checks the check exits relies on for "no partial
// output": a file or directory left behind, or one removed, shows; what
// happens in galley's home and cache does not.
func TestBadSnapshot(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"stack", ".home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stack", "stack.cue"), []byte("package p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".out-tmp-123", filepath.Join(".home", "x")} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "stack", "stack.cue")); err != nil {
		t.Fatal(err)
	}
	after, err := snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "  added .out-tmp-123 (dir)\n  removed stack/stack.cue"
	if got := diffSnapshots(before, after); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
}
