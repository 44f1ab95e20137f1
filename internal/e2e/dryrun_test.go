package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// kubePrometheusCRDs are the prometheus-operator CRDs of the upstream
// kube-prometheus-stack chart: what a cluster that provides
// monitoring.coreos.com (a stack's kubernetes.apiVersions) has installed.
const kubePrometheusCRDs = "../../../shared/charts/kube-prometheus-stack/charts/crds/crds"

// TestServerSideDryRun sends every object of every example and testdata
// stack to a real kube-apiserver as a server-side apply dry run: the
// server's own validation (schemas of built-in kinds and of the CRDs,
// immutable and required fields, names) must accept all of them. CRDs go
// first, applied for real, as Argo CD and Flux apply them before what
// needs them; so do the namespaces the objects land in.
func TestServerSideDryRun(t *testing.T) {
	c := cluster(t)
	ctx := t.Context()
	// The delivery objects need the engines' CRDs; the APIs a stack
	// declares the cluster provides are installed as that cluster would
	// have them.
	if err := c.InstallFluxCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.InstallArgoCDCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	for _, dir := range stackDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			s := loadStack(t, dir)
			for _, api := range s.Kubernetes.APIVersions {
				if strings.HasPrefix(api, "monitoring.coreos.com/") {
					if err := c.InstallCRDs(ctx, kubePrometheusCRDs); err != nil {
						t.Fatal(err)
					}
				}
			}
			res := compile(t, s)
			dirs := namespaces(t, res.Tree)
			objs := objects(t, res.Tree, "apps", "monitoring", "argocd", "flux")
			if len(objs) == 0 {
				t.Fatal("the bundle has no objects")
			}

			// Real: CRDs and namespaces. Dry run: everything else, grouped
			// by the namespace kubectl applies it in.
			var crds []object
			byNS := map[string][]object{}
			nsSet := map[string]bool{}
			for _, o := range objs {
				switch o.kind() {
				case "CustomResourceDefinition":
					crds = append(crds, o)
					continue
				case "Namespace":
					nsSet[o.meta("name")] = true
				}
				ns := namespaceOf(o, dirs)
				if ns != "" {
					nsSet[ns] = true
				}
				byNS[ns] = append(byNS[ns], o)
			}
			if len(crds) > 0 {
				if _, err := c.KubectlStdin(ctx, marshalAll(t, crds), "apply", "--server-side", "--force-conflicts", "--field-manager=galley-e2e", "-f", "-"); err != nil {
					t.Fatalf("applying the bundle's %d CRDs: %v", len(crds), err)
				}
				if _, err := c.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=2m", "crd", "--all"); err != nil {
					t.Fatal(err)
				}
			}
			for ns := range nsSet {
				if err := c.EnsureNamespace(ctx, ns); err != nil {
					t.Fatal(err)
				}
			}
			accepted := len(crds)
			for ns, group := range byNS {
				args := []string{"apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=galley-e2e", "-o", "name", "-f", "-"}
				if ns != "" {
					args = append(args, "-n", ns)
				}
				out, err := c.KubectlStdin(ctx, marshalAll(t, group), args...)
				if err != nil {
					t.Errorf("namespace %q: the API server rejected objects of the bundle:\n%v", ns, err)
				}
				accepted += len(strings.Fields(out))
			}
			if accepted != len(objs) {
				t.Errorf("%d of %d objects accepted", accepted, len(objs))
			}
			t.Logf("%d objects accepted (%d CRDs applied, the rest as a server-side dry run)", accepted, len(crds))
		})
	}
}
