// Package sign makes and checks cosign-compatible signatures for galley
// bundles, without cosign: keys, the simple signing payload, the
// "sha256-<hex>.sig" signature manifest, and its verification.
//
// Everything written here must be read unchanged by `cosign verify --key`
// (v2 and v3) and by Flux's cosign verifier, so every on-registry byte follows
// cosign's own code. The facts, and the cosign file each comes from
// (github.com/sigstore/cosign, read at v2.6.5 and v3.1.3, identical there):
//
//   - Private keys: PKCS #8 DER, encrypted with go-securesystemslib's
//     "encrypted" envelope (scrypt N=2^16 r=8 p=1 + nacl/secretbox, as JSON),
//     PEM type "ENCRYPTED SIGSTORE PRIVATE KEY"; "ENCRYPTED COSIGN PRIVATE KEY"
//     is still read. Public keys: PKIX "PUBLIC KEY" PEM. Default key: ECDSA
//     P-256, SHA-256. (pkg/cosign/keys.go: GenerateKeyPair, marshalKeyPair,
//     LoadPrivateKey.)
//   - Payload: sigstore's payload.Cosign with the image digest, no claimed
//     identity and no annotations, so docker-reference is the repository name
//     and "optional" is null. (cmd/cosign/cli/sign/sign.go: signDigest.)
//   - Signature: SignMessage over the payload bytes, standard base64.
//     (internal/pkg/cosign/payload/signer.go.)
//   - Tag: "<alg>-<hex>.sig" in the signed image's repository.
//     (pkg/oci/remote/remote.go: suffixTag; pkg/oci/remote/options.go:
//     SignatureTagSuffix.)
//   - Manifest: go-containerregistry's empty.Image turned into an OCI image
//     manifest with an OCI image config (pkg/oci/empty/empty.go: Signatures),
//     then mutate.Append of one layer per signature (pkg/oci/mutate/signatures.go:
//     AppendSignatures). The config is therefore go-containerregistry's
//     v1.ConfigFile with one empty history entry and one diff_id per layer.
//   - Layer: media type application/vnd.dev.cosign.simplesigning.v1+json
//     (pkg/types/media.go), blob = payload, digest = diff_id = sha256 of the
//     payload, annotation dev.cosignproject.cosign/signature = base64
//     signature (pkg/oci/static/signature.go, pkg/oci/static/options.go).
//   - Duplicates: cosign does not append a signature when an existing layer
//     has the same payload and a signature the signer's key verifies
//     (pkg/cosign/remote/remote.go: dd.Find). (*Artifact).SignedBy is that
//     test; BuildSignatureManifest itself drops only byte-identical ones.
//   - Verification: the signature over the payload with the key, then the
//     payload's docker-manifest-digest against the image digest
//     (pkg/cosign/verify.go: verifyOCISignature; pkg/cosign/verifiers.go:
//     SimpleClaimVerifier). cosign does not compare docker-reference, so a
//     bundle copied to another registry keeps verifying; here the reference is
//     checked only when asked with WithRepository.
package sign
