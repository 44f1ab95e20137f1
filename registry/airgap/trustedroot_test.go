package airgap_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testsigstore"
	"github.com/galley-dev/galley/registry/airgap"
)

// trustedRootFile is a real trusted_root.json, of a virtual Sigstore.
func trustedRootFile(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := testsigstore.Start(t).WriteTrustedRoot(p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withTrustedRoot adds to a valid archive's entries a trusted root as
// the package documents it: an OCI artifact of one layer, listed in
// index.json with kind trusted-root.
func withTrustedRoot(t testing.TB, entries []entry, data []byte) []entry {
	t.Helper()
	layer := ocispec.Descriptor{MediaType: airgap.TrustedRootMediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	m, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: airgap.TrustedRootMediaType, Config: ocispec.DescriptorEmptyJSON, Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)),
		Annotations: map[string]string{airgap.AnnotationKind: airgap.KindTrustedRoot}}
	out := append([]entry{}, entries[:len(entries)-1]...)
	for _, b := range []struct {
		d    digest.Digest
		data []byte
	}{{ocispec.DescriptorEmptyJSON.Digest, ocispec.DescriptorEmptyJSON.Data}, {layer.Digest, data}, {md.Digest, m}} {
		out = append(out, entry{name: "blobs/sha256/" + b.d.Encoded(), data: b.data})
	}
	var idx ocispec.Index
	if err := json.Unmarshal(entries[len(entries)-1].data, &idx); err != nil {
		t.Fatal(err)
	}
	idx.Manifests = append(idx.Manifests, md)
	ib, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, entry{name: ocispec.ImageIndexFile, data: ib})
}

func TestArchiveTrustedRoot(t *testing.T) {
	rootJSON := trustedRootFile(t)
	pin := digest.FromBytes(rootJSON)
	valid, _ := layoutEntries(t)

	a, err := airgap.OpenArchive(writeTar(t, withTrustedRoot(t, valid, rootJSON)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	data, d, err := a.TrustedRoot()
	if err != nil || d != pin || !bytes.Equal(data, rootJSON) {
		t.Fatalf("TrustedRoot() = %d bytes, %s, %v; want the file, %s", len(data), d, err, pin)
	}
	tr, data, err := a.CheckTrustedRoot(pin)
	if err != nil || tr == nil || !bytes.Equal(data, rootJSON) {
		t.Fatalf("CheckTrustedRoot(right pin): %v", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		t.Error("the root returned has no certificate authority")
	}
	other := digest.FromString("another root")
	if _, _, err := a.CheckTrustedRoot(other); !errors.Is(err, airgap.ErrTrustedRootPin) ||
		!strings.Contains(err.Error(), pin.Encoded()) || !strings.Contains(err.Error(), other.Encoded()) {
		t.Errorf("CheckTrustedRoot(wrong pin) = %v, want ErrTrustedRootPin naming both digests", err)
	}

	// No root: refused, saying where one comes from.
	plain, err := airgap.OpenArchive(writeTar(t, valid))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, _, err := plain.CheckTrustedRoot(pin); !errors.Is(err, airgap.ErrNoTrustedRoot) || !strings.Contains(err.Error(), "--trusted-root FILE") {
		t.Errorf("CheckTrustedRoot without a root = %v", err)
	}

	// Bytes changed in place: the archive is refused before anyone reads
	// the root.
	tampered := withTrustedRoot(t, valid, rootJSON)
	for i, e := range tampered {
		if bytes.Equal(e.data, rootJSON) {
			e.data = bytes.Replace(bytes.Clone(rootJSON), []byte(`"`), []byte(`'`), 1)
			tampered[i] = e
		}
	}
	if _, err := airgap.OpenArchive(writeTar(t, tampered)); !errors.Is(err, airgap.ErrCorrupt) {
		t.Errorf("root altered in place: %v, want ErrCorrupt", err)
	}

	// A consistent archive whose pinned "root" is not one: refused.
	junk := []byte(`{"mediaType":"` + airgap.TrustedRootMediaType + `"}`)
	ja, err := airgap.OpenArchive(writeTar(t, withTrustedRoot(t, valid, junk)))
	if err != nil {
		t.Fatal(err)
	}
	defer ja.Close()
	if _, _, err := ja.CheckTrustedRoot(digest.FromBytes(junk)); !errors.Is(err, sign.ErrTrustedRoot) {
		t.Errorf("pinned junk root = %v, want sign.ErrTrustedRoot", err)
	}
}

func TestParseSHA256(t *testing.T) {
	const hex = "4cba372fd17d25c53f4b40eec388e2b28fac1694827d925c56899fb3d42ff0cd"
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{hex, true},
		{"sha256:" + hex, true},
		{strings.ToUpper(hex), true},
		{" " + hex + "\n", true},
		{hex[:63], false},
		{"sha512:" + hex, false},
		{"", false},
		{"zz" + hex[2:], false},
	} {
		d, err := airgap.ParseSHA256(tc.in)
		if tc.ok && (err != nil || d != digest.Digest("sha256:"+hex)) {
			t.Errorf("ParseSHA256(%q) = %s, %v", tc.in, d, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("ParseSHA256(%q) = %s, want an error", tc.in, d)
		}
	}
}
