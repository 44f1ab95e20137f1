package bundles

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkPackSize packs trees of growing size. alloc/tree-byte shows
// whether packing holds the whole layer in memory: it stays near the
// compression ratio's share of the tree if it does (Bundle.Layer is a
// []byte), and would fall as trees grow if the layer were streamed.
func BenchmarkPackSize(b *testing.B) {
	for _, size := range []int{1 << 20, 4 << 20, 16 << 20} {
		tree := sizedTree(b, size)
		b.Run(fmt.Sprintf("yaml=%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(tree.Size())
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			n := 0
			var layer int64
			for b.Loop() {
				bundle, err := Pack(tree, sampleMetadata)
				if err != nil {
					b.Fatal(err)
				}
				layer = bundle.LayerDescriptor.Size
				n++
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/float64(tree.Size()), "alloc/tree-byte")
			b.ReportMetric(float64(layer), "layer-bytes")
		})
	}
}

// sizedTree is Kubernetes-like YAML, as repetitive as chart output (it
// compresses about 10:1), in files of about 16 KiB under 20 apps.
func sizedTree(b *testing.B, size int) *Tree {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	tree := NewTree()
	const fileSize = 16 << 10
	for i := 0; i*fileSize < size; i++ {
		var doc strings.Builder
		fmt.Fprintf(&doc, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-%d\nspec:\n  template:\n    spec:\n      containers:\n", i)
		for doc.Len() < fileSize {
			fmt.Fprintf(&doc, "      - name: c%d\n        image: registry.example.com/team/app:v1.%d.%d\n        env:\n        - name: KEY_%d\n          value: \"%x\"\n",
				r.IntN(100), r.IntN(20), r.IntN(50), r.IntN(1000), r.Uint32())
		}
		if err := tree.Add(fmt.Sprintf("apps/app%02d/file%04d.yaml", i%20, i), []byte(doc.String())); err != nil {
			b.Fatal(err)
		}
	}
	return tree
}
