package compiler_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
)

// TestResolveImages checks what Options.ResolveImages changes: every image
// list of bundle.json, pinned, sorted; no other file.
func TestResolveImages(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "examples", "data-platform")
	plain, err := compiler.Compile(context.Background(), dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Index.Images) == 0 {
		t.Fatal("the example runs no images: nothing to resolve")
	}
	pin := func(im string) string { return fmt.Sprintf("%s@sha256:%x", im, sha256.Sum256([]byte(im))) }
	var asked []string
	o := opts()
	o.ResolveImages = func(_ context.Context, images []string) (map[string]string, error) {
		asked = slices.Clone(images)
		m := map[string]string{}
		for _, im := range images {
			m[im] = pin(im)
		}
		return m, nil
	}
	res, err := compiler.Compile(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, plain.Index.Images) {
		t.Errorf("asked to resolve %v, want the index's images %v", asked, plain.Index.Images)
	}
	pinAll := func(list []string) []string {
		var out []string
		for _, im := range list {
			out = append(out, pin(im))
		}
		slices.Sort(out)
		return out
	}
	if got, want := res.Index.Images, pinAll(plain.Index.Images); !slices.Equal(got, want) {
		t.Errorf("images = %v, want %v", got, want)
	}
	for i, a := range res.Index.Apps {
		if got, want := a.Images, pinAll(plain.Index.Apps[i].Images); !slices.Equal(got, want) {
			t.Errorf("app %s images = %v, want %v", a.Name, got, want)
		}
	}
	idx, err := bundles.ReadIndex(res.Tree)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx.Images, res.Index.Images) {
		t.Errorf("bundle.json images = %v, want %v", idx.Images, res.Index.Images)
	}
	// The manifests keep the tags as rendered.
	for _, f := range plain.Tree.Files() {
		if f.Path == bundles.IndexPath {
			continue
		}
		got, _ := res.Tree.Get(f.Path)
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s changed", f.Path)
		}
	}
	if res.Bundle.Digest() == plain.Bundle.Digest() {
		t.Error("pinning did not change the bundle's digest")
	}
}

func TestResolveImagesError(t *testing.T) {
	errResolve := errors.New("image x: registry unreachable")
	o := opts()
	o.ResolveImages = func(context.Context, []string) (map[string]string, error) { return nil, errResolve }
	_, err := compiler.Compile(context.Background(), filepath.Join(repoRoot(t), "examples", "data-platform"), o)
	if !errors.Is(err, errResolve) {
		t.Fatalf("Compile = %v, want %v", err, errResolve)
	}
}
