package registry_test

import "testing"

// The bundle the benchmarks move: 4 MiB of YAML (a 2 MiB layer), about
// three times the six real charts of ../shared/charts.
const benchSize = 4 << 20

// BenchmarkPush pushes to an empty registry each time, so every blob is
// uploaded.
func BenchmarkPush(b *testing.B) {
	m := startMem(b, nil)
	c := plainClient()
	bundle := bigBundle(b, benchSize)
	ref := m.ref(b, "bench:1.0.0")
	b.SetBytes(bundle.LayerDescriptor.Size)
	for b.Loop() {
		b.StopTimer()
		m.reset()
		b.StartTimer()
		res, err := c.Push(b.Context(), bundle, ref)
		if err != nil {
			b.Fatal(err)
		}
		if res.BlobsPushed != 2 {
			b.Fatalf("uploaded %d blobs, want 2", res.BlobsPushed)
		}
	}
}

// BenchmarkPushUnchanged re-pushes a bundle the registry has: HEADs only.
func BenchmarkPushUnchanged(b *testing.B) {
	m := startMem(b, nil)
	c := plainClient()
	bundle := bigBundle(b, benchSize)
	ref := m.ref(b, "bench:1.0.0")
	if _, err := c.Push(b.Context(), bundle, ref); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Push(b.Context(), bundle, ref); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPull(b *testing.B) {
	m := startMem(b, nil)
	c := plainClient()
	bundle := bigBundle(b, benchSize)
	ref := m.ref(b, "bench:1.0.0")
	if _, err := c.Push(b.Context(), bundle, ref); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bundle.LayerDescriptor.Size)
	for b.Loop() {
		if _, err := c.Pull(b.Context(), ref); err != nil {
			b.Fatal(err)
		}
	}
}
