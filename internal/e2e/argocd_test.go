package e2e

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/testcluster"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// argoTimeout bounds each wait for Argo CD. It is a bound, not a speed
// target: on 2 cores shared with other builds, the first sync of
// kube-prometheus-stack alone (its PreSync admission hooks, then CRDs of
// 600+ KB) took over 10 minutes.
const argoTimeout = 15 * time.Minute

// TestArgoCD deploys the reference platform with the real Argo CD from the
// real registry: argocd/root.yaml applied once, the app-of-apps syncs every
// child in wave order to Synced and Healthy, among them Airflow (a
// post-install migration hook) and kube-prometheus-stack (CRDs over
// 256 KiB); then the next version rolls out.
//
// It has a cluster of its own: the Flux test deploys the same stack into
// the same namespaces. Workloads are marked healthy by the status
// simulator (internal/statussim): a hook whose consumers wait for it in an
// init container would block a real cluster, and cannot here.
func TestArgoCD(t *testing.T) {
	c := testcluster.Start(t)
	ctx := t.Context()
	if err := c.StartArgoCD(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SimulateStatus(); err != nil {
		t.Fatal(err)
	}
	reg := testregistry.Start(t)
	repo := "oci://" + reg.Ref("platform/reference-platform")
	client := registry.New(registry.Options{PlainHTTP: true})
	if err := c.AddArgoCDRepository(ctx, "reference-platform", repo); err != nil {
		t.Fatal(err)
	}

	s := argoStack(t, repo)
	v1 := compile(t, s)
	push(t, client, reg, v1, nil)
	applyArgoRoot(t, c, v1)
	waitArgoSynced(t, c, v1)
	checkWaveOrder(t, c, v1)
	checkObjectsExist(t, c, v1, notDeletedHook)

	s2 := argoStack(t, repo)
	s2.Version = nextPatch(t, s.Version)
	setValue(t, s2, "metabase", 3, "replicaCount")
	setValue(t, s2, "airflow", map[string]any{"galley.dev/e2e-release": s2.Version}, "migrateDatabaseJob", "annotations")
	v2 := compile(t, s2)
	push(t, client, reg, v2, nil)
	applyArgoRoot(t, c, v2)
	waitArgoSynced(t, c, v2)
	checkObjectsExist(t, c, v2, notDeletedHook)
	metabase := findObjects(t, v2, func(o object) bool {
		return o.kind() == "Deployment" && strings.Contains(o.file, "/metabase/")
	})
	if len(metabase) != 1 {
		t.Fatalf("the bundle has %d Metabase Deployments, want 1", len(metabase))
	}
	ns := namespaceOf(metabase[0], namespaces(t, v2.Tree))
	poll(t, ctx, argoTimeout, "metabase scaled to 3 by the next version", func() error {
		if got := getField(t, c, ns, "deployment/"+metabase[0].meta("name"), "{.spec.replicas}"); got != "3" {
			return fmt.Errorf("replicas = %q", got)
		}
		return nil
	})
}

// notDeletedHook selects the objects Argo CD keeps after a successful
// sync: all but hooks with the HookSucceeded delete policy (from the
// chart's hook-succeeded, as Helm deletes them), which Argo CD deletes
// once they succeed. waitArgoSynced holds those to a successful sync.
func notDeletedHook(o object) bool {
	m, _ := o.doc["metadata"].(map[string]any)
	ann, _ := m["annotations"].(map[string]any)
	if _, hook := ann["argocd.argoproj.io/hook"]; !hook {
		return true
	}
	policy, _ := ann["argocd.argoproj.io/hook-delete-policy"].(string)
	return !strings.Contains(policy, "HookSucceeded")
}

func argoStack(t *testing.T, repo string) *stack.Stack {
	t.Helper()
	s := loadStack(t, referencePlatform)
	if s.Delivery.ArgoCD == nil {
		t.Fatalf("%s has no Argo CD delivery", referencePlatform)
	}
	s.Delivery.ArgoCD.Repository = repo
	if s.Delivery.Flux != nil {
		s.Delivery.Flux.Repository = repo
	}
	return s
}

// argoApps returns the Applications of the bundle: argocd/root.yaml and
// what it deploys.
func argoApps(t *testing.T, res *compiler.Result) []object {
	t.Helper()
	var apps []object
	for _, o := range objects(t, res.Tree, "argocd") {
		if o.kind() == "Application" {
			apps = append(apps, o)
		}
	}
	if len(apps) < 2 {
		t.Fatalf("the bundle has %d Applications, want a root and its children", len(apps))
	}
	return apps
}

func applyArgoRoot(t *testing.T, c *testcluster.Cluster, res *compiler.Result) {
	t.Helper()
	var root []object
	for _, o := range objects(t, res.Tree, "argocd") {
		if o.file == "argocd/root.yaml" {
			root = append(root, o)
		}
	}
	if len(root) == 0 {
		t.Fatal("the bundle has no argocd/root.yaml")
	}
	if _, err := c.KubectlStdin(t.Context(), marshalAll(t, root), "apply", "-n", testcluster.ArgoCDNamespace, "-f", "-"); err != nil {
		t.Fatalf("applying argocd/root.yaml: %v", err)
	}
}

// waitArgoSynced waits until every Application of the bundle is Synced
// and Healthy at the bundle's version.
func waitArgoSynced(t *testing.T, c *testcluster.Cluster, res *compiler.Result) {
	t.Helper()
	apps := argoApps(t, res)
	start := time.Now()
	poll(t, t.Context(), argoTimeout, "every Application Synced and Healthy at "+res.Stack.Version, func() error {
		var bad []string
		for _, a := range apps {
			ns := a.meta("namespace")
			if ns == "" {
				ns = testcluster.ArgoCDNamespace
			}
			st := getField(t, c, ns, "application/"+a.meta("name"),
				`{.status.sync.status}/{.status.health.status}|{.spec.source.targetRevision}|{.status.operationState.phase}: {.status.operationState.message}{.status.conditions[*].message} {range .status.resources[?(@.status=="OutOfSync")]}[OutOfSync {.kind} {.namespace}/{.name}]{end}`)
			parts := strings.SplitN(st, "|", 3)
			want := fmt.Sprint(a.doc["spec"].(map[string]any)["source"].(map[string]any)["targetRevision"])
			// The last sync must have succeeded too: a hook that
			// failed fails it, so this is where hooks that Argo CD
			// deletes on success are seen to have run.
			if len(parts) != 3 || parts[0] != "Synced/Healthy" || parts[1] != want || !strings.HasPrefix(parts[2], "Succeeded:") {
				bad = append(bad, fmt.Sprintf("%s: %s", a.meta("name"), st))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("%d of %d not Synced/Healthy:\n%s", len(bad), len(apps), strings.Join(bad, "\n"))
		}
		return nil
	})
	t.Logf("Argo CD synced %s: %d Applications Synced/Healthy in %v", res.Stack.Version, len(apps), time.Since(start).Round(time.Second))
}

// checkWaveOrder checks that the root created the Applications wave by
// wave: none of a wave before any of an earlier wave. (Argo CD moves to
// the next wave once the earlier one is Healthy, which with the simulator
// can come before a child's own sync operation has ended, so the creation
// order is what the test can hold it to.) Argo CD waits at least 2s between
// waves (ARGOCD_SYNC_WAVE_DELAY), more than the timestamps' 1s.
func checkWaveOrder(t *testing.T, c *testcluster.Cluster, res *compiler.Result) {
	t.Helper()
	type app struct {
		name    string
		wave    int
		created time.Time
	}
	var apps []app
	for _, a := range argoApps(t, res) {
		if a.file == "argocd/root.yaml" {
			continue
		}
		m, _ := a.doc["metadata"].(map[string]any)
		ann, _ := m["annotations"].(map[string]any)
		wave, _ := strconv.Atoi(fmt.Sprint(ann["argocd.argoproj.io/sync-wave"]))
		st := getField(t, c, testcluster.ArgoCDNamespace, "application/"+a.meta("name"), "{.metadata.creationTimestamp}")
		ct, err := time.Parse(time.RFC3339, st)
		if err != nil {
			t.Errorf("Application %s: creationTimestamp %q", a.meta("name"), st)
			continue
		}
		apps = append(apps, app{a.meta("name"), wave, ct})
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].wave < apps[j].wave })
	for _, later := range apps {
		for _, earlier := range apps {
			if earlier.wave < later.wave && !later.created.After(earlier.created) {
				t.Errorf("%s (wave %d) was created at %s, not after %s (wave %d) at %s",
					later.name, later.wave, later.created, earlier.name, earlier.wave, earlier.created)
			}
		}
	}
}
