package bundles

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchTree is shaped like a mid-sized platform: 40 apps of 10 manifests,
// about 2 MiB of YAML.
func benchTree(b *testing.B) *Tree {
	b.Helper()
	tree := NewTree()
	for app := range 40 {
		for obj := range 10 {
			var doc strings.Builder
			fmt.Fprintf(&doc, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%d-%d\n  labels:\n    app: app-%d\nspec:\n  template:\n    spec:\n      containers:\n", app, obj, app)
			for c := range 40 {
				fmt.Fprintf(&doc, "      - name: c%d\n        image: registry.example.com/team/app-%d:v1.%d.%d\n        env:\n        - name: KEY_%d\n          value: \"%d\"\n", c, app, obj, c, c, app*obj*c)
			}
			if err := tree.Add(fmt.Sprintf("apps/app-%d/obj-%d.yaml", app, obj), []byte(doc.String())); err != nil {
				b.Fatal(err)
			}
		}
	}
	return tree
}

func BenchmarkWriteTar(b *testing.B) {
	tree := benchTree(b)
	b.SetBytes(tree.Size())
	b.ReportAllocs()
	var n int
	for b.Loop() {
		var buf bytes.Buffer
		if err := WriteTar(&buf, tree); err != nil {
			b.Fatal(err)
		}
		n = buf.Len()
	}
	b.ReportMetric(float64(n), "gz-bytes")
}

func BenchmarkPack(b *testing.B) {
	tree := benchTree(b)
	b.SetBytes(tree.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Pack(tree, sampleMetadata); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadTree(b *testing.B) {
	tree := benchTree(b)
	var buf bytes.Buffer
	if err := WriteTar(&buf, tree); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(tree.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadTree(bytes.NewReader(buf.Bytes()), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUntar(b *testing.B) {
	tree := benchTree(b)
	var buf bytes.Buffer
	if err := WriteTar(&buf, tree); err != nil {
		b.Fatal(err)
	}
	parent := b.TempDir()
	b.SetBytes(tree.Size())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := Untar(bytes.NewReader(buf.Bytes()), filepath.Join(parent, fmt.Sprint(i)), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
