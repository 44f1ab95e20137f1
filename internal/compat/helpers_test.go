package compat

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testtools"
	"github.com/galley-dev/galley/registry"
)

// keyPassword protects every key the tests make; cosign reads it from
// COSIGN_PASSWORD.
const keyPassword = "compat-test-pw"

var example struct {
	once sync.Once
	res  *compiler.Result
	err  error
}

// exampleBundle compiles examples/data-platform once per test binary: the
// bundle a user would push first.
func exampleBundle(t testing.TB) *compiler.Result {
	t.Helper()
	example.once.Do(func() {
		example.res, example.err = compiler.Compile(t.Context(), filepath.Join(repoRoot(t), "examples", "data-platform"), compiler.Options{
			GalleyVersion: "compat-test",
			Getenv:        func(string) string { return "" },
		})
	})
	if example.err != nil {
		t.Fatalf("compiling the example: %v", example.err)
	}
	return example.res
}

func repoRoot(t testing.TB) string {
	t.Helper()
	src, err := testtools.SourceDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(src)
}

// keyPair is a cosign key pair on disk.
type keyPair struct{ priv, pub string }

// galleyKeyPair writes a key pair made by galley's sign package.
func galleyKeyPair(t *testing.T, name string) keyPair {
	t.Helper()
	priv, pub, err := sign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(keyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kp := keyPair{filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")}
	if err := os.WriteFile(kp.priv, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.pub, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return kp
}

// cosignKeyPair runs `cosign generate-key-pair`.
func cosignKeyPair(t *testing.T, cosign string) keyPair {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, cosign, "generate-key-pair")
	return keyPair{filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")}
}

// tool runs a real client in dir with a private HOME (no shared sigstore
// cache, no docker config) and the key password set, and returns its
// combined output and error.
func tool(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := testtools.Command(t, name, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"COSIGN_PASSWORD="+keyPassword, "TUF_ROOT="+filepath.Join(home, ".sigstore", "root"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), err
}

// run is tool that fails the test on error.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := tool(t, dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pushed is a bundle pushed to a real registry.
type pushed struct {
	reg    *testregistry.Registry
	ref    registry.Reference // host/repo:tag
	pinned registry.Reference // host/repo@digest
	bundle *bundles.Bundle
}

func push(t *testing.T, b *bundles.Bundle, repo, tag string) pushed {
	t.Helper()
	r := testregistry.Start(t)
	ref, err := registry.ParseReference("oci://" + r.Ref(repo+":"+tag))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client().Push(t.Context(), b, ref)
	if err != nil {
		t.Fatal(err)
	}
	return pushed{reg: r, ref: ref, pinned: res.Reference, bundle: b}
}

func client() *registry.Client { return registry.New(registry.Options{PlainHTTP: true}) }

// readDir returns every regular file under dir by slash path, and fails
// on anything else (links, devices).
func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file (%v)", p, d.Type())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func treeFiles(t *testing.T, b *bundles.Bundle) map[string]string {
	t.Helper()
	tree, err := b.Tree(bundles.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range tree.Files() {
		files[f.Path] = string(f.Data)
	}
	return files
}
