// Package airgap carries a galley bundle, its signatures and the container
// images it runs across an air gap in one file, and installs it from a
// private registry with nothing pointing outside.
//
// # The archive
//
// Export writes a tar of an OCI image layout (oci-layout, blobs/<alg>/<hex>,
// index.json). Every blob is stored once, whatever how many images share
// it. index.json lists one entry per manifest the archive was made for,
// each annotated with AnnotationKind:
//
//   - "bundle": the bundle manifest, once per tag
//     (org.opencontainers.image.ref.name), with AnnotationRepository naming
//     the repository it was exported from;
//   - "signature": the cosign signature manifest of the bundle, the legacy
//     "sha256-<hex>.sig" tag that oras.ExtendedCopy does not carry, with
//     AnnotationSubject naming the bundle digest;
//   - "referrer": an OCI 1.1 referrer of the bundle (a Sigstore bundle, an
//     SBOM), with AnnotationSubject;
//   - "image": a container image listed in the bundle's bundle.json, with
//     AnnotationImage holding the reference exactly as bundle.json writes it
//     and io.containerd.image.name its normalised name. Multi-arch indexes
//     are kept whole; with ExportOptions.Platforms an index is replaced by
//     one listing only those platforms (a new digest; AnnotationSourceDigest
//     keeps the original one);
//   - "trusted-root" (ExportOptions.TrustedRoot): a Sigstore
//     trusted_root.json for keyless signatures, an OCI artifact of one
//     layer titled trusted_root.json. Import uses it only when pinned by
//     its sha256 (ImportOptions.TrustedRootSHA256), a digest the operator
//     carries by another channel: a root beside the signatures it vouches
//     for proves nothing to someone who can alter the file.
//
// The tar's entries and their order depend only on what was exported, and
// the file appears complete or not at all. Archives are read with
// OpenArchive, which checks every blob against its digest before anything
// uses it.
//
// # Where Import puts things
//
// Import takes a destination oci://<registry>/<prefix> and puts each
// repository under the prefix, keeping its path and dropping its host:
//
//	docker.io/library/postgres:16.4        -> <registry>/<prefix>/library/postgres
//	ghcr.io/acme/etl@sha256:...            -> <registry>/<prefix>/acme/etl
//	<bundle registry>/platform/data:1.4.0  -> <registry>/<prefix>/platform/data
//
// Images keep their digests (and their tags, when they had one), so every
// image reference of the bundle is rewritten to
// <registry>/<prefix>/<path>@<digest>. Two images with the same path and tag
// from different registries would collide: Import refuses that before
// pushing anything.
//
// The bundle's repository receives the original bundle, by digest, with its
// signature (so it keeps verifying with the publisher's key), and the
// relocated bundle under the original tags: its manifests name only the
// private registry, its Argo CD and Flux sources point at that repository,
// AnnotationRelocatedFrom records the original digest, and the importer's
// key signs it.
package airgap
