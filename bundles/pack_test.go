package bundles

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCreatedTime(t *testing.T) {
	tests := []struct {
		env     string
		want    time.Time
		wantErr bool
	}{
		{env: "", want: time.Unix(0, 0)},
		{env: "0", want: time.Unix(0, 0)},
		{env: "1714564800", want: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{env: "253402300799", want: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{env: "253402300800", wantErr: true},
		{env: "99999999999999999999", wantErr: true},
		{env: "-1", wantErr: true},
		{env: "1.5", wantErr: true},
		{env: " 1", wantErr: true},
		{env: "1e9", wantErr: true},
		{env: "2024-05-01", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			got, err := CreatedTime(func(k string) string {
				if k != "SOURCE_DATE_EPOCH" {
					t.Errorf("CreatedTime read %s", k)
				}
				return tt.env
			})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
					t.Fatalf("CreatedTime(%q) = %v, %v; want an error naming SOURCE_DATE_EPOCH", tt.env, got, err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("CreatedTime(%q) = %v, %v; want %v in UTC", tt.env, got, err, tt.want)
			}
		})
	}
}

func TestPackManifest(t *testing.T) {
	b := samplePack(t)
	var m ocispec.Manifest
	if err := json.Unmarshal(b.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest || m.ArtifactType != ArtifactType {
		t.Errorf("manifest header = %d %q %q", m.SchemaVersion, m.MediaType, m.ArtifactType)
	}
	if m.Config.MediaType != "application/vnd.oci.empty.v1+json" || m.Config.Size != 2 ||
		m.Config.Digest != "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" || m.Config.Data != nil {
		t.Errorf("config = %+v, want the empty descriptor without data", m.Config)
	}
	if string(b.Config) != "{}" {
		t.Errorf("config blob = %q", b.Config)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" ||
		m.Layers[0].Digest != b.LayerDescriptor.Digest || m.Layers[0].Size != int64(len(b.Layer)) {
		t.Errorf("layers = %+v, want the one layer %+v", m.Layers, b.LayerDescriptor)
	}
	want := map[string]string{
		"org.opencontainers.image.created":     "2024-05-01T12:00:00Z",
		"org.opencontainers.image.title":       "shop",
		"org.opencontainers.image.version":     "1.2.3",
		"org.opencontainers.image.description": "the shop platform",
		"org.opencontainers.image.source":      "https://example.com/shop.git",
		"org.opencontainers.image.revision":    "main@sha1:0123456789abcdef0123456789abcdef01234567",
		"dev.galley.stack":                     "shop",
	}
	if !mapsEqual(m.Annotations, want) {
		t.Errorf("annotations = %v, want %v", m.Annotations, want)
	}
	if d := b.Descriptor; d.MediaType != ocispec.MediaTypeImageManifest || d.ArtifactType != ArtifactType ||
		d.Size != int64(len(b.Manifest)) || d.Digest != b.Digest() {
		t.Errorf("descriptor = %+v", d)
	}
	if err := b.Verify(); err != nil {
		t.Errorf("Verify = %v", err)
	}
	tree, err := b.Tree(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := treeMap(tree); !mapsEqual(got, treeMap(sampleTree(t))) {
		t.Errorf("Tree() = %v", got)
	}
}

func TestPackOnlySetAnnotations(t *testing.T) {
	b, err := Pack(sampleTree(t), Metadata{Created: time.Date(2024, 5, 1, 14, 0, 0, 999, time.FixedZone("CEST", 2*3600))})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Validate(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	// Converted to UTC, sub-second part dropped.
	want := map[string]string{"org.opencontainers.image.created": "2024-05-01T12:00:00Z"}
	if !mapsEqual(m.Annotations, want) {
		t.Errorf("annotations = %v, want %v", m.Annotations, want)
	}
}

func TestPackDeterministic(t *testing.T) {
	a, b := samplePack(t), samplePack(t)
	if !bytes.Equal(a.Manifest, b.Manifest) || !bytes.Equal(a.Layer, b.Layer) || a.Digest() != b.Digest() {
		t.Fatalf("two packs of one tree differ: %s vs %s", a.Digest(), b.Digest())
	}
	// Any change to content, path or metadata changes the digest.
	changed := []struct {
		desc string
		tree map[string]string
		meta func(*Metadata)
	}{
		{desc: "content", tree: map[string]string{"apps/web/service.yaml": "changed"}},
		{desc: "new file", tree: map[string]string{"apps/new.yaml": ""}},
		{desc: "created", meta: func(m *Metadata) { m.Created = m.Created.Add(time.Second) }},
		{desc: "revision", meta: func(m *Metadata) { m.Revision = "other" }},
	}
	for _, c := range changed {
		files := map[string]string{}
		for k, v := range sampleFiles {
			files[k] = v
		}
		for k, v := range c.tree {
			files[k] = v
		}
		meta := sampleMetadata
		if c.meta != nil {
			c.meta(&meta)
		}
		got, err := Pack(treeOf(t, files), meta)
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() == a.Digest() {
			t.Errorf("changing %s kept digest %s", c.desc, a.Digest())
		}
	}
}

func TestPackErrors(t *testing.T) {
	manyFiles := NewTree()
	for i := range DefaultLimits.MaxFiles + 1 {
		if err := manyFiles.Add(strings.Repeat("d/", i%3)+"f"+strconv.Itoa(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		desc    string
		tree    *Tree
		meta    Metadata
		want    string
		wantErr error
	}{
		{desc: "empty tree", tree: NewTree(), meta: sampleMetadata, want: "tree has no files"},
		{desc: "no created time", tree: sampleTree(t), meta: Metadata{}, want: "created time is not set"},
		{desc: "created out of range", tree: sampleTree(t), meta: Metadata{Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, want: "outside years"},
		{
			desc: "annotation repeats a field",
			tree: sampleTree(t),
			meta: Metadata{Created: sampleMetadata.Created, Version: "1", Annotations: map[string]string{ocispec.AnnotationVersion: "2"}},
			want: "annotation org.opencontainers.image.version is already set",
		},
		{
			desc: "annotation repeats created",
			tree: sampleTree(t),
			meta: Metadata{Created: sampleMetadata.Created, Annotations: map[string]string{ocispec.AnnotationCreated: "now"}},
			want: "annotation org.opencontainers.image.created is already set",
		},
		{desc: "empty annotation key", tree: sampleTree(t), meta: Metadata{Created: sampleMetadata.Created, Annotations: map[string]string{"": "x"}}, want: "empty key"},
		{desc: "too many files to read back", tree: manyFiles, meta: sampleMetadata, wantErr: ErrLimitExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := Pack(tt.tree, tt.meta)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Pack = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := samplePack(t).Manifest
	// mutate decodes good, applies f and re-encodes.
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	layer := func(m map[string]any) map[string]any { return m["layers"].([]any)[0].(map[string]any) }
	config := func(m map[string]any) map[string]any { return m["config"].(map[string]any) }
	tests := []struct {
		desc     string
		manifest []byte
		want     string // "" when valid
	}{
		{desc: "good", manifest: good},
		{desc: "extra unknown field", manifest: mutate(func(m map[string]any) { m["x-extension"] = true })},
		{desc: "no created annotation", manifest: mutate(func(m map[string]any) { m["annotations"] = map[string]any{} })},
		{desc: "not json", manifest: []byte("{"), want: "decoding manifest"},
		{desc: "too big", manifest: append(bytes.Repeat([]byte(" "), MaxManifestSize), good...), want: "limit is"},
		{desc: "schema 1", manifest: mutate(func(m map[string]any) { m["schemaVersion"] = 1 }), want: "schemaVersion is 1, want 2"},
		{desc: "docker media type", manifest: mutate(func(m map[string]any) { m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json" }), want: "manifest mediaType is"},
		{desc: "no media type", manifest: mutate(func(m map[string]any) { delete(m, "mediaType") }), want: "manifest mediaType is \"\""},
		{desc: "index", manifest: mutate(func(m map[string]any) { m["mediaType"] = ocispec.MediaTypeImageIndex }), want: "manifest mediaType is"},
		{desc: "no artifact type", manifest: mutate(func(m map[string]any) { delete(m, "artifactType") }), want: "artifactType is \"\""},
		{desc: "artifact type not a media type", manifest: mutate(func(m map[string]any) { m["artifactType"] = "galley bundle" }), want: `artifactType "galley bundle" is not a media type`},
		{desc: "image config", manifest: mutate(func(m map[string]any) { config(m)["mediaType"] = ocispec.MediaTypeImageConfig }), want: "config mediaType is"},
		{desc: "non-empty config", manifest: mutate(func(m map[string]any) { config(m)["size"] = 3 }), want: "want the empty config"},
		{desc: "no layers", manifest: mutate(func(m map[string]any) { m["layers"] = []any{} }), want: "has 0 layers, want 1"},
		{desc: "two layers", manifest: mutate(func(m map[string]any) { m["layers"] = []any{layer(m), layer(m)} }), want: "has 2 layers, want 1"},
		{desc: "flux layer", manifest: mutate(func(m map[string]any) { layer(m)["mediaType"] = "application/vnd.cncf.flux.content.v1.tar+gzip" }), want: "layer mediaType is"},
		{desc: "uncompressed layer", manifest: mutate(func(m map[string]any) { layer(m)["mediaType"] = ocispec.MediaTypeImageLayer }), want: "layer mediaType is"},
		{desc: "zero layer size", manifest: mutate(func(m map[string]any) { layer(m)["size"] = 0 }), want: "layer size is 0"},
		{desc: "bad layer digest", manifest: mutate(func(m map[string]any) { layer(m)["digest"] = "sha256:abc" }), want: "layer digest"},
		{desc: "unknown digest algorithm", manifest: mutate(func(m map[string]any) { layer(m)["digest"] = "md5:d41d8cd98f00b204e9800998ecf8427e" }), want: "layer digest"},
		{desc: "bad created", manifest: mutate(func(m map[string]any) {
			m["annotations"] = map[string]any{ocispec.AnnotationCreated: "yesterday"}
		}), want: "want an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m, err := Validate(tt.manifest)
			if tt.want == "" {
				if err != nil || m == nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotBundle) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrNotBundle containing %q", err, tt.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		desc   string
		change func(b *Bundle)
	}{
		{"manifest bytes", func(b *Bundle) { b.Manifest = append(b.Manifest, ' ') }},
		{"descriptor digest", func(b *Bundle) { b.Descriptor.Digest = samplePackOther(t).Digest() }},
		{"layer bytes", func(b *Bundle) { b.Layer[len(b.Layer)-1] ^= 1 }},
		{"layer truncated", func(b *Bundle) { b.Layer = b.Layer[:len(b.Layer)-1] }},
		{"config", func(b *Bundle) { b.Config = []byte("{ }") }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			b := samplePack(t)
			tt.change(b)
			var dm *DigestMismatchError
			if err := b.Verify(); !errors.As(err, &dm) {
				t.Fatalf("Verify = %v, want *DigestMismatchError", err)
			}
		})
	}
}

func samplePackOther(t *testing.T) *Bundle {
	b, err := Pack(treeOf(t, map[string]string{"other": "x"}), sampleMetadata)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A bundle packed with another artifactType (for a registry's allow-list)
// carries it in its manifest and descriptor, reads back as a bundle, and
// differs from the default only there; a type that is not a media type is
// refused.
func TestPackArtifactType(t *testing.T) {
	const other = "application/vnd.oci.image.config.v1+json"
	def := samplePack(t)
	b, err := PackWith(sampleTree(t), sampleMetadata, PackOptions{ArtifactType: other})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Validate(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != other || b.Descriptor.ArtifactType != other {
		t.Errorf("artifactType: manifest %q, descriptor %q, want %q", m.ArtifactType, b.Descriptor.ArtifactType, other)
	}
	if b.Digest() == def.Digest() || b.LayerDescriptor.Digest != def.LayerDescriptor.Digest {
		t.Errorf("digests: %s (layer %s), default %s (layer %s): want another manifest, the same layer", b.Digest(), b.LayerDescriptor.Digest, def.Digest(), def.LayerDescriptor.Digest)
	}
	if def.Descriptor.ArtifactType != ArtifactType {
		t.Errorf("default descriptor artifactType %q", def.Descriptor.ArtifactType)
	}
	dir := t.TempDir()
	if err := WriteLayout(dir, b); err != nil {
		t.Fatal(err)
	}
	back, err := ReadLayout(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest() != b.Digest() || back.Descriptor.ArtifactType != other {
		t.Errorf("read back %s %q", back.Digest(), back.Descriptor.ArtifactType)
	}
	for _, bad := range []string{"galley", "application/vnd.galley.bundle.v1; charset=utf-8", "/x"} {
		if _, err := PackWith(sampleTree(t), sampleMetadata, PackOptions{ArtifactType: bad}); err == nil || !strings.Contains(err.Error(), "is not a media type") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
