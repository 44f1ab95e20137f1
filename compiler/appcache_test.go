package compiler_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// cacheFiles returns the cache's entries with the extension ext, by path.
func cacheFiles(t *testing.T, dir, ext string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ext {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAppAndLayerCache: a cold build stores every app's finished objects
// and the layer; a warm build uses them and gives the uncached digest; a
// damaged app or layer entry is a miss (the build redoes the work and
// writes the entry again, byte for byte); a change to an app's kustomize
// options is a miss too, and gives what an uncached build gives.
func TestAppAndLayerCache(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "data-platform"), dir)
	o := opts()
	o.CacheDir = t.TempDir()
	ctx := context.Background()

	uncached, err := compiler.Compile(ctx, dir, opts())
	if err != nil {
		t.Fatal(stack.FormatError(err, ""))
	}
	if _, err := compiler.Compile(ctx, dir, o); err != nil {
		t.Fatal(err)
	}
	apps, layers := cacheFiles(t, o.CacheDir, ".app"), cacheFiles(t, o.CacheDir, ".layer")
	if len(apps) != len(uncached.Index.Apps) || len(layers) != 1 {
		t.Fatalf("cold build stored %d app entries and %d layers, want %d and 1", len(apps), len(layers), len(uncached.Index.Apps))
	}

	check := func(what string) {
		t.Helper()
		r, err := compiler.Compile(ctx, dir, o)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Bundle.Digest() != uncached.Bundle.Digest() {
			t.Fatalf("%s: digest %s, uncached %s", what, r.Bundle.Digest(), uncached.Bundle.Digest())
		}
		for _, want := range []map[string][]byte{apps, layers} {
			for p, b := range want {
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s: entry %s was not restored (%v)", what, filepath.Base(p), err)
				}
			}
		}
	}
	check("warm")

	damages := map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"flipped":   func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-2] ^= 0x20; return c },
		"empty":     func([]byte) []byte { return nil },
		"magic":     func(b []byte) []byte { return append([]byte("galley-v0\n"), b[10:]...) },
	}
	for name, damage := range damages {
		for _, entries := range []map[string][]byte{apps, layers} {
			for p, b := range entries {
				if err := os.WriteFile(p, damage(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		check(name + " entries")
	}

	// New labels: the render is reused, the app's objects are not.
	labels := []byte("package platform\n\nstack: apps: postgres: labels: team: \"data\"\n")
	if err := os.WriteFile(filepath.Join(dir, "labels.cue"), labels, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := compiler.Compile(ctx, dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	got, err := compiler.Compile(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bundle.Digest() != want.Bundle.Digest() || want.Bundle.Digest() == uncached.Bundle.Digest() {
		t.Errorf("after a label change: cached %s, uncached %s, before %s", got.Bundle.Digest(), want.Bundle.Digest(), uncached.Bundle.Digest())
	}
	if n := len(cacheFiles(t, o.CacheDir, ".app")); n != len(apps)+1 {
		t.Errorf("after a label change the cache has %d app entries, want %d", n, len(apps)+1)
	}
}

// TestAppCacheKeepsSecretsCheck: an app whose plaintext Secret was allowed
// and cached is refused once the permission is taken away.
func TestAppCacheKeepsSecretsCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "stack")
	copyDir(t, filepath.Join(repoRoot(t), "examples", "data-platform"), dir)
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-auth\ndata:\n  password: c2VjcmV0\n"
	if err := os.WriteFile(filepath.Join(dir, "charts", "postgres", "templates", "secret.yaml"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	allow := filepath.Join(dir, "allow.cue")
	if err := os.WriteFile(allow, []byte("package platform\n\nstack: apps: postgres: secrets: allowPlaintext: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.CacheDir = t.TempDir()
	for range 2 {
		if _, err := compiler.Compile(context.Background(), dir, o); err != nil {
			t.Fatal(stack.FormatError(err, dir))
		}
	}
	if err := os.Remove(allow); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a refused app is not cached: refused again
		_, err := compiler.Compile(context.Background(), dir, o)
		if err == nil || !strings.Contains(err.Error(), "allowPlaintext") || !strings.Contains(err.Error(), "postgres-auth") {
			t.Fatalf("build without allowPlaintext: %v, want the plaintext Secret refused", err)
		}
	}
}
