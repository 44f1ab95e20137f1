package bundles

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

// mapLayerCache keeps layers in memory and counts what it was asked.
type mapLayerCache struct {
	layers     map[digest.Digest][]byte
	hits, puts int
}

func (c *mapLayerCache) GetLayer(d digest.Digest) ([]byte, bool) {
	b, ok := c.layers[d]
	if ok {
		c.hits++
	}
	return b, ok
}

func (c *mapLayerCache) PutLayer(d digest.Digest, layer []byte) {
	c.layers[d] = bytes.Clone(layer)
	c.puts++
}

// TestPackWithLayerCache: the cache is keyed by the digest of the
// uncompressed tar, a miss stores the layer Pack makes, a hit gives the
// same bundle without compressing, and another tree is another key.
func TestPackWithLayerCache(t *testing.T) {
	want := samplePack(t)
	cache := &mapLayerCache{layers: map[digest.Digest][]byte{}}
	for i, wantHits := range []int{0, 1, 2} {
		b, err := PackWith(sampleTree(t), sampleMetadata, PackOptions{LayerCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		if b.Digest() != want.Digest() || !bytes.Equal(b.Layer, want.Layer) || !bytes.Equal(b.Manifest, want.Manifest) {
			t.Fatalf("pack %d with a layer cache: digest %s, without %s", i, b.Digest(), want.Digest())
		}
		if cache.hits != wantHits || cache.puts != 1 {
			t.Fatalf("pack %d: %d hits and %d puts, want %d and 1", i, cache.hits, cache.puts, wantHits)
		}
	}
	var tarDigest digest.Digest
	for d := range cache.layers {
		tarDigest = d
	}
	// The key is the digest of the tar inside the layer.
	gz, err := gzip.NewReader(bytes.NewReader(want.Layer))
	if err != nil {
		t.Fatal(err)
	}
	tarBytes, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(tarBytes); got != tarDigest {
		t.Errorf("layer stored under %s, the tar's digest is %s", tarDigest, got)
	}

	other := treeOf(t, map[string]string{"apps/x/a.yaml": "kind: A\n"})
	b, err := PackWith(other, sampleMetadata, PackOptions{LayerCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Pack(treeOf(t, map[string]string{"apps/x/a.yaml": "kind: A\n"}), sampleMetadata)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest() != plain.Digest() || cache.puts != 2 || len(cache.layers) != 2 {
		t.Errorf("another tree: digest %s (want %s), %d puts, %d layers", b.Digest(), plain.Digest(), cache.puts, len(cache.layers))
	}
}
