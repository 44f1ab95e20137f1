package testregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

const testArtifactType = "application/vnd.galley.test.v1"

// repository opens repo on r over plain HTTP, sending cred if it is not
// empty; without cred, the client sees the server's 401s as they are.
func repository(t *testing.T, r *Registry, repo string, cred auth.Credential) *remote.Repository {
	t.Helper()
	rp, err := remote.NewRepository(r.Ref(repo))
	if err != nil {
		t.Fatal(err)
	}
	rp.PlainHTTP = true
	rp.Client = http.DefaultClient
	if cred != auth.EmptyCredential {
		rp.Client = &auth.Client{
			Client:     http.DefaultClient,
			Credential: auth.StaticCredential(r.Host(), cred),
		}
	}
	return rp
}

// pushArtifact pushes one layer and a manifest tagged tag, as galley will.
func pushArtifact(ctx context.Context, rp *remote.Repository, layer []byte, tag string) (layerDesc, manifest ocispec.Descriptor, err error) {
	layerDesc = content.NewDescriptorFromBytes(ocispec.MediaTypeImageLayerGzip, layer)
	if err := rp.Push(ctx, layerDesc, bytes.NewReader(layer)); err != nil {
		return layerDesc, manifest, err
	}
	manifest, err = oras.PackManifest(ctx, rp, oras.PackManifestVersion1_1, testArtifactType, oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layerDesc},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2020-01-01T00:00:00Z"},
	})
	if err != nil {
		return layerDesc, manifest, err
	}
	return layerDesc, manifest, rp.Tag(ctx, manifest, tag)
}

func TestPushPull(t *testing.T) {
	ctx := t.Context()
	r := Start(t)
	rp := repository(t, r, "galley/test", auth.EmptyCredential)
	layer := []byte("not really gzip, the registry does not look")

	layerDesc, pushed, err := pushArtifact(ctx, rp, layer, "v1")
	if err != nil {
		t.Fatalf("push: %v", err)
	}

	resolved, err := rp.Resolve(ctx, "v1")
	if err != nil {
		t.Fatalf("resolve v1: %v", err)
	}
	if resolved.Digest != pushed.Digest {
		t.Fatalf("v1 resolves to %s, pushed %s", resolved.Digest, pushed.Digest)
	}
	raw, err := content.FetchAll(ctx, rp, resolved)
	if err != nil {
		t.Fatalf("fetch manifest: %v", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	if m.ArtifactType != testArtifactType || len(m.Layers) != 1 || m.Layers[0].Digest != layerDesc.Digest {
		t.Fatalf("manifest came back as %s", raw)
	}
	got, err := content.FetchAll(ctx, rp, m.Layers[0])
	if err != nil {
		t.Fatalf("fetch layer: %v", err)
	}
	if !bytes.Equal(got, layer) {
		t.Errorf("layer = %q, want %q", got, layer)
	}

	onDisk, err := os.ReadFile(r.BlobPath(layerDesc.Digest.String()))
	if err != nil {
		t.Fatalf("layer not in storage: %v", err)
	}
	if !bytes.Equal(onDisk, layer) {
		t.Errorf("stored layer = %q, want %q", onDisk, layer)
	}

	var tags []string
	if err := rp.Tags(ctx, "", func(ts []string) error { tags = append(tags, ts...); return nil }); err != nil {
		t.Fatalf("list tags: %v", err)
	}
	if !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("tags = %v, want [v1]", tags)
	}

	// Deletes are enabled: tests of tag moves and garbage need them.
	if err := rp.Delete(ctx, pushed); err != nil {
		t.Fatalf("delete manifest: %v", err)
	}
	if _, err := rp.Resolve(ctx, "v1"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("resolve after delete: err = %v, want not found", err)
	}
}

func TestAuth(t *testing.T) {
	ctx := t.Context()
	r := Start(t, WithAuth("alice", "s3cret"))
	if r.Username() != "alice" || r.Password() != "s3cret" {
		t.Fatalf("credentials = %q:%q", r.Username(), r.Password())
	}

	resp, err := http.Get("http://" + r.Host() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ without credentials: %s, want 401", resp.Status)
	}
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
		t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
	}

	for _, tc := range []struct {
		name string
		cred auth.Credential
	}{
		{"no credentials", auth.EmptyCredential},
		{"wrong password", auth.Credential{Username: "alice", Password: "wrong"}},
		{"unknown user", auth.Credential{Username: "bob", Password: "s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rp := repository(t, r, "galley/test", tc.cred)
			_, _, err := pushArtifact(ctx, rp, []byte("x"), "v1")
			var resErr *errcode.ErrorResponse
			if !errors.As(err, &resErr) || resErr.StatusCode != http.StatusUnauthorized {
				t.Fatalf("push: err = %v, want a 401 response", err)
			}
		})
	}

	rp := repository(t, r, "galley/test", auth.Credential{Username: "alice", Password: "s3cret"})
	if _, _, err := pushArtifact(ctx, rp, []byte("x"), "v1"); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	if _, err := rp.Resolve(ctx, "v1"); err != nil {
		t.Fatalf("resolve with credentials: %v", err)
	}
}

// A blob rewritten in storage is served as is: the client's digest check is
// all that stands between it and the user. Tests of galley's pull rely on
// this to simulate a compromised registry.
func TestTamperedBlob(t *testing.T) {
	ctx := t.Context()
	r := Start(t)
	rp := repository(t, r, "galley/test", auth.EmptyCredential)
	layerDesc, _, err := pushArtifact(ctx, rp, []byte("original"), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.BlobPath(layerDesc.Digest.String()), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = content.FetchAll(ctx, rp, layerDesc)
	if !errors.Is(err, content.ErrMismatchedDigest) {
		t.Fatalf("fetch tampered layer: err = %v, want %v", err, content.ErrMismatchedDigest)
	}
}

func TestStop(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Host() == b.Host() || a.StorageDir() == b.StorageDir() {
		t.Fatalf("two registries share %s or %s", a.Host(), a.StorageDir())
	}
	a.Stop()
	a.Stop() // idempotent, and Start's cleanup calls it again
	if resp, err := http.Get("http://" + a.Host() + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatalf("stopped registry still answers: %s", resp.Status)
	}
	resp, err := http.Get("http://" + b.Host() + "/v2/")
	if err != nil {
		t.Fatalf("the other registry stopped too: %v", err)
	}
	resp.Body.Close()
}

func TestConfigRejectsBadUser(t *testing.T) {
	err := writeHtpasswd(t.TempDir()+"/htpasswd", "a:b", "pw")
	if err == nil || !strings.Contains(err.Error(), `"a:b"`) {
		t.Fatalf("err = %v, want it to reject the user", err)
	}
}
