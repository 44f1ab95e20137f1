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

// The top directories of a bundle's tree, each written by one step of the
// compiler and read by the tools named: every package names them from here.
const (
	// AppsDir holds a directory for each app and job (AppDir), one
	// Kubernetes object per file: what Argo CD and Flux apply.
	AppsDir = "apps"
	// ArgoCDDir holds the Argo CD Applications and AppProject.
	ArgoCDDir = "argocd"
	// FluxDir holds the Flux OCIRepository and Kustomizations.
	FluxDir = "flux"
	// MonitoringDir holds the alert rules, dashboards and Alertmanager
	// configuration, applied after every app.
	MonitoringDir = "monitoring"
	// TerraformDir holds a directory for each Terraform module, which no
	// GitOps engine reads.
	TerraformDir = "terraform"
)

// AppDir is the directory of the app or job name: apps/<name>.
func AppDir(name string) string { return AppsDir + "/" + name }

// emptyConfig is the content of the OCI empty descriptor.
var emptyConfig = []byte("{}")

// emptyConfigDescriptor is ocispec.DescriptorEmptyJSON without the embedded
// data field, so the manifest stays the plain form every client expects.
var emptyConfigDescriptor = ocispec.Descriptor{
	MediaType: ocispec.DescriptorEmptyJSON.MediaType,
	Digest:    ocispec.DescriptorEmptyJSON.Digest,
	Size:      ocispec.DescriptorEmptyJSON.Size,
}
