package registry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// gitlabLikeProxy sits on 127.0.0.1 in front of the real registry r and
// refuses manifests the way GitLab's container registry does (flux2#3724,
// cue#2817, and the per-field evidence in ocx-sh/ocx#480): a manifest whose
// artifactType or config mediaType is not on its allow-list of media types
// gets 400 MANIFEST_INVALID "unknown media type: <type>". The list here is
// a stand-in with the OCI and Helm types such registries know; GitLab's own
// list is longer and changes between releases.
func gitlabLikeProxy(t *testing.T, r *testregistry.Registry) string {
	t.Helper()
	allowed := []string{
		"application/vnd.oci.image.config.v1+json",
		"application/vnd.oci.empty.v1+json",
		"application/vnd.cncf.helm.config.v1+json",
		"application/vnd.dev.sigstore.bundle.v0.3+json",
	}
	target, err := url.Parse("http://" + r.Host())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") {
			body, err := io.ReadAll(io.LimitReader(req.Body, 4<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var m struct {
				ArtifactType string `json:"artifactType"`
				Config       struct {
					MediaType string `json:"mediaType"`
				} `json:"config"`
			}
			_ = json.Unmarshal(body, &m)
			for _, mt := range []string{m.ArtifactType, m.Config.MediaType} {
				if mt != "" && !slices.Contains(allowed, mt) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unknown media type: `+mt+`"}]}`)
					return
				}
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A registry that refuses galley's artifactType makes push say what
// happened and what to set, and leaves no tag; the same bundle packed with
// a type the registry knows goes through, with the same layer.
func TestPushTypeRefused(t *testing.T) {
	ctx := t.Context()
	host := gitlabLikeProxy(t, testregistry.Start(t))
	ref, err := registry.ParseReference("oci://" + host + "/platform/data:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	c := plainClient()
	tree := bundles.NewTree()
	if err := tree.Add("apps/web/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n")); err != nil {
		t.Fatal(err)
	}
	meta := bundles.Metadata{Name: "data", Version: "1.0.0", Created: time.Unix(0, 0).UTC()}
	b, err := bundles.Pack(tree, meta)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Publish(ctx, b, ref, registry.PublishOptions{})
	if !errors.Is(err, registry.ErrManifestTypeRefused) {
		t.Fatalf("push of a refused type: %v", err)
	}
	for _, want := range []string{
		"refused the bundle manifest " + b.Digest().String(),
		"unknown media type: " + bundles.ArtifactType,
		"(GitLab, Quay)",
		"--artifact-type",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	t.Logf("refused: %v", err)
	if strings.Count(err.Error(), "\n") > 0 {
		t.Errorf("error is not one line:\n%v", err)
	}
	if _, err := c.Resolve(ctx, ref); err == nil {
		t.Error("the refused bundle is tagged")
	}

	const known = "application/vnd.oci.image.config.v1+json"
	b2, err := bundles.PackWith(tree, meta, bundles.PackOptions{ArtifactType: known})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Publish(ctx, b2, ref, registry.PublishOptions{})
	if err != nil {
		t.Fatalf("push with artifactType %s: %v", known, err)
	}
	back, err := c.Pull(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != b2.Digest() || back.Descriptor.ArtifactType != known || back.LayerDescriptor.Digest != b.LayerDescriptor.Digest {
		t.Errorf("pushed %s, pulled %s with artifactType %q and layer %s (want layer %s)", res.Digest, back.Digest(), back.Descriptor.ArtifactType, back.LayerDescriptor.Digest, b.LayerDescriptor.Digest)
	}
}
