package bundles

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize is the largest manifest Validate and ReadLayout accept,
// the limit registries commonly enforce.
const MaxManifestSize = 4 << 20

// MaxLayerSize is the largest compressed layer ReadLayout accepts: the
// DefaultLimits total plus room for tar headers and gzip framing.
const MaxLayerSize = 1<<30 + 64<<20

// Metadata describes a bundle in its manifest annotations.
type Metadata struct {
	Name        string    // org.opencontainers.image.title
	Version     string    // org.opencontainers.image.version
	Description string    // org.opencontainers.image.description
	Source      string    // org.opencontainers.image.source
	Revision    string    // org.opencontainers.image.revision
	Created     time.Time // org.opencontainers.image.created; required, see CreatedTime
	// Annotations are added as they are; they must not repeat a key set
	// by the fields above.
	Annotations map[string]string
}

// defaultCreated is the creation time when SOURCE_DATE_EPOCH is not set.
var defaultCreated = time.Unix(0, 0).UTC()

// maxEpoch is 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
const maxEpoch = 253402300799

// CreatedTime returns the creation time of a build: SOURCE_DATE_EPOCH
// (decimal seconds since the Unix epoch) when set, else the Unix epoch
// itself, 1970-01-01T00:00:00Z. It never uses the clock, so builds are
// reproducible by default. Pass os.Getenv.
func CreatedTime(getenv func(string) string) (time.Time, error) {
	v := getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return defaultCreated, nil
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want a whole number of seconds since 1970-01-01", v)
		}
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec > maxEpoch {
		return time.Time{}, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: out of range", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// Bundle is a packed bundle: the manifest and the blobs it references.
type Bundle struct {
	// Manifest is the exact manifest JSON; its digest names the bundle.
	Manifest []byte
	// Descriptor describes Manifest, with the bundle's ArtifactType.
	Descriptor ocispec.Descriptor
	// Config is the empty config "{}".
	Config []byte
	// Layer is the gzip-compressed tar of the tree, when it is held in
	// memory; nil when it is in LayerFile.
	Layer []byte
	// LayerFile, when set, names the file that holds the layer instead
	// (read it with OpenLayer): a layout's blob, or a temporary file.
	LayerFile string
	// TempLayer says LayerFile is the bundle's own temporary file, which
	// Close removes.
	TempLayer       bool
	LayerDescriptor ocispec.Descriptor
}

// Digest returns the manifest digest, the name to pin the bundle by.
func (b *Bundle) Digest() digest.Digest { return b.Descriptor.Digest }

// Tree decompresses the layer back into a Tree.
func (b *Bundle) Tree(lim Limits) (*Tree, error) {
	r, err := b.OpenLayer()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ReadTree(r, lim)
}

// CheckLayer reads the layer with CheckArchive: the checks Tree makes,
// without holding the files.
func (b *Bundle) CheckLayer(lim Limits) error {
	r, err := b.OpenLayer()
	if err != nil {
		return err
	}
	defer r.Close()
	return CheckArchive(r, lim)
}

// Pack builds the layer of t with WriteTar and an OCI 1.1 image manifest
// for it: empty config, artifactType ArtifactType, one LayerMediaType layer,
// and annotations from m. The manifest bytes are deterministic.
//
// Pack refuses an empty tree and one that ReadTree with DefaultLimits would
// refuse, so every bundle it makes can be read back.
func Pack(t *Tree, m Metadata) (*Bundle, error) {
	return PackWith(t, m, PackOptions{})
}

// PackOptions tune Pack. The zero value packs as Pack does.
type PackOptions struct {
	// LayerCache, when set, is asked for the compressed layer of the
	// tree's tar before compressing it, and given every layer compressed.
	// It is not used with LayerDir.
	LayerCache LayerCache
	// LayerDir, when set, is where the layer is written, to a new
	// temporary file hashed as it is written, instead of memory: the
	// bundle's LayerFile, removed by its Close. "" keeps the layer in
	// memory.
	LayerDir string
	// ArtifactType replaces ArtifactType in the manifest, for registries
	// whose media-type allow-lists refuse galley's own (GitLab, Quay:
	// flux2#3724, cue#2817). It must be a media type (type/subtype).
	ArtifactType string
}

// mediaTypeRe is RFC 6838's type "/" subtype, with the characters registries
// and the OCI image spec allow, and optional parameters refused. RFC 6838's
// 127-character limit on each part is checked apart: as a bounded
// repetition it made this the costliest regexp galley compiles at start-up.
var mediaTypeRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$`)

// ValidateArtifactType checks that t can be a bundle's artifactType.
func ValidateArtifactType(t string) error {
	typ, sub, _ := strings.Cut(t, "/")
	if !mediaTypeRe.MatchString(t) || len(typ) > 127 || len(sub) > 127 {
		return fmt.Errorf("artifactType %q is not a media type (type/subtype, e.g. %s)", t, ArtifactType)
	}
	return nil
}

// LayerCache remembers compressed layers by the digest of the uncompressed
// tar WriteTar writes. Compression at a fixed level is deterministic, so a
// layer stored for a tar digest is the layer compressing that tar gives;
// hashing the tar costs a fraction of compressing it. An implementation
// must return only layers it was given for that digest, by this same
// compressor (key it by the program's identity as well), and must treat a
// damaged entry as a miss.
type LayerCache interface {
	// GetLayer returns the layer stored for the tar digest, if any.
	GetLayer(tar digest.Digest) ([]byte, bool)
	// PutLayer stores a layer; failing to store is not an error for Pack.
	PutLayer(tar digest.Digest, layer []byte)
}

// PackWith is Pack with options.
func PackWith(t *Tree, m Metadata, o PackOptions) (*Bundle, error) {
	if t.Len() == 0 {
		return nil, fmt.Errorf("packing bundle: tree has no files")
	}
	if err := checkTreeLimits(t, DefaultLimits); err != nil {
		return nil, fmt.Errorf("packing bundle: %w", err)
	}
	annotations, err := m.annotations()
	if err != nil {
		return nil, fmt.Errorf("packing bundle: %w", err)
	}
	artifactType := ArtifactType
	if o.ArtifactType != "" {
		if err := ValidateArtifactType(o.ArtifactType); err != nil {
			return nil, fmt.Errorf("packing bundle: %w", err)
		}
		artifactType = o.ArtifactType
	}
	b := &Bundle{Config: bytes.Clone(emptyConfig)}
	if o.LayerDir != "" {
		b.LayerFile, b.LayerDescriptor, err = writeLayerFile(o.LayerDir, t)
		if err != nil {
			return nil, fmt.Errorf("packing bundle: %w", err)
		}
		b.TempLayer = true
	} else {
		if b.Layer, err = packLayer(t, o.LayerCache); err != nil {
			return nil, fmt.Errorf("packing bundle: %w", err)
		}
		b.LayerDescriptor = ocispec.Descriptor{
			MediaType: LayerMediaType,
			Digest:    digest.FromBytes(b.Layer),
			Size:      int64(len(b.Layer)),
		}
	}
	layerDesc := b.LayerDescriptor
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ManifestMediaType,
		ArtifactType: artifactType,
		Config:       emptyConfigDescriptor,
		Layers:       []ocispec.Descriptor{layerDesc},
		Annotations:  annotations,
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	b.Manifest, b.Descriptor = manifest, manifestDescriptor(manifest)
	return b, nil
}

// packLayer compresses t's tar, or takes the layer from the cache.
func packLayer(t *Tree, cache LayerCache) ([]byte, error) {
	var tarDigest digest.Digest
	if cache != nil {
		d := digest.Canonical.Digester()
		tw := tar.NewWriter(d.Hash())
		if err := writeEntries(tw, t); err != nil {
			return nil, err
		}
		if err := tw.Close(); err != nil {
			return nil, fmt.Errorf("closing tar: %w", err)
		}
		tarDigest = d.Digest()
		if layer, ok := cache.GetLayer(tarDigest); ok {
			return layer, nil
		}
	}
	var layer bytes.Buffer
	if err := WriteTar(&layer, t); err != nil {
		return nil, err
	}
	if cache != nil {
		cache.PutLayer(tarDigest, layer.Bytes())
	}
	return layer.Bytes(), nil
}

func manifestDescriptor(manifest []byte) ocispec.Descriptor {
	// The artifactType is the manifest's own: ArtifactType unless packed
	// with PackOptions.ArtifactType. A manifest that does not decode keeps
	// the default; Validate reports it.
	var head struct {
		ArtifactType string `json:"artifactType"`
	}
	if err := json.Unmarshal(manifest, &head); err != nil || head.ArtifactType == "" {
		head.ArtifactType = ArtifactType
	}
	return ocispec.Descriptor{
		MediaType:    ManifestMediaType,
		ArtifactType: head.ArtifactType,
		Digest:       digest.FromBytes(manifest),
		Size:         int64(len(manifest)),
	}
}

func checkTreeLimits(t *Tree, lim Limits) error {
	if t.Len() > lim.MaxFiles {
		return fmt.Errorf("%w: %d files, limit is %d", ErrLimitExceeded, t.Len(), lim.MaxFiles)
	}
	if len(t.dirs) > lim.MaxFiles {
		return fmt.Errorf("%w: %d directories, limit is %d", ErrLimitExceeded, len(t.dirs), lim.MaxFiles)
	}
	if t.Size() > lim.MaxTotalSize {
		return fmt.Errorf("%w: files add up to %d bytes, limit is %d", ErrLimitExceeded, t.Size(), lim.MaxTotalSize)
	}
	for p, d := range t.files {
		if int64(len(d)) > lim.MaxFileSize {
			return fmt.Errorf("%w: file %s is %d bytes, limit is %d", ErrLimitExceeded, p, len(d), lim.MaxFileSize)
		}
	}
	return nil
}

func (m Metadata) annotations() (map[string]string, error) {
	if m.Created.IsZero() {
		return nil, fmt.Errorf("metadata: created time is not set (use CreatedTime)")
	}
	if y := m.Created.UTC().Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("metadata: created time %v is outside years 0-9999", m.Created)
	}
	a := map[string]string{ocispec.AnnotationCreated: m.Created.UTC().Format(time.RFC3339)}
	for k, v := range map[string]string{
		ocispec.AnnotationTitle:       m.Name,
		ocispec.AnnotationVersion:     m.Version,
		ocispec.AnnotationDescription: m.Description,
		ocispec.AnnotationSource:      m.Source,
		ocispec.AnnotationRevision:    m.Revision,
	} {
		if v != "" {
			a[k] = v
		}
	}
	for k, v := range m.Annotations {
		if k == "" {
			return nil, fmt.Errorf("metadata: annotation with an empty key")
		}
		if _, ok := a[k]; ok {
			return nil, fmt.Errorf("metadata: annotation %s is already set from a Metadata field", k)
		}
		a[k] = v
	}
	return a, nil
}

// Verify checks that b is consistent: a valid bundle manifest whose
// descriptor, config and layer match their bytes. A layer in a file is
// hashed as it is read, not loaded.
func (b *Bundle) Verify() error {
	m, err := Validate(b.Manifest)
	if err != nil {
		return err
	}
	if want := manifestDescriptor(b.Manifest); b.Descriptor.Digest != want.Digest || b.Descriptor.Size != want.Size {
		return &DigestMismatchError{Blob: "manifest", Want: b.Descriptor.Digest, Got: want.Digest, WantSize: b.Descriptor.Size, GotSize: want.Size}
	}
	if err := verifyBlob("config", m.Config, b.Config); err != nil {
		return err
	}
	if b.LayerDescriptor.Digest != m.Layers[0].Digest || b.LayerDescriptor.Size != m.Layers[0].Size {
		return fmt.Errorf("%w: layer descriptor %s does not match the manifest's %s", ErrNotBundle, b.LayerDescriptor.Digest, m.Layers[0].Digest)
	}
	return b.verifyLayer(m.Layers[0])
}

func verifyBlob(what string, desc ocispec.Descriptor, data []byte) error {
	got := desc.Digest.Algorithm().FromBytes(data)
	if int64(len(data)) != desc.Size || got != desc.Digest {
		return &DigestMismatchError{Blob: what, Want: desc.Digest, Got: got, WantSize: desc.Size, GotSize: int64(len(data))}
	}
	return nil
}

// Validate checks that manifest is a galley bundle manifest: an OCI image
// manifest, schemaVersion 2, artifactType ArtifactType, the empty config
// and exactly one LayerMediaType layer, with well-formed digests. Failures
// wrap ErrNotBundle and say which field is wrong.
func Validate(manifest []byte) (*ocispec.Manifest, error) {
	if len(manifest) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest is %d bytes, limit is %d", ErrNotBundle, len(manifest), MaxManifestSize)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("%w: decoding manifest: %w", ErrNotBundle, err)
	}
	notBundle := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotBundle, fmt.Sprintf(format, args...))
	}
	switch {
	case m.SchemaVersion != 2:
		return nil, notBundle("manifest schemaVersion is %d, want 2", m.SchemaVersion)
	case m.MediaType != ManifestMediaType:
		return nil, notBundle("manifest mediaType is %q, want %q", m.MediaType, ManifestMediaType)
	case m.ArtifactType == "":
		return nil, notBundle("manifest artifactType is %q, want %q", m.ArtifactType, ArtifactType)
	case !mediaTypeRe.MatchString(m.ArtifactType):
		// Another type is one chosen for a registry's allow-list
		// (PackOptions.ArtifactType); what makes a bundle is the rest.
		return nil, notBundle("manifest artifactType %q is not a media type", m.ArtifactType)
	case m.Config.MediaType != ConfigMediaType:
		return nil, notBundle("config mediaType is %q, want %q", m.Config.MediaType, ConfigMediaType)
	case m.Config.Digest != emptyConfigDescriptor.Digest || m.Config.Size != emptyConfigDescriptor.Size:
		return nil, notBundle("config is %s (%d bytes), want the empty config %s", m.Config.Digest, m.Config.Size, emptyConfigDescriptor.Digest)
	case len(m.Layers) != 1:
		return nil, notBundle("manifest has %d layers, want 1", len(m.Layers))
	case m.Layers[0].MediaType != LayerMediaType:
		return nil, notBundle("layer mediaType is %q, want %q", m.Layers[0].MediaType, LayerMediaType)
	case m.Layers[0].Size <= 0:
		return nil, notBundle("layer size is %d", m.Layers[0].Size)
	}
	if err := m.Layers[0].Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: layer digest %q: %w", ErrNotBundle, m.Layers[0].Digest, err)
	}
	if c, ok := m.Annotations[ocispec.AnnotationCreated]; ok {
		if _, err := time.Parse(time.RFC3339, c); err != nil {
			return nil, notBundle("annotation %s is %q, want an RFC 3339 time", ocispec.AnnotationCreated, c)
		}
	}
	return &m, nil
}
