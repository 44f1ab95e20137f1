// Package bundles is the on-disk and on-the-wire format of a galley bundle:
// an in-memory file Tree, a deterministic tar+gzip layer, safe extraction,
// and the OCI image manifest and image layout that carry it.
//
// A bundle is an OCI 1.1 image manifest with the empty config
// (application/vnd.oci.empty.v1+json, "{}"), artifactType ArtifactType and
// exactly one LayerMediaType layer: the one shape both Argo CD and Flux
// accept unchanged.
//
// Everything this package writes is a function of its input only: the same
// Tree and Metadata give the same bytes and so the same manifest digest,
// whatever the clock, umask, working directory or insertion order.
package bundles

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types, file names and annotation keys of a galley bundle.
const (
	// ArtifactType is the manifest artifactType of every galley bundle.
	ArtifactType = "application/vnd.galley.bundle.v1"
	// ManifestMediaType is the media type of the bundle manifest.
	ManifestMediaType = ocispec.MediaTypeImageManifest
	// ConfigMediaType is the media type of the (empty) config blob.
	ConfigMediaType = ocispec.MediaTypeEmptyJSON
	// LayerMediaType is the media type of the single content layer. Argo CD
	// accepts it by default; Flux takes the first layer whatever its type.
	LayerMediaType = ocispec.MediaTypeImageLayerGzip

	// IndexPath is galley's machine-readable index inside the tree, written
	// by the compiler.
	IndexPath = "bundle.json"

	// AnnotationStack names the stack the bundle was compiled from.
	AnnotationStack = "dev.galley.stack"
	// AnnotationEnvironment names the environment the bundle targets.
	AnnotationEnvironment = "dev.galley.environment"
	// AnnotationGalleyVersion is the version of galley that built the bundle.
	AnnotationGalleyVersion = "dev.galley.galley-version"
)

// emptyConfig is the content of the OCI empty descriptor.
var emptyConfig = []byte("{}")

// emptyConfigDescriptor is ocispec.DescriptorEmptyJSON without the embedded
// data field, so the manifest stays the plain form every client expects.
var emptyConfigDescriptor = ocispec.Descriptor{
	MediaType: ocispec.DescriptorEmptyJSON.MediaType,
	Digest:    ocispec.DescriptorEmptyJSON.Digest,
	Size:      ocispec.DescriptorEmptyJSON.Size,
}
