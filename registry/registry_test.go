package registry_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/registry"
)

func TestPushPull(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)

	res, err := c.Push(ctx, b, m.ref(t, "team/shop:1.4.0"), "latest")
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != b.Digest() || res.Reference.Digest != b.Digest() || res.Reference.Tag != "" {
		t.Errorf("result names %s (%s), pushed %s", res.Digest, res.Reference, b.Digest())
	}
	if res.BlobsPushed != 2 || res.BlobsSkipped != 0 || !res.ManifestPushed {
		t.Errorf("first push: %d pushed, %d skipped, manifest pushed %v; want 2, 0, true", res.BlobsPushed, res.BlobsSkipped, res.ManifestPushed)
	}
	want := []registry.TagUpdate{{Tag: "1.4.0", Changed: true}, {Tag: "latest", Changed: true}}
	if !slices.Equal(res.Tags, want) {
		t.Errorf("tags = %+v, want %+v", res.Tags, want)
	}

	for _, ref := range []string{"team/shop:1.4.0", "team/shop:latest", "team/shop@" + b.Digest().String()} {
		got, err := c.Pull(ctx, m.ref(t, ref))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if !bytes.Equal(got.Manifest, b.Manifest) || !bytes.Equal(got.Layer, b.Layer) || !bytes.Equal(got.Config, b.Config) {
			t.Errorf("pull %s: bundle differs from the pushed one", ref)
		}
		if got.Descriptor.Digest != b.Digest() || got.Descriptor.ArtifactType != bundles.ArtifactType {
			t.Errorf("pull %s: descriptor %+v", ref, got.Descriptor)
		}
	}
}

