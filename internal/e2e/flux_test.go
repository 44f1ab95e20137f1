package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/testcluster"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// referencePlatform is the stack Flux and Argo CD deploy: the real
// upstream charts, with a migration hook (Airflow) and CRDs over 256 KiB
// (kube-prometheus-stack).
const referencePlatform = "../../testdata/stacks/reference-platform"

// fluxTimeout bounds each wait for Flux. Flux retries a failed apply at
// the Kustomization's retryInterval; a bundle that cannot deploy fails
// with the controllers' own conditions in the message.
const fluxTimeout = 8 * time.Minute

const verifySecret = "cosign-pub"

// TestFlux deploys the reference platform with the real Flux controllers
// from the real registry: a signed bundle, flux/root applied once, every
// Kustomization Ready and every object of apps/ in the API server; then the
// next version, with a changed chart value and a changed hook Job, rolls
// out; and bundles that are unsigned or signed with another key are
// refused by the OCIRepository.
//
// Workloads are marked ready by the status simulator (internal/statussim):
// no kubelet runs here, so Flux's health checks pass on simulated status,
// not on running containers.
func TestFlux(t *testing.T) {
	c := cluster(t)
	ctx := t.Context()
	if err := c.StartFlux(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SimulateStatus(); err != nil {
		t.Fatal(err)
	}
	if err := c.InstallCRDs(ctx, kubePrometheusCRDs); err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t)
	repo := "oci://" + reg.Ref("platform/reference-platform")
	client := registry.New(registry.Options{PlainHTTP: true})
	key, pubPEM := newKey(t)
	other, _ := newKey(t)

	if _, err := c.KubectlStdin(ctx, secretYAML(verifySecret, testcluster.FluxNamespace, "cosign.pub", pubPEM), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatal(err)
	}

	// v1: signed, applied once through flux/root.
	s := fluxStack(t, repo)
	v1 := compile(t, s)
	push(t, client, reg, v1, key)
	applyFluxRoot(t, c, v1)
	waitFluxApplied(t, c, v1, s.Version)
	checkAppsExist(t, c, v1)

	// v2: a chart value (Metabase's replicas) and a Helm hook Job
	// (Airflow's migration Job's pod template) change. Moving the root
	// OCIRepository to the new tag is the user's one change.
	s2 := fluxStack(t, repo)
	s2.Version = nextPatch(t, s.Version)
	setValue(t, s2, "metabase", 3, "replicaCount")
	setValue(t, s2, "airflow", map[string]any{"galley.dev/e2e-release": s2.Version}, "migrateDatabaseJob", "annotations")
	v2 := compile(t, s2)
	if v1.Bundle.Digest() == v2.Bundle.Digest() {
		t.Fatal("the next version compiled to the same bundle")
	}
	push(t, client, reg, v2, key)
	applyFluxRoot(t, c, v2)
	waitFluxApplied(t, c, v2, s2.Version)
	checkAppsExist(t, c, v2)
	metabase := findObjects(t, v2, func(o object) bool {
		return o.kind() == "Deployment" && strings.Contains(o.file, "/metabase/")
	})
	if len(metabase) != 1 {
		t.Fatalf("the bundle has %d Metabase Deployments, want 1", len(metabase))
	}
	mbNS := namespaceOf(metabase[0], namespaces(t, v2.Tree))
	if got := getField(t, c, mbNS, "deployment/"+metabase[0].meta("name"), "{.spec.replicas}"); got != "3" {
		t.Errorf("%s replicas after the rollout = %q, want 3", metabase[0], got)
	}
	hookJobs := findObjects(t, v2, func(o object) bool {
		return o.kind() == "Job" && strings.Contains(o.file, "airflow") && strings.Contains(string(mustJSON(t, o.doc)), "galley.dev/e2e-release")
	})
	if len(hookJobs) == 0 {
		t.Fatal("the next version has no Airflow Job carrying the changed annotation: the hook Job did not change")
	}
	for _, o := range hookJobs {
		ns := namespaceOf(o, namespaces(t, v2.Tree))
		got := getField(t, c, ns, "job/"+o.meta("name"), `{.spec.template.metadata.annotations.galley\.dev/e2e-release}`)
		if got != s2.Version {
			t.Errorf("hook %s after the rollout: annotation = %q, want %q", o, got, s2.Version)
		}
	}

	// Unsigned and wrongly signed: a second OCIRepository like the root
	// one, pointed at each, must refuse it and never produce an artifact.
	s3 := fluxStack(t, repo)
	s3.Version = nextPatch(t, s2.Version)
	unsigned := compile(t, s3)
	push(t, client, reg, unsigned, nil)
	s4 := fluxStack(t, repo)
	s4.Version = nextPatch(t, s3.Version)
	wrong := compile(t, s4)
	push(t, client, reg, wrong, other)
	for _, tc := range []struct{ name, version string }{
		{"unsigned", s3.Version},
		{"wrong-key", s4.Version},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repoObj := rootOCIRepository(t, v2)
			meta := repoObj["metadata"].(map[string]any)
			meta["name"] = "refused-" + tc.name
			spec := repoObj["spec"].(map[string]any)
			spec["ref"] = map[string]any{"tag": tc.version}
			if _, err := c.KubectlStdin(ctx, mustJSON(t, repoObj), "apply", "--server-side", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			name := "ocirepository/refused-" + tc.name
			poll(t, ctx, fluxTimeout, name+" refuses the bundle", func() error {
				reason := getField(t, c, testcluster.FluxNamespace, name, `{.status.conditions[?(@.type=="SourceVerified")].status}/{.status.conditions[?(@.type=="Ready")].reason}`)
				if reason == "False/VerificationError" {
					return nil
				}
				return fmt.Errorf("SourceVerified/Ready reason = %q, want False/VerificationError", reason)
			})
			if art := getField(t, c, testcluster.FluxNamespace, name, "{.status.artifact.revision}"); art != "" {
				t.Errorf("%s has an artifact %s from a bundle it refused", name, art)
			}
		})
	}
}

