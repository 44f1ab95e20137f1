package airgap_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/registry/airgap"
)

type entry struct {
	name     string
	data     []byte
	typeflag byte
}

// layoutEntries is a small valid archive: one image (config, layer)
// listed in index.json.
func layoutEntries(t testing.TB) ([]entry, ocispec.Descriptor) {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("not really a tar, registries do not care")
	cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	manifest, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
	if err != nil {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	index, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{md}})
	if err != nil {
		t.Fatal(err)
	}
	blob := func(d digest.Digest, data []byte) entry {
		return entry{name: "blobs/sha256/" + d.Encoded(), data: data}
	}
	return []entry{
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "blobs/", typeflag: tar.TypeDir},
		{name: "blobs/sha256/", typeflag: tar.TypeDir},
		blob(cd.Digest, config),
		blob(ld.Digest, layer),
		blob(md.Digest, manifest),
		{name: "index.json", data: index},
	}, md
}

func writeTar(t testing.TB, entries []entry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.data))}
		switch e.typeflag {
		case 0:
			hdr.Typeflag = tar.TypeReg
		case tar.TypeSymlink:
			hdr.Linkname, hdr.Size = "/etc/passwd", 0
		case tar.TypeDir:
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenArchive(t *testing.T) {
	valid, md := layoutEntries(t)
	a, err := airgap.OpenArchive(writeTar(t, valid))
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Manifests(); len(got) != 1 || got[0].Digest != md.Digest {
		t.Errorf("Manifests() = %+v", got)
	}
	rc, err := a.Fetch(t.Context(), md)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, valid[5].data) {
		t.Errorf("Fetch: %q, %v", got, err)
	}
	a.Close()

	// Entries written as "./name", as `tar -C dir .` does.
	dotted := make([]entry, len(valid))
	for i, e := range valid {
		e.name = "./" + e.name
		dotted[i] = e
	}
	if a, err := airgap.OpenArchive(writeTar(t, dotted)); err != nil {
		t.Errorf("./ entries: %v", err)
	} else {
		a.Close()
	}
}

// Whatever is wrong, OpenArchive says what and refuses the whole file.
func TestOpenArchiveRefuses(t *testing.T) {
	valid, _ := layoutEntries(t)
	with := func(f func([]entry) []entry) []entry {
		es := append([]entry(nil), valid...)
		return f(es)
	}
	for name, c := range map[string]struct {
		entries []entry
		want    string
	}{
		"changed blob": {with(func(es []entry) []entry {
			es[4].data = []byte("NOT really a tar, registries do not care")
			return es
		}), "content digest is sha256:"},
		"missing blob": {with(func(es []entry) []entry { return append(es[:4], es[5:]...) }), "which is not in the archive"},
		"wrong size": {with(func(es []entry) []entry {
			es[6].data = bytes.Replace(es[6].data, []byte(`"size":`), []byte(`"size":1`), 1)
			return es
		}), "the archive holds"},
		"symlink":      {append(with(func(es []entry) []entry { return es }), entry{name: "blobs/sha256/link", typeflag: tar.TypeSymlink}), `entry "blobs/sha256/link" is not a regular file or directory`},
		"duplicate":    {append(with(func(es []entry) []entry { return es }), valid[3]), "appears twice"},
		"unexpected":   {append(with(func(es []entry) []entry { return es }), entry{name: "../etc/passwd", data: []byte("x")}), `unexpected entry "../etc/passwd"`},
		"bad digest":   {append(with(func(es []entry) []entry { return es }), entry{name: "blobs/sha256/abc", data: []byte("x")}), `blob "blobs/sha256/abc"`},
		"no layout":    {valid[1:], "no oci-layout"},
		"no index":     {valid[:6], "no index.json"},
		"not an index": {append(valid[:6:6], entry{name: "index.json", data: []byte(`{"schemaVersion":1}`)}), "schemaVersion is 1, want 2"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := airgap.OpenArchive(writeTar(t, c.entries))
			if !errors.Is(err, airgap.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrCorrupt with %q", err, c.want)
			}
		})
	}

	// A truncated file.
	p := writeTar(t, valid)
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, data[:700], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := airgap.OpenArchive(p); !errors.Is(err, airgap.ErrCorrupt) {
		t.Errorf("truncated: %v", err)
	}
}

// A changed blob is reported as a *bundles.DigestMismatchError naming it.
func TestOpenArchiveDigestMismatch(t *testing.T) {
	es, _ := layoutEntries(t)
	want := strings.TrimPrefix(es[4].name, "blobs/sha256/")
	es[4].data = bytes.ToUpper(es[4].data)
	_, err := airgap.OpenArchive(writeTar(t, es))
	var dm *bundles.DigestMismatchError
	if !errors.As(err, &dm) || dm.Want.Encoded() != want {
		t.Errorf("got %v, want a DigestMismatchError for %s", err, want)
	}
}

func FuzzOpenArchive(f *testing.F) {
	valid, _ := layoutEntries(f)
	data, _ := os.ReadFile(writeTar(f, valid))
	f.Add(data)
	f.Add(data[:1024])
	// With a trusted root, whose reader runs on what opens.
	withRoot, _ := os.ReadFile(writeTar(f, withTrustedRoot(f, valid, []byte(`{"mediaType":"x"}`))))
	f.Add(withRoot)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := airgap.OpenArchive(p)
		if err != nil {
			return
		}
		if _, _, err := a.TrustedRoot(); err != nil && !errors.Is(err, airgap.ErrNoTrustedRoot) && !errors.Is(err, airgap.ErrCorrupt) {
			t.Fatalf("TrustedRoot of an archive that opened: %v, want ErrNoTrustedRoot or ErrCorrupt", err)
		}
		// What opens is whole: every manifest's graph can be read back.
		for _, d := range a.Manifests() {
			rc, err := a.Fetch(t.Context(), d)
			if err != nil {
				t.Fatalf("listed %s but cannot fetch it: %v", d.Digest, err)
			}
			if _, err := io.ReadAll(rc); err != nil {
				t.Fatalf("listed %s but cannot read it: %v", d.Digest, err)
			}
		}
		a.Close()
	})
}