// Re-pushing an unchanged bundle sends no write at all: blobs and manifest
// are found with HEAD, tags already name the digest.
func TestPushAgainWritesNothing(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	ref := m.ref(t, "shop:1.4.0")
	if _, err := c.Push(ctx, b, ref, "latest"); err != nil {
		t.Fatal(err)
	}
	m.log.take()

	res, err := c.Push(ctx, b, ref, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if w := writes(m.log.take()); len(w) != 0 {
		t.Errorf("second push wrote %v", w)
	}
	if res.BlobsPushed != 0 || res.BlobsSkipped != 2 || res.ManifestPushed || res.BytesPushed != 0 {
		t.Errorf("second push: %+v", res)
	}
	for _, u := range res.Tags {
		if u.Changed || u.Previous != b.Digest() {
			t.Errorf("tag %s: %+v, want unchanged at %s", u.Tag, u, b.Digest())
		}
	}
}

// Blobs go first, then the manifest by digest, then the tags: a reader
// never sees a tag whose manifest or blobs are missing.
func TestPushOrder(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	b := testBundle(t, "1.4.0", 1)
	if _, err := plainClient().Push(ctx, b, m.ref(t, "shop:1.4.0"), "latest"); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, w := range writes(m.log.take()) {
		switch {
		case strings.Contains(w, "/blobs/uploads/"):
			kinds = append(kinds, "blob")
		case strings.HasSuffix(w, "/manifests/"+b.Digest().String()):
			kinds = append(kinds, "manifest")
		case strings.Contains(w, "/manifests/"):
			kinds = append(kinds, "tag "+w[strings.LastIndex(w, "/")+1:])
		default:
			t.Errorf("unexpected write %s", w)
		}
	}
	kinds = slices.Compact(kinds)
	want := []string{"blob", "manifest", "tag 1.4.0", "tag latest"}
	if !slices.Equal(kinds, want) {
		t.Errorf("writes in order %v, want %v", kinds, want)
	}
}

func TestPushMovesOnlyOtherTags(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b1, b2 := testBundle(t, "1.0.0", 1), testBundle(t, "1.1.0", 2)
	if _, err := c.Push(ctx, b1, m.ref(t, "shop:1.0.0"), "latest"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Push(ctx, b2, m.ref(t, "shop:1.1.0"), "latest")
	if err != nil {
		t.Fatal(err)
	}
	want := []registry.TagUpdate{{Tag: "1.1.0", Changed: true}, {Tag: "latest", Previous: b1.Digest(), Changed: true}}
	if !slices.Equal(res.Tags, want) {
		t.Errorf("tags = %+v, want %+v", res.Tags, want)
	}
	// The config blob is shared (the empty config): only the layer is new.
	if res.BlobsPushed != 1 || res.BlobsSkipped != 1 {
		t.Errorf("pushed %d, skipped %d; want 1 and 1", res.BlobsPushed, res.BlobsSkipped)
	}
	d, err := c.Resolve(ctx, m.ref(t, "shop:1.0.0"))
	if err != nil || d.Digest != b1.Digest() {
		t.Errorf("1.0.0 resolves to %s (%v), want %s", d.Digest, err, b1.Digest())
	}
}

func TestPushRefusesBadInputBeforeSending(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	for _, tc := range []struct {
		name string
		ref  registry.Reference
		tags []string
		want error
	}{
		{"underscore", m.ref(t, "shop:1.4.0"), []string{"1.4_0"}, registry.ErrInvalidTag},
		{"incomplete version", m.ref(t, "shop:1.4.0"), []string{"v1"}, registry.ErrInvalidTag},
		{"signature tag", m.ref(t, "shop:1.4.0"), []string{"sha256-" + strings.Repeat("a", 64) + ".sig"}, registry.ErrInvalidTag},
		{"plus", m.ref(t, "shop:1.4.0"), []string{"1.4.0+git"}, registry.ErrInvalidTag},
		{"other digest", m.ref(t, "shop@"+digest.FromString("x").String()), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Push(ctx, b, tc.ref, tc.tags...)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if reqs := m.log.take(); len(reqs) != 0 {
				t.Errorf("sent %v before refusing", reqs)
			}
		})
	}

	broken := *b
	broken.Layer = append([]byte(nil), b.Layer...)
	broken.Layer[len(broken.Layer)-1] ^= 1
	if _, err := c.Push(ctx, &broken, m.ref(t, "shop:1.4.0")); err == nil {
		t.Fatal("pushed a bundle whose layer does not match its manifest")
	}
	if reqs := m.log.take(); len(reqs) != 0 {
		t.Errorf("sent %v before refusing", reqs)
	}
}

// tamper rewrites the body of GET requests whose path ends with suffix.
func tamper(suffix string, rewrite func([]byte) []byte) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, suffix) {
				next.ServeHTTP(w, r)
				return
			}
			rec := &recorder{header: http.Header{}, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			body := rewrite(rec.body.Bytes())
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.status)
			w.Write(body)
		})
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func TestPullDetectsTampering(t *testing.T) {
	b := testBundle(t, "1.4.0", 1)
	flip := func(p []byte) []byte {
		p = bytes.Clone(p)
		p[len(p)/2] ^= 0xff
		return p
	}
	for _, tc := range []struct {
		name, suffix string
		rewrite      func([]byte) []byte
		blob         string // "" when only the announced size differs
	}{
		{"layer content", b.LayerDescriptor.Digest.String(), flip, "layer"},
		{"layer longer", b.LayerDescriptor.Digest.String(), func(p []byte) []byte { return append(bytes.Clone(p), 0) }, ""},
		{"layer shorter", b.LayerDescriptor.Digest.String(), func(p []byte) []byte { return p[:len(p)-1] }, ""},
		{"manifest by tag", "/manifests/1.4.0", flip, "manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			m := startMem(t, tamper(tc.suffix, tc.rewrite))
			c := plainClient()
			if _, err := c.Push(ctx, b, m.ref(t, "shop:1.4.0")); err != nil {
				t.Fatal(err)
			}
			got, err := c.Pull(ctx, m.ref(t, "shop:1.4.0"))
			if !errors.Is(err, registry.ErrDigestMismatch) {
				t.Fatalf("pull = %v, %v; want a digest mismatch", got, err)
			}
			var dm *bundles.DigestMismatchError
			if tc.blob != "" && (!errors.As(err, &dm) || dm.Blob != tc.blob) {
				t.Errorf("err = %v, want a *bundles.DigestMismatchError for the %s", err, tc.blob)
			}
			if !strings.Contains(err.Error(), m.host+"/shop") {
				t.Errorf("err = %q, want it to name the repository", err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	b := testBundle(t, "1.4.0", 1)
	const secret = "hunter2-very-secret"

	open := startMem(t, nil)
	if _, err := plainClient().Push(ctx, b, open.ref(t, "shop:1.4.0")); err != nil {
		t.Fatal(err)
	}
	authed := startMem(t, basicAuth("alice", secret))
	denied := startMem(t, func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusForbidden, "DENIED", "requested access to the resource is denied")
		})
	})
	gone := refusedHost(t)
	goneRef, err := registry.ParseReference("oci://" + gone + "/shop:1.4.0")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		client *registry.Client
		ref    registry.Reference
		want   error
		msg    string
	}{
		{"no credentials", plainClient(), authed.ref(t, "shop:1.4.0"), registry.ErrUnauthorized, "wants credentials"},
		{"wrong password", registry.New(registry.Options{PlainHTTP: true, Username: "alice", Password: secret + "x"}), authed.ref(t, "shop:1.4.0"), registry.ErrUnauthorized, "rejected the credentials"},
		{"denied", plainClient(), denied.ref(t, "shop:1.4.0"), registry.ErrDenied, "denied: no permission on " + denied.host + "/shop"},
		{"unknown repository", plainClient(), open.ref(t, "nope:1.4.0"), registry.ErrRepositoryNotFound, "repository " + open.host + "/nope not found"},
		{"missing tag", plainClient(), open.ref(t, "shop:9.9.9"), registry.ErrNotFound, "tag 9.9.9 not found in " + open.host + "/shop"},
		{"missing digest", plainClient(), open.ref(t, "shop@"+digest.FromString("x").String()), registry.ErrNotFound, "manifest sha256:"},
		{"unreachable", plainClient(), goneRef, registry.ErrUnreachable, "registry " + gone + " unreachable: connection refused"},
		{"TLS to plain HTTP", registry.New(registry.Options{}), open.ref(t, "shop:1.4.0"), registry.ErrUnreachable, "speaks plain HTTP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.Pull(ctx, tc.ref)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.msg) || strings.Contains(msg, "\n") {
				t.Errorf("err = %q, want one line containing %q", msg, tc.msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("err = %q shows the password", msg)
			}
			var re *registry.Error
			if !errors.As(err, &re) || re.Op != "pull" || re.Ref != tc.ref.Name() {
				t.Errorf("err = %#v, want a *registry.Error for pull %s", err, tc.ref.Name())
			}
		})
	}

	c := registry.New(registry.Options{PlainHTTP: true, Username: "alice", Password: secret})
	if _, err := c.Push(ctx, b, authed.ref(t, "shop:1.4.0")); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
}

