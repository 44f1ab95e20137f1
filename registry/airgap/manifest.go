package airgap

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types, which most images on Docker Hub still use.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Errors, for errors.Is.
var (
	// ErrCorrupt: an archive is damaged or was tampered with. Nothing from
	// it has been pushed.
	ErrCorrupt = errors.New("archive damaged or tampered with")
	// ErrUnsupported: a manifest is of a kind galley cannot copy (Docker
	// schema 1, say).
	ErrUnsupported = errors.New("unsupported manifest")
)

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == dockerManifestList
}

func isManifest(mediaType string) bool {
	return isIndex(mediaType) || mediaType == ocispec.MediaTypeImageManifest || mediaType == dockerManifest
}

// isForeign reports a layer registries do not serve: it is fetched by its
// users from its URLs, and copies leave it out as oras and crane do.
func isForeign(d ocispec.Descriptor) bool {
	switch d.MediaType {
	case dockerForeignLayer,
		// OCI's non-distributable layers, deprecated but still met.
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}

// manifestJSON holds the fields of an image manifest and an index that
// copying needs; both kinds decode into it.
type manifestJSON struct {
	MediaType string               `json:"mediaType"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
}

// successors returns what a manifest of mediaType references and a copy
// must carry: the child manifests of an index, the config and layers of an
// image manifest (foreign layers aside). The subject of a referrer is not
// one of them: it is copied on its own.
func successors(mediaType string, data []byte) ([]ocispec.Descriptor, error) {
	if !isManifest(mediaType) {
		return nil, fmt.Errorf("%w: media type %q", ErrUnsupported, mediaType)
	}
	var m manifestJSON
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", mediaType, err)
	}
	if m.MediaType != "" && m.MediaType != mediaType {
		return nil, fmt.Errorf("manifest says mediaType %q, its descriptor %q", m.MediaType, mediaType)
	}
	if isIndex(mediaType) {
		for _, c := range m.Manifests {
			if !isManifest(c.MediaType) {
				return nil, fmt.Errorf("%w: index entry %s has media type %q", ErrUnsupported, c.Digest, c.MediaType)
			}
		}
		return m.Manifests, nil
	}
	if m.Config == nil {
		return nil, errors.New("image manifest without a config")
	}
	out := []ocispec.Descriptor{*m.Config}
	for _, l := range m.Layers {
		if !isForeign(l) {
			out = append(out, l)
		}
	}
	return out, nil
}

// Platform is an os/arch[/variant] an export keeps of multi-arch images.
type Platform = ocispec.Platform

// ParsePlatform parses "os/arch[/variant]", e.g. linux/arm64/v8.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant, e.g. linux/amd64", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func platformString(p *ocispec.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// matchPlatform reports whether an index entry is for one of want: same
// os and architecture, and the same variant when want names one.
func matchPlatform(have *ocispec.Platform, want []Platform) bool {
	if have == nil {
		return false
	}
	for _, w := range want {
		if have.OS == w.OS && have.Architecture == w.Architecture && (w.Variant == "" || have.Variant == w.Variant) {
			return true
		}
	}
	return false
}

// Annotations BuildKit puts on the attestation manifests of an index.
const (
	buildkitReferenceType   = "vnd.docker.reference.type"
	buildkitReferenceDigest = "vnd.docker.reference.digest"
)

// filterIndex returns the index data listing only the manifests for the
// platforms in want, and the attestations of those. The rest of the index
// (media type, annotations, subject) is kept as it is.
func filterIndex(data []byte, want []Platform) ([]byte, []ocispec.Descriptor, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, fmt.Errorf("decoding index: %w", err)
	}
	var all []ocispec.Descriptor
	if err := json.Unmarshal(raw["manifests"], &all); err != nil {
		return nil, nil, fmt.Errorf("decoding index manifests: %w", err)
	}
	kept := map[string]bool{}
	var out []ocispec.Descriptor
	for _, d := range all {
		if matchPlatform(d.Platform, want) {
			kept[d.Digest.String()] = true
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		var have []string
		for _, d := range all {
			if d.Annotations[buildkitReferenceType] == "" {
				have = append(have, platformString(d.Platform))
			}
		}
		var names []string
		for _, w := range want {
			names = append(names, platformString(&w))
		}
		return nil, nil, fmt.Errorf("no manifest for %s (the index has %s)", strings.Join(names, ", "), strings.Join(have, ", "))
	}
	for _, d := range all {
		if d.Annotations[buildkitReferenceType] != "" && kept[d.Annotations[buildkitReferenceDigest]] {
			out = append(out, d)
		}
	}
	// Keep the original order of the entries.
	slices.SortStableFunc(out, func(a, b ocispec.Descriptor) int {
		return slices.IndexFunc(all, func(d ocispec.Descriptor) bool { return d.Digest == a.Digest }) -
			slices.IndexFunc(all, func(d ocispec.Descriptor) bool { return d.Digest == b.Digest })
	})
	m, err := json.Marshal(out)
	if err != nil {
		return nil, nil, err
	}
	raw["manifests"] = m
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, nil, err
	}
	return b, out, nil
}
