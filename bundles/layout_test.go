package bundles

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/content/oci"
)

func TestLayoutRoundTrip(t *testing.T) {
	b := samplePack(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, b, "1.2.3", "latest"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"1.2.3", "latest", b.Digest().String(), ""} {
		t.Run("ref="+ref, func(t *testing.T) {
			got, err := ReadLayout(dir, ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest() != b.Digest() || !bytes.Equal(got.Manifest, b.Manifest) || !bytes.Equal(layerBytes(t, got), b.Layer) || got.LayerFile == "" || got.TempLayer ||
				!bytes.Equal(got.Config, b.Config) || got.LayerDescriptor.Digest != b.LayerDescriptor.Digest {
				t.Fatalf("ReadLayout(%q) = %s, want %s", ref, got.Digest(), b.Digest())
			}
			if got.Descriptor.ArtifactType != ArtifactType || got.Descriptor.Annotations != nil {
				t.Errorf("descriptor = %+v, want artifactType and no index annotations", got.Descriptor)
			}
			tree, err := got.Tree(Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if g, w := treeMap(tree), treeMap(sampleTree(t)); !mapsEqual(g, w) {
				t.Errorf("tree = %v, want %v", g, w)
			}
		})
	}
	wantFiles := []string{
		"blobs/sha256/" + b.Digest().Encoded(),
		"blobs/sha256/" + b.LayerDescriptor.Digest.Encoded(),
		"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
		"index.json",
		"oci-layout",
	}
	slices.Sort(wantFiles)
	if got := walkFiles(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("layout files = %q, want %q", got, wantFiles)
	}
}

func TestLayoutIndexDeterministic(t *testing.T) {
	b := samplePack(t)
	read := func(tags ...string) string {
		dir := filepath.Join(t.TempDir(), "layout")
		if err := WriteLayout(dir, b, tags...); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	tagged := read("b", "a", "b")
	if again := read("a", "b"); again != tagged {
		t.Errorf("index.json depends on tag order or repetition:\n%s\n%s", tagged, again)
	}
	d := b.Descriptor
	desc := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d.Digest.String() +
		`","size":` + itoa(d.Size)
	artifactType := `"artifactType":"application/vnd.galley.bundle.v1"`
	want := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		desc + `,"annotations":{"org.opencontainers.image.ref.name":"a"},` + artifactType + `},` +
		desc + `,"annotations":{"org.opencontainers.image.ref.name":"b"},` + artifactType + `}]}`
	if tagged != want {
		t.Errorf("index.json =\n%s\nwant\n%s", tagged, want)
	}
	if untagged, want := read(), `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+desc+`,`+artifactType+`}]}`; untagged != want {
		t.Errorf("untagged index.json =\n%s\nwant\n%s", untagged, want)
	}
}

func itoa(n int64) string { return strings.TrimSpace(string(must(json.Marshal(n)))) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestLayoutReadByGoContainerRegistry checks the layout with another
// implementation: go-containerregistry's layout reader and its validator.
// The validator's full layer check compares diff IDs with an image config,
// which an artifact with the empty config has not, so it runs in Fast mode
// and the layer is digested here instead.
func TestLayoutReadByGoContainerRegistry(t *testing.T) {
	b := samplePack(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, b, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx, validate.Fast); err != nil {
		t.Fatalf("go-containerregistry validate.Index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations[ocispec.AnnotationRefName] != "1.2.3" ||
		im.Manifests[0].ArtifactType != ArtifactType {
		t.Fatalf("index manifests = %+v", im.Manifests)
	}
	h, err := v1.NewHash(b.Digest().String())
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("go-containerregistry validate.Image: %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Config.MediaType) != ConfigMediaType || len(m.Layers) != 1 || string(m.Layers[0].MediaType) != LayerMediaType {
		t.Errorf("go-containerregistry sees %+v", m)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var layerBytes bytes.Buffer
	h, size, err := v1.SHA256(io.TeeReader(rc, &layerBytes))
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != m.Layers[0].Digest.String() || size != m.Layers[0].Size {
		t.Errorf("layer read by go-containerregistry has digest %s size %d, manifest says %s %d", h, size, m.Layers[0].Digest, m.Layers[0].Size)
	}
	tree, err := ReadTree(&layerBytes, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if g, w := treeMap(tree), treeMap(sampleTree(t)); !mapsEqual(g, w) {
		t.Errorf("tree via go-containerregistry = %v, want %v", g, w)
	}
}

// TestLayoutOras reads our layout with oras-go's OCI store and copies it
// (which verifies every blob); and reads a layout that oras wrote.
func TestLayoutOras(t *testing.T) {
	ctx := context.Background()
	b := samplePack(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, b, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	store, err := oci.NewFromFS(ctx, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	dst := memory.New()
	desc, err := oras.Copy(ctx, store, "1.2.3", dst, "1.2.3", oras.DefaultCopyOptions)
	if err != nil {
		t.Fatalf("oras copy from our layout: %v", err)
	}
	if desc.Digest != b.Digest() || desc.ArtifactType != ArtifactType {
		t.Errorf("oras resolved %+v, want %s", desc, b.Digest())
	}

	// oras writes a layout; we read it, then replace it.
	orasDir := filepath.Join(t.TempDir(), "oras")
	ostore, err := oci.New(orasDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.Copy(ctx, dst, "1.2.3", ostore, "v1", oras.DefaultCopyOptions); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLayout(orasDir, "v1")
	if err != nil {
		t.Fatalf("reading oras's layout: %v", err)
	}
	if got.Digest() != b.Digest() {
		t.Errorf("oras layout digest %s, want %s", got.Digest(), b.Digest())
	}
	if err := WriteLayout(orasDir, b, "v2"); err != nil {
		t.Fatalf("replacing oras's layout: %v", err)
	}
	if _, err := ReadLayout(orasDir, "v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old tag after replacement: %v, want ErrNotFound", err)
	}
}

func TestReadLayoutErrors(t *testing.T) {
	b := samplePack(t)
	blob := func(d digest.Digest) string { return filepath.Join("blobs", "sha256", d.Encoded()) }
	other := samplePackOther(t)
	notBundle, err := json.Marshal(ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: emptyConfigDescriptor.Digest, Size: 2},
		Layers:    []ocispec.Descriptor{b.LayerDescriptor},
	})
	if err != nil {
		t.Fatal(err)
	}
	notBundle = append([]byte(`{"schemaVersion":2,`), notBundle[1:]...)

	tests := []struct {
		desc    string
		ref     string
		change  func(t *testing.T, dir string)
		wantErr error
		want    string
	}{
		{desc: "layer flipped", change: func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, blob(b.LayerDescriptor.Digest)))
		}, want: "layer blob"},
		{desc: "layer truncated", change: func(t *testing.T, dir string) {
			truncate(t, filepath.Join(dir, blob(b.LayerDescriptor.Digest)), -1)
		}, want: "descriptor says"},
		{desc: "layer grown", change: func(t *testing.T, dir string) {
			truncate(t, filepath.Join(dir, blob(b.LayerDescriptor.Digest)), +1)
		}, want: "descriptor says"},
		{desc: "manifest flipped", change: func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, blob(b.Digest())))
		}, want: "manifest blob"},
		{desc: "config changed", change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, blob(emptyConfigDescriptor.Digest)), "[]")
		}, want: "config blob"},
		{desc: "layer missing", change: func(t *testing.T, dir string) {
			remove(t, filepath.Join(dir, blob(b.LayerDescriptor.Digest)))
		}, wantErr: fs.ErrNotExist},
		{desc: "blob symlink escaping the layout", change: func(t *testing.T, dir string) {
			outside := filepath.Join(t.TempDir(), "layer")
			writeFile(t, outside, string(b.Layer))
			p := filepath.Join(dir, blob(b.LayerDescriptor.Digest))
			remove(t, p)
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
		}, want: "escapes"},
		{desc: "no oci-layout", change: func(t *testing.T, dir string) {
			remove(t, filepath.Join(dir, "oci-layout"))
		}, wantErr: ErrNotLayout},
		{desc: "wrong layout version", change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "oci-layout"), `{"imageLayoutVersion":"2.0.0"}`)
		}, wantErr: ErrNotLayout},
		{desc: "index not json", change: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "index.json"), `{`)
		}, wantErr: ErrNotLayout},
		{desc: "unknown tag", ref: "nope", wantErr: ErrNotFound},
		{desc: "unknown digest", ref: other.Digest().String(), wantErr: ErrNotFound},
		{desc: "malformed digest", ref: "sha256:zz", want: "invalid digest"},
		{desc: "empty index", change: func(t *testing.T, dir string) {
			setIndex(t, dir)
		}, wantErr: ErrNotFound},
		{desc: "two manifests and no ref", change: func(t *testing.T, dir string) {
			addBlobs(t, dir, other)
			setIndex(t, dir, tagged(b.Descriptor, "a"), tagged(other.Descriptor, "b"))
		}, want: "lists 2 manifests; name one by tag or digest"},
		{desc: "one tag, two manifests", ref: "a", change: func(t *testing.T, dir string) {
			addBlobs(t, dir, other)
			setIndex(t, dir, tagged(b.Descriptor, "a"), tagged(other.Descriptor, "a"))
		}, wantErr: ErrNotLayout},
		{desc: "index entry is an index", change: func(t *testing.T, dir string) {
			d := b.Descriptor
			d.MediaType = ocispec.MediaTypeImageIndex
			setIndex(t, dir, d)
		}, wantErr: ErrNotBundle},
		{desc: "index size is wrong", change: func(t *testing.T, dir string) {
			d := b.Descriptor
			d.Size--
			setIndex(t, dir, d)
		}, want: "descriptor says"},
		{desc: "manifest is not a bundle", change: func(t *testing.T, dir string) {
			d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(notBundle), Size: int64(len(notBundle))}
			writeFile(t, filepath.Join(dir, blob(d.Digest)), string(notBundle))
			setIndex(t, dir, d)
		}, wantErr: ErrNotBundle},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			if err := WriteLayout(dir, b, "1.2.3"); err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(t, dir)
			}
			_, err := ReadLayout(dir, tt.ref)
			if err == nil {
				t.Fatal("ReadLayout succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadLayout = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadLayout = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(tt.desc, "flipped") || strings.Contains(tt.desc, "truncated") || strings.Contains(tt.desc, "grown") {
				var dm *DigestMismatchError
				if !errors.As(err, &dm) {
					t.Fatalf("ReadLayout = %v, want *DigestMismatchError", err)
				}
			}
		})
	}
}

// TestReadLayoutDigestOutsideIndex reads a manifest that is in blobs/ but
// not listed in index.json, as the image layout spec allows.
func TestReadLayoutDigestOutsideIndex(t *testing.T) {
	b := samplePack(t)
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, b); err != nil {
		t.Fatal(err)
	}
	setIndex(t, dir)
	got, err := ReadLayout(dir, b.Digest().String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != b.Digest() {
		t.Errorf("digest %s, want %s", got.Digest(), b.Digest())
	}
}

func TestWriteLayoutAtomic(t *testing.T) {
	b := samplePack(t)
	tampered := samplePack(t)
	tampered.Layer = append(slices.Clone(tampered.Layer), 0)

	tests := []struct {
		desc    string
		prepare func(t *testing.T, dir string)
		bundle  *Bundle
		tags    []string
		wantErr error
		want    string // error substring; "" for success
		check   func(t *testing.T, dir string)
	}{
		{desc: "new dir", bundle: b, tags: []string{"new"}, check: hasTag("new")},
		{desc: "empty dir", prepare: func(t *testing.T, dir string) { mkdir(t, dir) }, bundle: b, tags: []string{"new"}, check: hasTag("new")},
		{desc: "replaces a layout", prepare: previousLayout, bundle: b, tags: []string{"new"}, check: func(t *testing.T, dir string) {
			hasTag("new")(t, dir)
			if _, err := ReadLayout(dir, "old"); !errors.Is(err, ErrNotFound) {
				t.Errorf("old tag still there: %v", err)
			}
		}},
		{desc: "tampered bundle keeps the layout", prepare: previousLayout, bundle: tampered, tags: []string{"new"}, want: "layer blob", check: hasTag("old")},
		{desc: "bad tag keeps the layout", prepare: previousLayout, bundle: b, tags: []string{"v1+build"}, want: `invalid tag "v1+build"`, check: hasTag("old")},
		{desc: "bad tag with a leading dot", bundle: b, tags: []string{".x"}, want: "invalid tag", check: isAbsent},
		{desc: "refuses a non-layout dir", prepare: func(t *testing.T, dir string) {
			mkdir(t, dir)
			writeFile(t, filepath.Join(dir, "notes.txt"), "mine")
		}, bundle: b, wantErr: ErrRefuseOverwrite, want: `holds "notes.txt"`, check: holds("notes.txt")},
		{desc: "refuses a layout with extra files", prepare: func(t *testing.T, dir string) {
			previousLayout(t, dir)
			writeFile(t, filepath.Join(dir, "notes.txt"), "mine")
		}, bundle: b, wantErr: ErrRefuseOverwrite, check: holds("blobs", "index.json", "notes.txt", "oci-layout")},
		{desc: "refuses a dir with a fake oci-layout", prepare: func(t *testing.T, dir string) {
			mkdir(t, dir)
			writeFile(t, filepath.Join(dir, "oci-layout"), "not json")
		}, bundle: b, wantErr: ErrRefuseOverwrite, check: holds("oci-layout")},
		{desc: "refuses a file", prepare: func(t *testing.T, dir string) { writeFile(t, dir, "mine") }, bundle: b, wantErr: ErrRefuseOverwrite,
			check: func(t *testing.T, dir string) {
				if data, err := os.ReadFile(dir); err != nil || string(data) != "mine" {
					t.Errorf("file changed: %q %v", data, err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "layout")
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			before := listDir(t, parent)
			err := WriteLayout(dir, tt.bundle, tt.tags...)
			switch {
			case tt.want == "" && tt.wantErr == nil:
				if err != nil {
					t.Fatalf("WriteLayout = %v", err)
				}
			case err == nil:
				t.Fatal("WriteLayout succeeded")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr), !strings.Contains(err.Error(), tt.want):
				t.Fatalf("WriteLayout = %v, want %v containing %q", err, tt.wantErr, tt.want)
			}
			want := before
			if err == nil && !slices.Contains(before, "layout") {
				want = []string{"layout"}
			}
			if after := listDir(t, parent); !slices.Equal(after, want) {
				t.Errorf("parent holds %q, want %q (no temporary directories)", after, want)
			}
			tt.check(t, dir)
		})
	}
}

func previousLayout(t *testing.T, dir string) {
	t.Helper()
	if err := WriteLayout(dir, samplePackOther(t), "old"); err != nil {
		t.Fatal(err)
	}
}

func hasTag(tag string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if _, err := ReadLayout(dir, tag); err != nil {
			t.Errorf("reading tag %s: %v", tag, err)
		}
	}
}

func tagged(d ocispec.Descriptor, tag string) ocispec.Descriptor {
	d.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	return d
}

func setIndex(t *testing.T, dir string, manifests ...ocispec.Descriptor) {
	t.Helper()
	data, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "index.json"), string(data))
}

func addBlobs(t *testing.T, dir string, b *Bundle) {
	t.Helper()
	for d, data := range map[digest.Digest][]byte{b.Digest(): b.Manifest, b.LayerDescriptor.Digest: b.Layer} {
		writeFile(t, filepath.Join(dir, "blobs", "sha256", d.Encoded()), string(data))
	}
}

func flip(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	writeFile(t, name, string(data))
}

func truncate(t *testing.T, name string, delta int64) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(name, fi.Size()+delta); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, name string) {
	t.Helper()
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
}

func walkFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}