// fluxStack loads the reference platform for the test registry: Flux pulls
// from repo and checks signatures against the verify Secret.
func fluxStack(t *testing.T, repo string) *stack.Stack {
	t.Helper()
	s := loadStack(t, referencePlatform)
	if s.Delivery.Flux == nil {
		t.Fatalf("%s has no Flux delivery", referencePlatform)
	}
	s.Delivery.Flux.Repository = repo
	s.Delivery.Flux.Verify = &stack.FluxVerify{Provider: "cosign", SecretRef: verifySecret}
	// Short enough that a retried apply comes within the test's waits.
	s.Delivery.Flux.Interval = "1m"
	if s.Delivery.ArgoCD != nil {
		s.Delivery.ArgoCD.Repository = repo
	}
	return s
}

func newKey(t *testing.T) (signature.SignerVerifier, []byte) {
	t.Helper()
	pw := func(bool) ([]byte, error) { return []byte("e2e"), nil }
	priv, pub, err := sign.GenerateKeyPair(pw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.ParsePrivateKey(priv, []byte("e2e"), "e2e key")
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// push pushes the bundle under its version and signs it with key (nil:
// unsigned).
func push(t *testing.T, client *registry.Client, reg *testregistry.Registry, res *compiler.Result, key signature.SignerVerifier) {
	t.Helper()
	ref, err := registry.ParseReference("oci://" + reg.Ref("platform/"+res.Stack.Name+":"+res.Stack.Version))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(t.Context(), res.Bundle, ref); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	if key != nil {
		if _, err := client.Sign(t.Context(), ref, res.Bundle.Digest(), key); err != nil {
			t.Fatalf("signing %s: %v", ref, err)
		}
	}
}

// rootOCIRepository returns flux/root's OCIRepository, made to pull over
// plain HTTP: the test registry has no TLS, which a real registry would.
func rootOCIRepository(t *testing.T, res *compiler.Result) map[string]any {
	t.Helper()
	for _, o := range objects(t, res.Tree, "flux") {
		if o.kind() == "OCIRepository" && strings.HasPrefix(o.file, "flux/root/") {
			o.doc["spec"].(map[string]any)["insecure"] = true
			return o.doc
		}
	}
	t.Fatal("flux/root has no OCIRepository")
	return nil
}

// applyFluxRoot applies flux/root as the user does, once per version.
func applyFluxRoot(t *testing.T, c *testcluster.Cluster, res *compiler.Result) {
	t.Helper()
	var root []object
	for _, o := range objects(t, res.Tree, "flux") {
		if strings.HasPrefix(o.file, "flux/root/") {
			if o.kind() == "OCIRepository" {
				o.doc = rootOCIRepository(t, res)
			}
			root = append(root, o)
		}
	}
	if len(root) == 0 {
		t.Fatal("the bundle has no flux/root objects")
	}
	if _, err := c.KubectlStdin(t.Context(), marshalAll(t, root), "apply", "--server-side", "--force-conflicts", "-f", "-"); err != nil {
		t.Fatalf("applying flux/root: %v", err)
	}
}

// waitFluxApplied waits until every Kustomization of the bundle is Ready at
// the given version.
func waitFluxApplied(t *testing.T, c *testcluster.Cluster, res *compiler.Result, version string) {
	t.Helper()
	var names []string
	for _, o := range objects(t, res.Tree, "flux") {
		if o.kind() == "Kustomization" {
			names = append(names, o.meta("name"))
		}
	}
	if len(names) == 0 {
		t.Fatal("the bundle has no Kustomization")
	}
	start := time.Now()
	poll(t, t.Context(), fluxTimeout, fmt.Sprintf("every Kustomization Ready at %s", version), func() error {
		var bad []string
		for _, n := range names {
			st := getField(t, c, testcluster.FluxNamespace, "kustomization/"+n,
				`{.status.conditions[?(@.type=="Ready")].status}|{.status.lastAppliedRevision}|{.status.conditions[?(@.type=="Ready")].message}`)
			parts := strings.SplitN(st, "|", 3)
			if len(parts) != 3 || parts[0] != "True" || !strings.HasPrefix(parts[1], version+"@") {
				bad = append(bad, fmt.Sprintf("%s: %s", n, st))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%d of %d not ready:\n%s", len(bad), len(names), strings.Join(bad, "\n"))
		}
		return nil
	})
	t.Logf("Flux applied %s: %d Kustomizations Ready in %v", version, len(names), time.Since(start).Round(time.Second))
}

// checkAppsExist checks that every object of apps/ is in the API server.
func checkAppsExist(t *testing.T, c *testcluster.Cluster, res *compiler.Result) {
	t.Helper()
	checkObjectsExist(t, c, res, func(object) bool { return true })
}

// checkObjectsExist checks that the objects of apps/ that keep selects are
// in the API server.
func checkObjectsExist(t *testing.T, c *testcluster.Cluster, res *compiler.Result, keep func(object) bool) {
	t.Helper()
	dirs := namespaces(t, res.Tree)
	byNS := map[string][]object{}
	n := 0
	for _, o := range objects(t, res.Tree, "apps") {
		if !keep(o) {
			continue
		}
		byNS[namespaceOf(o, dirs)] = append(byNS[namespaceOf(o, dirs)], o)
		n++
	}
	for ns, objs := range byNS {
		args := []string{"get", "-o", "name", "-f", "-"}
		if ns != "" {
			args = append(args, "-n", ns)
		}
		if _, err := c.KubectlStdin(t.Context(), marshalAll(t, objs), args...); err != nil {
			t.Errorf("objects of apps/ missing in namespace %q: %v", ns, err)
		}
	}
	t.Logf("all %d objects of apps/ exist", n)
}

func findObjects(t *testing.T, res *compiler.Result, keep func(object) bool) []object {
	t.Helper()
	var out []object
	for _, o := range objects(t, res.Tree, "apps") {
		if keep(o) {
			out = append(out, o)
		}
	}
	return out
}

func getField(t *testing.T, c *testcluster.Cluster, ns, name, jp string) string {
	t.Helper()
	args := []string{"get", name, "-o", "jsonpath=" + jp}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, err := c.Kubectl(t.Context(), args...)
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(out)
}

// setValue sets a Helm value of an app of the loaded stack, as a values
// file of the next release would.
func setValue(t *testing.T, s *stack.Stack, app string, v any, keys ...string) {
	t.Helper()
	a := s.App(app)
	if a == nil {
		t.Fatalf("stack %s has no app %s", s.Name, app)
	}
	if a.Values == nil {
		a.Values = map[string]any{}
	}
	m := a.Values
	for _, k := range keys[:len(keys)-1] {
		next, _ := m[k].(map[string]any)
		if next == nil {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

func nextPatch(t *testing.T, v string) string {
	t.Helper()
	var major, minor, patch int
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatalf("version %q: %v", v, err)
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, patch+1)
}

func secretYAML(name, ns, key string, value []byte) []byte {
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"stringData": map[string]string{key: string(value)},
	})
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
