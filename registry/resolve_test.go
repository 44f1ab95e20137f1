package registry_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

func TestImageReference(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		image string
		want  registry.Reference
	}{
		{"postgres:16", registry.Reference{Registry: "registry-1.docker.io", Repository: "library/postgres", Tag: "16"}},
		{"postgres", registry.Reference{Registry: "registry-1.docker.io", Repository: "library/postgres", Tag: "latest"}},
		{"docker.io/bitnami/redis:7.2", registry.Reference{Registry: "registry-1.docker.io", Repository: "bitnami/redis", Tag: "7.2"}},
		{"ghcr.io/acme/web:1.0", registry.Reference{Registry: "ghcr.io", Repository: "acme/web", Tag: "1.0"}},
		{"127.0.0.1:5000/acme/web:1.0", registry.Reference{Registry: "127.0.0.1:5000", Repository: "acme/web", Tag: "1.0"}},
		{"ghcr.io/acme/web@" + d, registry.Reference{Registry: "ghcr.io", Repository: "acme/web", Digest: d}},
		{"ghcr.io/acme/web:1.0@" + d, registry.Reference{Registry: "ghcr.io", Repository: "acme/web", Digest: d}},
	}
	for _, tt := range tests {
		got, err := registry.ImageReference(tt.image)
		if err != nil {
			t.Errorf("ImageReference(%q): %v", tt.image, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ImageReference(%q) = %+v, want %+v", tt.image, got, tt.want)
		}
	}
	for _, bad := range []string{"", "UPPER/case:1", "web:{{ .Values.tag }}"} {
		if _, err := registry.ImageReference(bad); !errors.Is(err, registry.ErrInvalidReference) {
			t.Errorf("ImageReference(%q) = %v, want ErrInvalidReference", bad, err)
		}
	}
}

func TestPinnedImage(t *testing.T) {
	const d = digest.Digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	tests := []struct{ image, want string }{
		{"postgres:16", "postgres:16@" + d.String()},
		{"ghcr.io/acme/web", "ghcr.io/acme/web@" + d.String()},
		{"ghcr.io/acme/web:1.0@" + d.String(), "ghcr.io/acme/web:1.0@" + d.String()},
	}
	for _, tt := range tests {
		if got := registry.PinnedImage(tt.image, d); got != tt.want {
			t.Errorf("PinnedImage(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestResolveImages(t *testing.T) {
	r := testregistry.Start(t)
	single := pushImage(t, r.Ref("acme/web:1.0"), randomImage(t))
	multi := pushImage(t, r.Ref("library/postgres:16.4"), randomIndex(t))
	const pinned = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	images := []string{
		r.Ref("acme/web:1.0"),
		r.Ref("library/postgres:16.4"),
		// Already pinned: kept, not asked for (the registry does not have it).
		r.Ref("acme/gone@" + pinned),
	}
	c := registry.New(registry.Options{PlainHTTP: true})
	got, err := c.ResolveImages(t.Context(), images)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]digest.Digest{images[0]: single, images[1]: multi, images[2]: pinned}
	if len(got) != len(want) {
		t.Errorf("ResolveImages = %v, want %v", got, want)
	}
	for im, d := range want {
		if got[im] != d {
			t.Errorf("ResolveImages[%s] = %s, want %s", im, got[im], d)
		}
	}
}

func TestResolveImagesErrors(t *testing.T) {
	r := testregistry.Start(t)
	pushImage(t, r.Ref("acme/web:1.0"), randomImage(t))
	closed := closedPort(t)
	c := registry.New(registry.Options{PlainHTTP: true, Retry: registry.RetryOptions{MaxAttempts: 1}})
	tests := []struct {
		name   string
		images []string
		is     error
		// msg is the whole message, with HOST and CLOSED standing for
		// the registries.
		msg string
	}{
		{
			name:   "unreachable",
			images: []string{r.Ref("acme/web:1.0"), closed + "/acme/web:1.0"},
			is:     registry.ErrUnreachable,
			msg:    "image CLOSED/acme/web:1.0 (registry CLOSED): registry CLOSED unreachable: connection refused",
		},
		{
			name:   "missing tag",
			images: []string{r.Ref("acme/web:2.0")},
			is:     registry.ErrNotFound,
			msg:    "image HOST/acme/web:2.0 (registry HOST): tag 2.0 not found in HOST/acme/web",
		},
		{
			name:   "missing repository",
			images: []string{r.Ref("acme/nothing:1.0")},
			is:     registry.ErrRepositoryNotFound,
			msg:    "image HOST/acme/nothing:1.0 (registry HOST): repository HOST/acme/nothing not found",
		},
		{
			name:   "not a reference",
			images: []string{r.Ref("acme/web:1.0"), "web:{{ .Values.tag }}"},
			is:     registry.ErrInvalidReference,
		},
		{
			// The first failing image in the order given, whichever
			// answered first.
			name:   "first failure",
			images: []string{r.Ref("acme/web:2.0"), closed + "/acme/web:1.0"},
			is:     registry.ErrNotFound,
			msg:    "image HOST/acme/web:2.0 (registry HOST): tag 2.0 not found in HOST/acme/web",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ResolveImages(t.Context(), tt.images)
			if err == nil {
				t.Fatalf("ResolveImages = %v, want an error", got)
			}
			var ie *registry.ImageError
			if !errors.As(err, &ie) {
				t.Errorf("error %T is not an *ImageError: %v", err, err)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if tt.msg != "" {
				want := strings.NewReplacer("HOST", r.Host(), "CLOSED", closed).Replace(tt.msg)
				if err.Error() != want {
					t.Errorf("error:\n got %s\nwant %s", err, want)
				}
			}
		})
	}
}

// closedPort returns 127.0.0.1:<port> with nothing listening.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// randomIndex is a two-image index, as a multi-platform image is.
func randomIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// pushImage pushes an image or index to ref (host/repo:tag) over plain
// HTTP and returns its digest.
func pushImage(t *testing.T, ref string, img any) digest.Digest {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	var h v1.Hash
	switch x := img.(type) {
	case v1.Image:
		err = p.AppendImage(x)
		if err == nil {
			h, err = x.Digest()
		}
	case v1.ImageIndex:
		err = p.AppendIndex(x)
		if err == nil {
			h, err = x.Digest()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.Digest(h.String())
	desc, err := store.Resolve(t.Context(), d.String())
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(ref, ":")
	repo, err := orasremote.NewRepository(ref[:i])
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if _, err := oras.Copy(t.Context(), store, desc.Digest.String(), repo, ref[i+1:], oras.DefaultCopyOptions); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return d
}