// refusedHost returns a 127.0.0.1 address nothing listens on.
func refusedHost(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	return host
}

// Credentials come from the Docker config file, as docker login writes it.
func TestDockerCredentials(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, basicAuth("alice", "s3cret"))
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	config := `{"auths":{"` + m.host + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := registry.DockerCredentials(func(k string) string {
		if k == "DOCKER_CONFIG" {
			return dir
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	c := registry.New(registry.Options{PlainHTTP: true, CredentialStore: store})
	if _, err := c.Push(ctx, testBundle(t, "1.4.0", 1), m.ref(t, "shop:1.4.0")); err != nil {
		t.Fatalf("push with docker credentials: %v", err)
	}

	empty, err := registry.DockerCredentials(func(k string) string {
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	})
	if err != nil {
		t.Fatalf("a missing config file must be an empty store: %v", err)
	}
	_, err = registry.New(registry.Options{PlainHTTP: true, CredentialStore: empty}).Pull(ctx, m.ref(t, "shop:1.4.0"))
	if !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("pull without stored credentials: %v", err)
	}
}

func TestListVersions(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	pushed := map[string]digest.Digest{}
	for i, tag := range []string{"1.10.0", "1.2.0", "1.2.0-rc.1", "v2.0.0", "latest"} {
		b := testBundle(t, strings.TrimPrefix(tag, "v"), i)
		if _, err := c.Push(ctx, b, m.ref(t, "shop:"+tag)); err != nil {
			t.Fatal(err)
		}
		pushed[tag] = b.Digest()
	}
	signer := newSigner(t)
	if _, err := c.Sign(ctx, m.ref(t, "shop"), pushed["1.2.0"], signer); err != nil {
		t.Fatal(err)
	}

	vs, err := c.ListVersions(ctx, m.ref(t, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Tag)
		if v.Digest != pushed[v.Tag] {
			t.Errorf("%s: digest %s, want %s", v.Tag, v.Digest, pushed[v.Tag])
		}
		if !v.Bundle || v.Created != "2024-05-01T12:00:00Z" {
			t.Errorf("%s: bundle %v created %q", v.Tag, v.Bundle, v.Created)
		}
		if v.Signed != (v.Tag == "1.2.0") {
			t.Errorf("%s: signed = %v", v.Tag, v.Signed)
		}
		if v.Semver != (v.Tag != "latest") {
			t.Errorf("%s: semver = %v", v.Tag, v.Semver)
		}
	}
	if want := []string{"1.2.0-rc.1", "1.2.0", "1.10.0", "v2.0.0", "latest"}; !slices.Equal(got, want) {
		t.Errorf("versions %v, want %v", got, want)
	}

	if _, err := c.ListVersions(ctx, m.ref(t, "nope")); !errors.Is(err, registry.ErrRepositoryNotFound) {
		t.Errorf("list unknown repository: %v", err)
	}
}

// Progress reports each blob from first to last byte, and blobs the
// registry already has as skipped.
func TestProgress(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	var events []registry.Progress
	c := registry.New(registry.Options{PlainHTTP: true, Progress: func(p registry.Progress) { events = append(events, p) }})
	b := bigBundle(t, 3<<20)
	ref := m.ref(t, "shop:1.0.0")

	last := func(op string) map[string]registry.Progress {
		got := map[string]registry.Progress{}
		for _, e := range events {
			if e.Op != op {
				continue
			}
			if prev, ok := got[e.What]; ok && e.Done < prev.Done {
				t.Errorf("%s %s went back from %d to %d bytes", op, e.What, prev.Done, e.Done)
			}
			got[e.What] = e
		}
		events = nil
		return got
	}

	if _, err := c.Push(ctx, b, ref); err != nil {
		t.Fatal(err)
	}
	pushed := last("push")
	if e := pushed["layer"]; e.Skipped || e.Done != b.LayerDescriptor.Size || e.Size != b.LayerDescriptor.Size {
		t.Errorf("push of the layer ended with %+v", e)
	}
	if e := pushed["manifest"]; e.Done != b.Descriptor.Size {
		t.Errorf("push of the manifest ended with %+v", e)
	}

	if _, err := c.Push(ctx, b, ref); err != nil {
		t.Fatal(err)
	}
	if e := last("push")["layer"]; !e.Skipped {
		t.Errorf("re-push of the layer: %+v, want skipped", e)
	}

	var layerEvents int
	if _, err := c.Pull(ctx, ref); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.What == "layer" {
			layerEvents++
		}
	}
	if e := last("pull")["layer"]; e.Done != b.LayerDescriptor.Size || layerEvents < 3 {
		t.Errorf("pull of the layer: %d events, last %+v", layerEvents, e)
	}
}
