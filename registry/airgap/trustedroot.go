package airgap

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/galley-dev/galley/bundles/sign"
)

// The trusted root an export may carry: the Sigstore trusted_root.json that
// vouches for the Fulcio and Rekor of a keyless signature. It is stored as
// a small OCI artifact (one layer, the file as given, titled
// TrustedRootFile) listed in index.json with AnnotationKind KindTrustedRoot,
// so the archive stays a plain OCI image layout.
//
// A root shipped beside the signatures it vouches for proves nothing by
// itself: whoever can alter the archive can replace both. Import therefore
// uses it only when pinned by its sha256, a short digest the operator
// carries out of band (ImportOptions.TrustedRootSHA256).
const (
	KindTrustedRoot = "trusted-root"
	// TrustedRootFile is the title of the root's layer.
	TrustedRootFile = "trusted_root.json"
	// TrustedRootMediaType is Sigstore's media type of trusted_root.json.
	TrustedRootMediaType = root.TrustedRootMediaType01
)

// Errors of the trusted-root pin, for errors.Is.
var (
	// ErrNoTrustedRoot: the archive carries no trusted root.
	ErrNoTrustedRoot = errors.New("the archive carries no trusted root")
	// ErrTrustedRootPin: the archive's trusted root is not the pinned one.
	ErrTrustedRootPin = errors.New("trusted root does not match its pin")
)

// ParseSHA256 parses a pin: 64 hex digits, with or without "sha256:", as
// sha256sum and galley bundle export print it.
func ParseSHA256(s string) (digest.Digest, error) {
	d := digest.Digest("sha256:" + strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "sha256:")))
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%q is not a sha256 digest: want 64 hex digits, as sha256sum prints them", s)
	}
	return d, nil
}

// writeTrustedRoot adds data, a trusted_root.json already parsed, to the
// archive and returns its digest.
func (w *layoutWriter) writeTrustedRoot(data []byte) (digest.Digest, error) {
	layer := ocispec.Descriptor{MediaType: TrustedRootMediaType, Digest: digest.FromBytes(data), Size: int64(len(data)),
		Annotations: map[string]string{ocispec.AnnotationTitle: TrustedRootFile}}
	config := ocispec.DescriptorEmptyJSON
	m, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: TrustedRootMediaType,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
	})
	if err != nil {
		return "", err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: TrustedRootMediaType, Digest: digest.FromBytes(m), Size: int64(len(m))}
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{config, config.Data}, {layer, data}, {desc, m}} {
		if err := w.writeBlob(b.d, b.data); err != nil {
			return "", fmt.Errorf("writing the trusted root: %w", err)
		}
	}
	desc.Annotations = map[string]string{AnnotationKind: KindTrustedRoot, ocispec.AnnotationTitle: TrustedRootFile}
	w.entries = append(w.entries, desc)
	return layer.Digest, nil
}

// TrustedRoot returns the trusted_root.json the archive carries and its
// sha256, or ErrNoTrustedRoot. The bytes are what export was given; that
// they match their digest OpenArchive has checked, not that anyone trusts
// them: compare the digest with a pin first (see CheckTrustedRoot).
func (a *Archive) TrustedRoot() ([]byte, digest.Digest, error) {
	var found *ocispec.Descriptor
	for _, e := range a.Manifests() {
		if e.Annotations[AnnotationKind] != KindTrustedRoot {
			continue
		}
		if found != nil {
			return nil, "", fmt.Errorf("%w: two trusted roots in %s", ErrCorrupt, ocispec.ImageIndexFile)
		}
		found = &e
	}
	if found == nil {
		return nil, "", ErrNoTrustedRoot
	}
	raw, err := a.readBlob(*found, maxMetadataSize)
	if err != nil {
		return nil, "", err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "", fmt.Errorf("%w: trusted root manifest %s: %v", ErrCorrupt, found.Digest, err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != TrustedRootMediaType || m.Layers[0].Digest.Algorithm() != digest.SHA256 {
		return nil, "", fmt.Errorf("%w: trusted root manifest %s: want one sha256 layer of type %s", ErrCorrupt, found.Digest, TrustedRootMediaType)
	}
	data, err := a.readBlob(m.Layers[0], maxMetadataSize)
	if err != nil {
		return nil, "", err
	}
	return data, m.Layers[0].Digest, nil
}

// CheckTrustedRoot returns the archive's trusted root, parsed, when its
// sha256 is pin; otherwise an error saying what to do.
func (a *Archive) CheckTrustedRoot(pin digest.Digest) (*root.TrustedRoot, []byte, error) {
	data, d, err := a.TrustedRoot()
	if errors.Is(err, ErrNoTrustedRoot) {
		return nil, nil, fmt.Errorf("--trusted-root-sha256 %s: %w (export it with --trusted-root FILE, or import with --trusted-root FILE)", pin.Encoded(), err)
	}
	if err != nil {
		return nil, nil, err
	}
	if d != pin {
		return nil, nil, fmt.Errorf("%w: the archive's %s has sha256 %s, the pin says %s: the archive was altered or the pin is for another root; do not import it, get the digest from the publisher again", ErrTrustedRootPin, TrustedRootFile, d.Encoded(), pin.Encoded())
	}
	tr, err := sign.ParseTrustedRoot(data)
	if err != nil {
		return nil, nil, fmt.Errorf("the archive's %s: %w", TrustedRootFile, err)
	}
	return tr, data, nil
}
