package testtools

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The exact pins of tools/<name>/go.mod, as each binary reports them. A
// tool added to tools/ must be added here too (TestVersions checks).
//
// A tool with no version command (the Flux controllers, miniredis) has nil
// args: its build info must then list want as a module dependency, e.g.
// "github.com/fluxcd/source-controller v1.9.6".
var versions = []struct {
	name string
	args []string
	want string
}{
	{"cosign-v2", []string{"version"}, "v2.6.5"},
	{"cosign-v3", []string{"version"}, "v3.1.3"},
	{"argocd", []string{"version", "--client", "--short"}, "argocd: v3.2.11"},
	{"crane", []string{"version"}, "v0.22.1"},
	{"etcd", []string{"--version"}, "etcd Version: 3.6.17"},
	{"fluxpull", []string{"-version"}, "github.com/fluxcd/pkg/oci v0.69.0"},
	{"helm", []string{"version", "--short"}, "v4.3.2"},
	{"kube-apiserver", []string{"--version"}, "Kubernetes v1.37.2"},
	{"kubectl", []string{"version", "--client"}, "Client Version: v1.37.2"},
	{"kustomize", []string{"version"}, "v5.8.2"},
	{"kustomize-controller", nil, "github.com/fluxcd/kustomize-controller v1.9.6"},
	{"miniredis", nil, "github.com/alicebob/miniredis/v2 v2.35.0"},
	{"oras", []string{"version"}, "1.3.6"},
	{"promtool", []string{"--version"}, "version 3.16.0"},
	{"registry", []string{"--version"}, "v3.1.2"},
	{"source-controller", nil, "github.com/fluxcd/source-controller v1.9.6"},
	{"golangci-lint", []string{"version"}, "golangci-lint has version 2.15.0 built with go1.26.8"},
	// The newline: a build without the release ldflags says v1.10.10-dev.
	{"tofu", []string{"version"}, "OpenTofu v1.10.10\n"},
}

func TestVersions(t *testing.T) {
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, v := range versions {
		covered[v.name] = true
	}
	for _, n := range names {
		if !covered[n] {
			t.Errorf("tools/%s has no version check in this test", n)
		}
	}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			if v.args == nil {
				deps, err := moduleDeps(Path(t, v.name))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(deps, v.want) {
					t.Errorf("%s was not built from %s (main module %s)", v.name, v.want, deps[0])
				}
				return
			}
			stdout, stderr, err := Run(t, v.name, v.args...)
			if err != nil {
				t.Fatalf("%v\nstderr: %s", err, stderr)
			}
			if out := stdout + stderr; !strings.Contains(out, v.want) {
				t.Errorf("%s %s printed %q, want it to contain %q", v.name, strings.Join(v.args, " "), out, v.want)
			}
		})
	}
}

// moduleDeps lists "path version" of every module a binary was built from.
func moduleDeps(bin string) ([]string, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading build info: %w", err)
	}
	// A command built from a dependency module (go build <module>) has
	// that module as Main, not among Deps.
	deps := []string{info.Main.Path + " " + info.Main.Version}
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		deps = append(deps, d.Path+" "+d.Version)
	}
	return deps, nil
}

// The shell scripts and this package must agree on where a tool lives, or
// `make tools` would install binaries the tests never find.
func TestPathMatchesScripts(t *testing.T) {
	names, err := Names()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no tools found in tools/")
	}
	src, err := SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	scripts := filepath.Join(filepath.Dir(src), "scripts")
	for _, name := range names {
		want := Path(t, name)
		out, err := exec.Command(filepath.Join(scripts, "tool-path.sh"), name).Output()
		if err != nil {
			t.Fatalf("tool-path.sh %s: %v", name, err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("tool-path.sh %s = %s, testtools.Path = %s", name, got, want)
		}
	}
}

// keyOf must hash exactly what galley_tool_key hashes: the pins, not stray
// files such as a binary built in place.
func TestKeyMatchesScript(t *testing.T) {
	src, err := SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(filepath.Dir(src), "scripts", "toolcache.sh")
	write := func(t *testing.T, dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "tool")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, dir, "build.env", "PKG=.\n")
		write(t, dir, "go.mod", "module example.com/tool\n")
		write(t, dir, "go.sum", "")
		write(t, dir, "main.go", "package main\n")
		return dir
	}
	baseKey, err := keyOf(base(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		changes bool
	}{
		{"unchanged", func(*testing.T, string) {}, false},
		{"go.sum", func(t *testing.T, d string) { write(t, d, "go.sum", "example.com/x v1.0.0 h1:x=\n") }, true},
		{"go.mod", func(t *testing.T, d string) { write(t, d, "go.mod", "module example.com/tool\n\ngo 1.26\n") }, true},
		{"build.env", func(t *testing.T, d string) { write(t, d, "build.env", "PKG=.\nLDFLAGS=-s\n") }, true},
		{"new go file", func(t *testing.T, d string) { write(t, d, "util.go", "package main\n") }, true},
		{"binary built in place", func(t *testing.T, d string) { write(t, d, "tool", "\x7fELF") }, false},
		{"readme", func(t *testing.T, d string) { write(t, d, "README.md", "# tool\n") }, false},
		{"dot go file", func(t *testing.T, d string) { write(t, d, ".swp.go", "x") }, false},
		{"directory named like go", func(t *testing.T, d string) {
			if err := os.Mkdir(filepath.Join(d, "x.go"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := base(t)
			tt.edit(t, dir)
			got, err := keyOf(dir)
			if err != nil {
				t.Fatal(err)
			}
			if changed := got != baseKey; changed != tt.changes {
				t.Errorf("key %s (base %s): changed = %v, want %v", got, baseKey, changed, tt.changes)
			}
			cmd := exec.Command("bash", "-c", `. "$1" && galley_tools_src=$(dirname "$2") && galley_tool_key "$(basename "$2")"`, "bash", lib, dir)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("galley_tool_key: %v", err)
			}
			if sh := strings.TrimSpace(string(out)); sh != got {
				t.Errorf("galley_tool_key = %s, keyOf = %s", sh, got)
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	t.Setenv("GALLEY_TOOLS_DIR", t.TempDir())
	_, err := Lookup("oras")
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Lookup in an empty cache: err = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"oras not installed", "make tools", "scripts/install-tools.sh oras"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, name := range []string{"", "nope", "../tools", ".hidden"} {
		if _, err := Lookup(name); err == nil || errors.Is(err, ErrNotInstalled) {
			t.Errorf("Lookup(%q): err = %v, want an unknown or invalid tool error", name, err)
		}
	}
}

func TestRelativeCacheDir(t *testing.T) {
	t.Setenv("GALLEY_TOOLS_DIR", "relative/tools")
	if _, err := Lookup("oras"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("Lookup with a relative GALLEY_TOOLS_DIR: err = %v, want it refused", err)
	}
}

func TestRunReportsFailure(t *testing.T) {
	_, stderr, err := Run(t, "crane", "no-such-command")
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("err = %v, want an *exec.ExitError", err)
	}
	if !strings.Contains(stderr, "no-such-command") {
		t.Errorf("stderr %q does not name the bad command", stderr)
	}
}
