package registry_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// benchSizes are the YAML sizes of the bundles the Distribution benchmarks
// move: the six real charts are about 8 MiB of YAML, a 0.6 MiB layer. The
// generated YAML compresses less (about 2:1), so the layers are larger.
var benchSizes = []int{1 << 20, 4 << 20, 16 << 20}

// BenchmarkDistributionPush pushes bundles of growing size to a new
// repository of the CNCF Distribution registry each time, so that every
// blob is uploaded. alloc/layer-byte shows whether memory grows with the
// bundle: a streamed push would allocate less per byte as bundles grow.
func BenchmarkDistributionPush(b *testing.B) {
	r := testregistry.Start(b)
	c := plainClient()
	for _, size := range benchSizes {
		bundle := bigBundle(b, size)
		b.Run(fmt.Sprintf("yaml=%dMiB", size>>20), func(b *testing.B) {
			i := 0
			measureAllocs(b, bundle, func() {
				i++
				ref := benchRef(b, r, fmt.Sprintf("bench/push-%d-%d:1.0.0", size>>20, i))
				res, err := c.Push(b.Context(), bundle, ref)
				if err != nil {
					b.Fatal(err)
				}
				if res.BlobsPushed != 2 {
					b.Fatalf("uploaded %d blobs, want 2", res.BlobsPushed)
				}
			})
		})
	}
}

// BenchmarkDistributionPushUnchanged re-pushes a bundle the repository
// has: HEADs only, no upload.
func BenchmarkDistributionPushUnchanged(b *testing.B) {
	r := testregistry.Start(b)
	c := plainClient()
	bundle := bigBundle(b, 4<<20)
	ref := benchRef(b, r, "bench/unchanged:1.0.0")
	if _, err := c.Push(b.Context(), bundle, ref); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Push(b.Context(), bundle, ref)
		if err != nil {
			b.Fatal(err)
		}
		if res.BlobsPushed != 0 || res.ManifestPushed {
			b.Fatalf("re-push uploaded %d blobs (manifest %v)", res.BlobsPushed, res.ManifestPushed)
		}
	}
}

// BenchmarkDistributionPull pulls bundles of growing size.
func BenchmarkDistributionPull(b *testing.B) {
	r := testregistry.Start(b)
	c := plainClient()
	for _, size := range benchSizes {
		bundle := bigBundle(b, size)
		ref := benchRef(b, r, fmt.Sprintf("bench/pull-%d:1.0.0", size>>20))
		if _, err := c.Push(b.Context(), bundle, ref); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("yaml=%dMiB", size>>20), func(b *testing.B) {
			measureAllocs(b, bundle, func() {
				got, err := c.Pull(b.Context(), ref)
				if err != nil {
					b.Fatal(err)
				}
				if got.Digest() != bundle.Digest() {
					b.Fatalf("pulled %s, pushed %s", got.Digest(), bundle.Digest())
				}
			})
		})
	}
}

func benchRef(b *testing.B, r *testregistry.Registry, s string) registry.Reference {
	b.Helper()
	ref, err := registry.ParseReference("oci://" + r.Ref(s))
	if err != nil {
		b.Fatal(err)
	}
	return ref
}

// measureAllocs runs f in the benchmark loop and reports the bytes
// allocated per byte of layer moved.
func measureAllocs(b *testing.B, bundle *bundles.Bundle, f func()) {
	b.SetBytes(bundle.LayerDescriptor.Size)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		f()
		n++
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/float64(bundle.LayerDescriptor.Size), "alloc/layer-byte")
}
