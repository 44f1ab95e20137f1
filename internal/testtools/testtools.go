// Package testtools finds and runs the real client tools (cosign, oras,
// crane, the CNCF Distribution registry, ...) that tests check galley
// against. The tools are pinned in tools/<name>/ and built by
// scripts/install-tools.sh (`make tools`) into a per-machine cache:
//
//	${GALLEY_TOOLS_DIR:-$HOME/.cache/galley/tools}/<name>-<key>/<name>
//
// <key> hashes the files that decide the build (see Key), so this package
// finds exactly the binary built from the checkout's pins. A missing tool
// fails the test: tests never skip because a tool is absent.
package testtools

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultTimeout bounds one run of a tool started by Run or Command.
const DefaultTimeout = 2 * time.Minute

// ModulePath is the module whose root holds tools/.
const ModulePath = "github.com/galley-dev/galley"

// ErrNotInstalled is returned by Lookup when the tool is not built for the
// current pins.
var ErrNotInstalled = errors.New("not installed")

// Path returns the binary of tool name, failing the test if it is not
// installed.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Lookup returns the binary of tool name, for callers without a testing.TB
// (testscript commands). Its error says how to install the tool.
func Lookup(name string) (string, error) {
	p, err := expectedPath(name)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s %w: run `make tools` (scripts/install-tools.sh %s); looked for %s", name, ErrNotInstalled, name, p)
	}
	return p, nil
}

// Run runs tool name with args and returns its output. err is the
// *exec.ExitError of a failed run; a tool that is not installed fails the
// test instead.
func Run(t testing.TB, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := Command(t, name, args...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return outBuf.String(), errBuf.String(), err
}

// Command returns an unstarted command for tool name, killed after
// DefaultTimeout or when the test ends, for callers that need to set Dir,
// Env or Stdin.
func Command(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	p := Path(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), DefaultTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, p, args...)
	// A tool that forks a child holding its pipes must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Names lists the tools pinned in tools/ (those with a build.env).
func Names() ([]string, error) {
	src, err := SourceDir()
	if err != nil {
		return nil, err
	}
	matches, err := filepath.Glob(filepath.Join(src, "*", "build.env"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	slices.Sort(names)
	return names, nil
}

// CacheDir returns the directory the tools are installed in.
func CacheDir() (string, error) {
	if d := os.Getenv("GALLEY_TOOLS_DIR"); d != "" {
		// Tests run in their package directory, the scripts anywhere: only an
		// absolute path means the same to both.
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("GALLEY_TOOLS_DIR must be an absolute path, got %q", d)
		}
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the tools cache: %w (set GALLEY_TOOLS_DIR)", err)
	}
	return filepath.Join(home, ".cache", "galley", "tools"), nil
}

// Key returns the cache key of tool name: the first 12 hex digits of the
// SHA-256 of the lines "<sha256 of file>  <file>\n" for build.env, go.mod,
// go.sum and *.go in tools/<name>/, in byte order. It must stay equal to
// galley_tool_key in scripts/toolcache.sh.
func Key(name string) (string, error) {
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	if !validName(name) {
		return "", fmt.Errorf("invalid tool name %q", name)
	}
	dir := filepath.Join(src, name)
	if _, err := os.Stat(filepath.Join(dir, "build.env")); err != nil {
		return "", fmt.Errorf("unknown tool %q: %w", name, err)
	}
	return keyOf(dir)
}

// keyOf hashes the keyed files of one tool directory.
func keyOf(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("reading tool sources: %w", err)
	}
	var files []string
	for _, e := range entries {
		// As the shell: [ -f ] follows symlinks and the glob *.go skips
		// dot files.
		n := e.Name()
		keyed := n == "build.env" || n == "go.mod" || n == "go.sum" ||
			strings.HasSuffix(n, ".go") && !strings.HasPrefix(n, ".")
		if !keyed {
			continue
		}
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil && fi.Mode().IsRegular() {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("hashing tool sources: %w", err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "%s  %s\n", hex.EncodeToString(sum[:]), f)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func expectedPath(name string) (string, error) {
	key, err := Key(name)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, name+"-"+key, name), nil
}

func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, `/\`)
}

var root struct {
	once sync.Once
	dir  string
	err  error
}

// SourceDir returns the tools/ directory of the galley checkout holding the
// working directory (go test runs in the package directory).
func SourceDir() (string, error) {
	root.once.Do(func() { root.dir, root.err = findRoot() })
	if root.err != nil {
		return "", root.err
	}
	return filepath.Join(root.dir, "tools"), nil
}

func findRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the galley checkout: %w", err)
	}
	for dir := wd; ; {
		if isModuleRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding the galley checkout: no go.mod of module %s above %s", ModulePath, wd)
		}
		dir = parent
	}
}

func isModuleRoot(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`) == ModulePath
		}
	}
	return false
}
