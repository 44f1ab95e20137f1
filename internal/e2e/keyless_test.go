package e2e

import (
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testcluster"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testsigstore"
	"github.com/galley-dev/galley/registry"
)

const releaseIdentity = "https://github.com/acme/platform/.github/workflows/release.yml@refs/tags/v1.0.0"

// TestFluxVerifiesSigstoreBundles: Flux's own verifier, in the real
// source-controller, accepts the Sigstore bundles galley signs (cosign v3's
// format, an OCI 1.1 referrer found through the referrers tag): with a key
// (push --key's default format), and keyless against a private Sigstore's
// trusted root (trustedRootSecretRef) for the identity matchOIDCIdentity
// names; it refuses a keyless bundle of another identity.
//
// The Sigstore is the VIRTUAL one of internal/testsigstore (Fulcio and
// Rekor over HTTP on 127.0.0.1, not the real servers). The test runs its
// own small cluster and Flux, so as not to share controllers with TestFlux,
// and deploys nothing: only the OCIRepository's verification is checked.
func TestFluxVerifiesSigstoreBundles(t *testing.T) {
	ctx := t.Context()
	dir, err := os.MkdirTemp("", "galley-e2e-keyless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := testcluster.New(dir)
	if err != nil {
		t.Fatalf("starting the test cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs(30))
		}
	})
	if err := c.StartFlux(ctx); err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t)
	vs := testsigstore.Start(t)
	client := registry.New(registry.Options{PlainHTTP: true})

	key, pubPEM := newKey(t)
	tr, err := vs.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]byte{
		secretYAML("cosign-pub", testcluster.FluxNamespace, "cosign.pub", pubPEM),
		secretYAML("sigstore-root", testcluster.FluxNamespace, "trusted_root.json", rootJSON),
	} {
		if _, err := c.KubectlStdin(ctx, s, "apply", "--server-side", "-f", "-"); err != nil {
			t.Fatal(err)
		}
	}

	repo := reg.Ref("platform/keyless")
	publish := func(version string, signer signature.SignerVerifier) {
		t.Helper()
		tree := bundles.NewTree()
		if err := tree.Add("apps/web/configmap.yaml", fmt.Appendf(nil, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: %q\n", version)); err != nil {
			t.Fatal(err)
		}
		b, err := bundles.Pack(tree, bundles.Metadata{Name: "keyless", Version: version, Created: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := registry.ParseReference("oci://" + repo + ":" + version)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Publish(ctx, b, ref, registry.PublishOptions{Signer: signer, SignatureFormat: registry.FormatSigstoreBundle}); err != nil {
			t.Fatalf("publishing %s: %v", ref, err)
		}
	}
	keyless := func(identity string) *sign.KeylessSigner {
		tok, err := vs.Token(identity)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sign.NewKeylessSigner(vs.SignerOptions(tok))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	publish("1.0.0", key)
	publish("2.0.0", keyless(releaseIdentity))
	publish("3.0.0", keyless("https://github.com/evil/platform/.github/workflows/release.yml@refs/heads/main"))

	matchRelease := []map[string]any{{
		"issuer":  "^" + regexp.QuoteMeta(testsigstore.Issuer) + "$",
		"subject": `^https://github\.com/acme/platform/\.github/workflows/release\.yml@refs/tags/v`,
	}}
	for _, tc := range []struct {
		name, version string
		verify        map[string]any
		want          string // SourceVerified status
	}{
		{"key", "1.0.0", map[string]any{"provider": "cosign", "secretRef": map[string]any{"name": "cosign-pub"}}, "True"},
		{"keyless", "2.0.0", map[string]any{"provider": "cosign", "matchOIDCIdentity": matchRelease, "trustedRootSecretRef": map[string]any{"name": "sigstore-root"}}, "True"},
		{"keyless-other-identity", "3.0.0", map[string]any{"provider": "cosign", "matchOIDCIdentity": matchRelease, "trustedRootSecretRef": map[string]any{"name": "sigstore-root"}}, "False"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := map[string]any{
				"apiVersion": "source.toolkit.fluxcd.io/v1",
				"kind":       "OCIRepository",
				"metadata":   map[string]any{"name": tc.name, "namespace": testcluster.FluxNamespace},
				"spec": map[string]any{
					"interval": "1m",
					"url":      "oci://" + repo,
					"ref":      map[string]any{"tag": tc.version},
					"insecure": true,
					"verify":   tc.verify,
				},
			}
			if _, err := c.KubectlStdin(ctx, mustJSON(t, obj), "apply", "--server-side", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			name := "ocirepository/" + tc.name
			var last string
			poll(t, ctx, 3*time.Minute, fmt.Sprintf("%s SourceVerified=%s", name, tc.want), func() error {
				last = getField(t, c, testcluster.FluxNamespace, name, `{.status.conditions[?(@.type=="SourceVerified")].status}|{.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="SourceVerified")].message}`)
				if len(last) >= len(tc.want) && last[:len(tc.want)+1] == tc.want+"|" {
					return nil
				}
				return fmt.Errorf("SourceVerified|Ready reason|message = %q", last)
			})
			art := getField(t, c, testcluster.FluxNamespace, name, "{.status.artifact.revision}")
			switch {
			case tc.want == "True" && art == "":
				t.Errorf("%s verified but has no artifact: %s", name, last)
			case tc.want == "False" && art != "":
				t.Errorf("%s has an artifact %s from a bundle it refused", name, art)
			}
			t.Logf("%s: %s", name, last)
		})
	}
}
