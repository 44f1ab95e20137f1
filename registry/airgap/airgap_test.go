package airgap_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
	"github.com/galley-dev/galley/registry/airgap"
)

// The whole crossing: a signed stack and its images on an "outside"
// registry, exported to one file, imported into an "inside" registry,
// where it deploys with nothing pointing outside.
func TestExportImport(t *testing.T) {
	outside, inside := testregistry.Start(t), testregistry.Start(t)
	images := pushOutsideImages(t, outside.Host())
	repo := "oci://" + outside.Host() + "/platform/shop"
	res := compileStack(t, writeStack(t, images, repo))
	original := res.Bundle

	// Published outside, signed by the publisher.
	publisher, importer := newKeyPair(t, "publisher"), newKeyPair(t, "importer")
	out := registry.New(plainOptions())
	ref := mustRef(t, repo+":1.0.0")
	if _, err := out.Push(t.Context(), original, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Sign(t.Context(), ref, original.Digest(), publisher.signer); err != nil {
		t.Fatal(err)
	}

	// Export.
	dir := t.TempDir()
	file := filepath.Join(dir, "stack.tar")
	c := airgap.New(plainOptions())
	exp, err := c.Export(t.Context(), ref, file, airgap.ExportOptions{WithImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Signatures != 1 || exp.Referrers != 0 || len(exp.Images) != 4 || !slices.Equal(exp.Tags, []string{"1.0.0"}) {
		t.Fatalf("export: %d signatures, %d referrers, %d images, tags %v; want 1, 0, 4, [1.0.0]", exp.Signatures, exp.Referrers, len(exp.Images), exp.Tags)
	}
	for _, im := range exp.Images {
		if want := images.digests[im.Ref].String(); im.Digest.String() != want {
			t.Errorf("exported %s as %s, upstream it is %s", im.Ref, im.Digest, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("export left %d files in its directory, want only stack.tar", len(entries))
	}
	// Exporting again gives the same bytes: the file depends on what is
	// exported only.
	again := filepath.Join(dir, "again.tar")
	if _, err := c.Export(t.Context(), ref, again, airgap.ExportOptions{WithImages: true}); err != nil {
		t.Fatal(err)
	}
	if a, b := readFile(t, file), readFile(t, again); !bytes.Equal(a, b) {
		t.Errorf("two exports of the same bundle differ (%d and %d bytes)", len(a), len(b))
	}

	// A tampered copy (one byte of one image layer) is refused before
	// anything is pushed.
	tampered := filepath.Join(dir, "tampered.tar")
	layer := tamperLayer(t, file, tampered, images.digests[images.postgres].String())
	to := mustRef(t, "oci://"+inside.Host()+"/mirror/prod")
	_, err = c.Import(t.Context(), tampered, to, airgap.ImportOptions{Verifier: publisher.verifier, Signer: importer.signer, SignatureFormat: registry.FormatCosignSig})
	var dm *bundles.DigestMismatchError
	if !errors.Is(err, airgap.ErrCorrupt) || !errors.As(err, &dm) || dm.Want.String() != layer {
		t.Fatalf("import of a tampered archive: %v; want ErrCorrupt naming blob %s", err, layer)
	}
	if repos := catalog(t, inside); len(repos) != 0 {
		t.Fatalf("a refused import pushed to %v", repos)
	}
	// So is a bundle signed by another key than the one given.
	_, err = c.Import(t.Context(), file, to, airgap.ImportOptions{Verifier: importer.verifier, Signer: importer.signer, SignatureFormat: registry.FormatCosignSig})
	if err == nil || !strings.Contains(err.Error(), "no signature verifies with the key") {
		t.Fatalf("import verified with the wrong key: %v", err)
	}
	if repos := catalog(t, inside); len(repos) != 0 {
		t.Fatalf("a refused import pushed to %v", repos)
	}

	// Import.
	imp, err := c.Import(t.Context(), file, to, airgap.ImportOptions{Verifier: publisher.verifier, Signer: importer.signer, SignatureFormat: registry.FormatCosignSig})
	if err != nil {
		t.Fatal(err)
	}
	if !imp.Verified || imp.SignatureTag == "" || len(imp.Images) != 4 || len(imp.Missing) != 0 || imp.BlobsPushed == 0 {
		t.Fatalf("import: %+v", imp)
	}
	insideRepo := inside.Host() + "/mirror/prod/platform/shop"
	if imp.Relocated.Repo() != insideRepo || imp.Original.Digest != original.Digest() {
		t.Fatalf("import put the bundle at %s (original %s), want %s", imp.Relocated, imp.Original, insideRepo)
	}

	in := registry.New(plainOptions())
	relocated, err := in.Pull(t.Context(), mustRef(t, "oci://"+insideRepo+":1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if relocated.Digest() != imp.Relocated.Digest {
		t.Fatalf("tag 1.0.0 inside names %s, import says %s", relocated.Digest(), imp.Relocated.Digest)
	}
	m, err := bundles.Validate(relocated.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Annotations[airgap.AnnotationRelocatedFrom]; got != original.Digest().String() {
		t.Errorf("%s = %q, want %s", airgap.AnnotationRelocatedFrom, got, original.Digest())
	}
	tree, err := relocated.Tree(bundles.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}

	// Every image reference points inside, by digest, and the image is
	// there with the digest it had outside.
	ext, err := airgap.ExternalRefs(tree, []string{inside.Host()})
	if err != nil {
		t.Fatal(err)
	}
	if len(ext) != 0 {
		t.Errorf("the imported bundle still points outside: %+v", ext)
	}
	idx, err := bundles.ReadIndex(tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Images) != 4 {
		t.Errorf("relocated bundle.json lists %d images, want 4: %v", len(idx.Images), idx.Images)
	}
	upstream := map[string]string{}
	for _, im := range imp.Images {
		upstream[im.Reference] = images.digests[im.Source].String()
	}
	for _, im := range idx.Images {
		repoPart, d, ok := strings.Cut(im, "@")
		if !ok || !strings.HasPrefix(repoPart, inside.Host()+"/mirror/prod/") {
			t.Errorf("image %s is not pinned by digest inside", im)
			continue
		}
		if upstream[im] != d {
			t.Errorf("image %s: upstream digest %s", im, upstream[im])
		}
		checkImage(t, im)
	}
	for _, f := range tree.Files() {
		if strings.HasPrefix(f.Path, "apps/") && strings.Contains(string(f.Data), outside.Host()) {
			t.Errorf("%s still names the outside registry:\n%s", f.Path, f.Data)
		}
	}
	// The init container, the sidecar and the env value are rewritten,
	// and nothing else moved.
	checkFile(t, tree, "apps/web/deployment-web.yaml", original, func(_, after string) {
		if !strings.Contains(after, "- image: "+inside.Host()+"/mirror/prod/library/postgres@sha256:") {
			t.Errorf("init container not relocated:\n%s", after)
		}
	})
	checkFile(t, tree, "apps/web/cronjob-worker.yaml", original, func(_, after string) {
		if !strings.Contains(after, "value: "+inside.Host()+"/mirror/prod/library/postgres@sha256:") {
			t.Errorf("env value not relocated:\n%s", after)
		}
	})

	// Argo CD and Flux deploy from the private repository.
	for _, p := range []string{"argocd/apps/web.yaml", "argocd/root.yaml", "argocd/apps/project.yaml", "flux/root/ocirepository.yaml"} {
		data, ok := tree.Get(p)
		if !ok {
			t.Errorf("relocated bundle has no %s", p)
			continue
		}
		if !strings.Contains(string(data), "oci://"+insideRepo) || strings.Contains(string(data), outside.Host()) {
			t.Errorf("%s does not point at oci://%s:\n%s", p, insideRepo, data)
		}
	}

	// The original, imported too, points outside: the check tells.
	origTree, err := original.Tree(bundles.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if ext, err := airgap.ExternalRefs(origTree, []string{inside.Host()}); err != nil || len(ext) == 0 {
		t.Errorf("ExternalRefs of the original bundle: %v, %v; want references outside", ext, err)
	}

	// Signatures: the importer's key verifies the relocated bundle, the
	// publisher's the original, both with galley and with real cosign.
	if _, err := in.Verify(t.Context(), mustRef(t, "oci://"+insideRepo+":1.0.0"), importer.verifier); err != nil {
		t.Errorf("relocated bundle: %v", err)
	}
	if _, err := in.Verify(t.Context(), imp.Original, publisher.verifier); err != nil {
		t.Errorf("original bundle inside: %v", err)
	}
	for _, cosign := range []string{"cosign-v2", "cosign-v3"} {
		t.Run(cosign, func(t *testing.T) {
			for _, c := range []struct {
				key, ref string
				digest   string // signed digest; "" when verification must fail
			}{
				{importer.pub, insideRepo + ":1.0.0", imp.Relocated.Digest.String()},
				{importer.pub, imp.Relocated.Name(), imp.Relocated.Digest.String()},
				{publisher.pub, imp.Original.Name(), original.Digest().String()},
				{publisher.pub, imp.Relocated.Name(), ""},
			} {
				out, err := cosignVerify(t, cosign, c.key, c.ref)
				switch {
				case c.digest == "" && err == nil:
					t.Errorf("cosign verify --key %s %s succeeded:\n%s", filepath.Base(c.key), c.ref, out)
				case c.digest != "" && err != nil:
					t.Errorf("cosign verify --key %s %s: %v\n%s", filepath.Base(c.key), c.ref, err, out)
				case c.digest != "" && !strings.Contains(out, `"docker-manifest-digest":"`+c.digest+`"`):
					t.Errorf("cosign verify --key %s %s does not name %s:\n%s", filepath.Base(c.key), c.ref, c.digest, out)
				}
			}
		})
	}

	// Importing again sends no blob and gives the same bundle.
	again2, err := c.Import(t.Context(), file, to, airgap.ImportOptions{Verifier: publisher.verifier, Signer: importer.signer, SignatureFormat: registry.FormatCosignSig})
	if err != nil {
		t.Fatal(err)
	}
	if again2.BlobsPushed != 0 || again2.Relocated != imp.Relocated || slices.ContainsFunc(again2.Images, func(i airgap.ImportedImage) bool { return i.Pushed }) {
		t.Errorf("second import: pushed %d blobs (%d bytes), relocated %s (first %s)", again2.BlobsPushed, again2.BytesPushed, again2.Relocated, imp.Relocated)
	}

	// cosign v3 signs into a Sigstore bundle attached as an OCI 1.1
	// referrer: it crosses too, and cosign v3 verifies the original
	// inside through it. (cosign v2 and v3 then read that bundle only,
	// which needs Sigstore's trusted root from the network: that is why
	// the checks above come first.)
	pinned := ref.WithDigest(original.Digest()).Name()
	if out, err := cosign(t, "cosign-v3", "sign", "--key", publisher.priv, "--allow-http-registry", "--yes",
		"--tlog-upload=false", "--use-signing-config=false", pinned); err != nil {
		t.Fatalf("cosign-v3 sign: %v\n%s", err, out)
	}
	withReferrer := filepath.Join(dir, "referrer.tar")
	exp, err = c.Export(t.Context(), ref, withReferrer, airgap.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if exp.Referrers != 1 || exp.Signatures != 1 {
		t.Fatalf("export after cosign v3 signed: %d referrers, %d signatures; want 1 and 1", exp.Referrers, exp.Signatures)
	}
	// Exported without images, this archive relocates to another bundle
	// than the first one under the same version: import refuses to move
	// the released 1.0.0, as push does, unless forced.
	if _, err := c.Import(t.Context(), withReferrer, to, airgap.ImportOptions{Verifier: publisher.verifier}); !errors.Is(err, registry.ErrVersionExists) {
		t.Fatalf("import of another bundle under 1.0.0: %v, want ErrVersionExists", err)
	}
	if _, err := c.Import(t.Context(), withReferrer, to, airgap.ImportOptions{Verifier: publisher.verifier, Force: true}); err != nil {
		t.Fatal(err)
	}
	insideRepoClient, err := orasremote.NewRepository(insideRepo)
	if err != nil {
		t.Fatal(err)
	}
	insideRepoClient.PlainHTTP = true
	var referrers []ocispec.Descriptor
	if err := insideRepoClient.Referrers(t.Context(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: original.Digest(), Size: original.Descriptor.Size}, "",
		func(rs []ocispec.Descriptor) error { referrers = append(referrers, rs...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(referrers) != 1 || referrers[0].ArtifactType != "application/vnd.dev.sigstore.bundle.v0.3+json" {
		t.Errorf("referrers of the original inside: %+v; want cosign's Sigstore bundle", referrers)
	}
	if out, err := cosignVerify(t, "cosign-v3", publisher.pub, imp.Original.Name()); err != nil {
		t.Errorf("cosign-v3 verify of the original through its referrer: %v\n%s", err, out)
	}
}

// --platform keeps only the chosen platforms: the index is cut down to
// them, under a new digest the relocated bundle pins.
func TestExportPlatforms(t *testing.T) {
	outside, inside := testregistry.Start(t), testregistry.Start(t)
	images := pushOutsideImages(t, outside.Host())
	repo := "oci://" + outside.Host() + "/platform/shop"
	res := compileStack(t, writeStack(t, images, repo))
	ref := mustRef(t, repo+":1.0.0")
	if _, err := registry.New(plainOptions()).Push(t.Context(), res.Bundle, ref); err != nil {
		t.Fatal(err)
	}
	c := airgap.New(plainOptions())
	file := filepath.Join(t.TempDir(), "arm.tar")
	arm, err := airgap.ParsePlatform("linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := c.Export(t.Context(), ref, file, airgap.ExportOptions{WithImages: true, Platforms: []airgap.Platform{arm}})
	if err != nil {
		t.Fatal(err)
	}
	var web *airgap.ExportedImage
	for i := range exp.Images {
		if exp.Images[i].Ref == images.web {
			web = &exp.Images[i]
		}
	}
	if web == nil || web.SourceDigest.String() != images.digests[images.web].String() || !slices.Equal(web.Platforms, []string{"linux/arm64/v8"}) {
		t.Fatalf("web exported as %+v; want the arm64 manifest only, from %s", web, images.digests[images.web])
	}

	// Without the signature, import needs no key; the unsigned original
	// is still imported.
	imp, err := c.Import(t.Context(), file, mustRef(t, "oci://"+inside.Host()+"/arm"), airgap.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if imp.Verified || imp.SignatureTag != "" {
		t.Errorf("import without keys says verified=%v, signature tag %q", imp.Verified, imp.SignatureTag)
	}
	for _, im := range imp.Images {
		if im.Source == images.web {
			if !strings.HasSuffix(im.Reference, "@"+web.Digest.String()) {
				t.Errorf("web relocated to %s, want the cut-down index %s", im.Reference, web.Digest)
			}
			checkImage(t, im.Reference)
		}
	}
	// A platform the index lacks fails the export half-way through (the
	// bundle and other images written): the temporary file goes, and the
	// file from the last export stays as it was.
	before := readFile(t, file)
	if _, err := c.Export(t.Context(), ref, file, airgap.ExportOptions{WithImages: true, Platforms: []airgap.Platform{{OS: "windows", Architecture: "amd64"}}}); err == nil ||
		!strings.Contains(err.Error(), "no manifest for windows/amd64 (the index has linux/amd64, linux/arm64/v8)") {
		t.Errorf("export for a platform the index lacks: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 1 || !bytes.Equal(readFile(t, file), before) {
		t.Errorf("a failed export left %v, or changed %s", entries, file)
	}
}

// Export without images carries the bundle and its signature; import then
// rewrites the sources and reports the images it could not relocate.
func TestExportWithoutImages(t *testing.T) {
	outside, inside := testregistry.Start(t), testregistry.Start(t)
	images := pushOutsideImages(t, outside.Host())
	repo := "oci://" + outside.Host() + "/platform/shop"
	res := compileStack(t, writeStack(t, images, repo))
	ref := mustRef(t, repo+":1.0.0")
	if _, err := registry.New(plainOptions()).Push(t.Context(), res.Bundle, ref); err != nil {
		t.Fatal(err)
	}
	c := airgap.New(plainOptions())
	file := filepath.Join(t.TempDir(), "bundle.tar")
	exp, err := c.Export(t.Context(), ref, file, airgap.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Images) != 0 || exp.Blobs != 3 {
		t.Errorf("export without images: %d images, %d blobs; want 0 and 3", len(exp.Images), exp.Blobs)
	}
	a, err := airgap.OpenArchive(file)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.Manifests(); len(got) != 1 || got[0].Annotations[ocispec.AnnotationRefName] != "1.0.0" || got[0].Annotations[airgap.AnnotationKind] != airgap.KindBundle {
		t.Errorf("index.json: %+v", got)
	}
	// The extracted archive is an OCI layout bundles.ReadLayout reads.
	layout := untar(t, file)
	if b, err := bundles.ReadLayout(layout, "1.0.0"); err != nil || b.Digest() != res.Bundle.Digest() {
		t.Errorf("ReadLayout of the extracted archive: %v", err)
	}

	imp, err := c.Import(t.Context(), file, mustRef(t, "oci://"+inside.Host()+"/m"), airgap.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imp.Missing) != 4 || len(imp.Images) != 0 {
		t.Errorf("import without images: missing %v, images %v", imp.Missing, imp.Images)
	}
	if !slices.Contains(imp.Changed, "flux/root/ocirepository.yaml") || slices.ContainsFunc(imp.Changed, func(p string) bool { return strings.HasPrefix(p, "apps/") }) {
		t.Errorf("changed files: %v", imp.Changed)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tamperLayer copies the archive src to dst with one byte changed in the
// first layer of the image whose manifest digest is manifest, and returns
// that layer's digest.
func tamperLayer(t *testing.T, src, dst, manifest string) string {
	t.Helper()
	data := readFile(t, src)
	blobs := map[string][2]int64{} // digest -> offset, size
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rest, ok := strings.CutPrefix(hdr.Name, "blobs/sha256/"); ok {
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			off := bytes.Index(data, body)
			blobs["sha256:"+rest] = [2]int64{int64(off), hdr.Size}
		}
	}
	at := blobs[manifest]
	var m ocispec.Manifest
	if err := json.Unmarshal(data[at[0]:at[0]+at[1]], &m); err != nil {
		t.Fatal(err)
	}
	layer := m.Layers[0].Digest.String()
	pos := blobs[layer][0] + blobs[layer][1]/2
	data[pos] ^= 0xff
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return layer
}

// checkImage copies the whole image ref names (host/repo@digest: index,
// manifests, configs, layers) back from its registry with oras into an OCI
// layout, and has go-containerregistry check every digest, diff ID and
// platform of it there.
func checkImage(t *testing.T, ref string) {
	t.Helper()
	repoName, d, ok := strings.Cut(ref, "@")
	if !ok {
		t.Errorf("%s is not pinned by digest", ref)
		return
	}
	repo, err := orasremote.NewRepository(repoName)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	desc, err := repo.Resolve(t.Context(), d)
	if err != nil {
		t.Errorf("%s: %v", ref, err)
		return
	}
	dir := t.TempDir()
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := oras.CopyGraph(t.Context(), repo, store, desc, oras.DefaultCopyGraphOptions); err != nil {
		t.Errorf("%s: %v", ref, err)
		return
	}
	if err := store.Tag(t.Context(), desc, "check"); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(desc.MediaType, "index") || strings.Contains(desc.MediaType, "list") {
		idx, err := p.ImageIndex()
		if err == nil {
			var child v1.ImageIndex
			if child, err = idx.ImageIndex(h); err == nil {
				err = validate.Index(child)
			}
		}
		if err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		return
	}
	img, err := p.Image(h)
	if err == nil {
		err = validate.Image(img)
	}
	if err != nil {
		t.Errorf("%s: %v", ref, err)
	}
}

// checkFile checks that a relocated file differs from the original only in
// image values, and runs more checks on both.
func checkFile(t *testing.T, tree *bundles.Tree, p string, original *bundles.Bundle, more func(before, after string)) {
	t.Helper()
	after, ok := tree.Get(p)
	if !ok {
		t.Errorf("no %s in the relocated bundle", p)
		return
	}
	ot, err := original.Tree(bundles.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ot.Get(p)
	bl, al := strings.Split(string(before), "\n"), strings.Split(string(after), "\n")
	if len(bl) != len(al) {
		t.Errorf("%s: %d lines became %d", p, len(bl), len(al))
		return
	}
	for i := range bl {
		if bl[i] != al[i] && !strings.Contains(bl[i], "image") && !strings.Contains(bl[i], "value:") {
			t.Errorf("%s:%d changed: %q -> %q", p, i+1, bl[i], al[i])
		}
	}
	more(string(before), string(after))
}

// untar extracts an archive into a new directory.
func untar(t *testing.T, file string) string {
	t.Helper()
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(readFile(t, file)))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Import releases the relocated bundle as push does: a version that names
// other content at the destination is refused before anything is pushed,
// and --force moves it.
func TestImportRefusesToMoveAVersion(t *testing.T) {
	outside, inside := testregistry.Start(t), testregistry.Start(t)
	images := pushOutsideImages(t, outside.Host())
	repo := "oci://" + outside.Host() + "/platform/shop"
	res := compileStack(t, writeStack(t, images, repo))
	ref := mustRef(t, repo+":1.0.0")
	reg := registry.New(plainOptions())
	if _, err := reg.Push(t.Context(), res.Bundle, ref); err != nil {
		t.Fatal(err)
	}
	c := airgap.New(plainOptions())
	file := filepath.Join(t.TempDir(), "bundle.tar")
	if _, err := c.Export(t.Context(), ref, file, airgap.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	to := mustRef(t, "oci://"+inside.Host()+"/m")
	imp, err := c.Import(t.Context(), file, to, airgap.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else releases 1.0.0 there meanwhile: the original bundle
	// under the relocated one's tag.
	taken := imp.Relocated.WithTag("1.0.0")
	if _, err := reg.Push(t.Context(), res.Bundle, taken); err != nil {
		t.Fatal(err)
	}

	_, err = c.Import(t.Context(), file, to, airgap.ImportOptions{})
	var ve *registry.VersionExistsError
	if !errors.As(err, &ve) || ve.Existing != res.Bundle.Digest() || ve.New != imp.Relocated.Digest {
		t.Fatalf("import over a taken version: %v; want a VersionExistsError naming %s and %s", err, res.Bundle.Digest(), imp.Relocated.Digest)
	}
	if d, err := reg.Resolve(t.Context(), taken); err != nil || d.Digest != res.Bundle.Digest() {
		t.Errorf("the refused import moved 1.0.0 to %v (%v)", d.Digest, err)
	}

	again, err := c.Import(t.Context(), file, to, airgap.ImportOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Tags) != 1 || again.Tags[0].Previous != res.Bundle.Digest() || !again.Tags[0].Changed {
		t.Errorf("forced import: tags %+v; want 1.0.0 moved from %s", again.Tags, res.Bundle.Digest())
	}
}
