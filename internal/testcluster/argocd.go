package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	galleyargocd "github.com/galley-dev/galley/compiler/argocd"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/galley-dev/galley/internal/testtools"
)

// ArgoCDNamespace is where StartArgoCD runs Argo CD, as its install
// manifests do.
const ArgoCDNamespace = "argocd"

// StartArgoCD installs Argo CD's CRDs and configuration in ArgoCDNamespace
// and starts the real repo server and application controller (one argocd
// binary, ARGOCD_BINARY_NAME) with miniredis as their cache. The
// in-cluster destination (https://kubernetes.default.svc) is this cluster
// (ARGOCD_FAKE_IN_CLUSTER with the admin kubeconfig).
//
// Listeners: miniredis and the repo server (gRPC and metrics) are on
// 127.0.0.1. The application controller's metrics server has no address
// flag in v3.2.11 (controller/appcontroller.go listens on
// "0.0.0.0:<metrics-port>"): it is the one listener of the harness on all
// interfaces, on a random free port, for the length of the test.
func (c *Cluster) StartArgoCD(ctx context.Context) error {
	argocd, err := testtools.Lookup("argocd")
	if err != nil {
		return err
	}
	redis, err := testtools.Lookup("miniredis")
	if err != nil {
		return err
	}
	if err := c.InstallArgoCDCRDs(ctx); err != nil {
		return err
	}
	if err := c.ensureNamespace(ctx, ArgoCDNamespace); err != nil {
		return err
	}
	part := map[string]string{"app.kubernetes.io/part-of": "argocd"}
	cm := func(name string, data map[string]string) map[string]any {
		return map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name, "namespace": ArgoCDNamespace, "labels": part},
			"data":     data,
		}
	}
	objs := []any{
		cm("argocd-cm", map[string]string{
			// The health check for Applications that galley documents for
			// app-of-apps with sync waves (Argo CD 1.8 removed it).
			galleyargocd.HealthCheckKey: galleyargocd.HealthCheckLua,
			// Children are checked often, so a test does not wait for the
			// default 3 minutes between reconciliations.
			"timeout.reconciliation": "15s",
		}),
		cm("argocd-rbac-cm", map[string]string{}),
		cm("argocd-cmd-params-cm", map[string]string{}),
		map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata":   map[string]any{"name": "argocd-secret", "namespace": ArgoCDNamespace, "labels": part},
			"stringData": map[string]string{"server.secretkey": "galley-testcluster-not-a-secret"},
		},
		// argocd-server creates the "default" project when it starts (as
		// every install has it); the harness runs no server, so it creates
		// the project as the server would. The root Application of a
		// bundle lives in it.
		map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
			"metadata": map[string]any{"name": "default", "namespace": ArgoCDNamespace},
			"spec": map[string]any{
				"sourceRepos":              []string{"*"},
				"destinations":             []any{map[string]string{"server": "*", "namespace": "*"}},
				"clusterResourceWhitelist": []any{map[string]string{"group": "*", "kind": "*"}},
			},
		},
	}
	if err := c.applyJSON(ctx, objs...); err != nil {
		return fmt.Errorf("configuring Argo CD: %w", err)
	}

	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	loop := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	httpc := &http.Client{Timeout: 5 * time.Second}

	if _, err := c.run("miniredis", redis, nil, "-addr="+loop(ports[0])); err != nil {
		return err
	}
	home := filepath.Join(c.dir, "argocd-home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", home, err)
	}
	env := []string{
		"KUBECONFIG=" + c.kubeconfig,
		"HOME=" + home,
		"ARGOCD_FAKE_IN_CLUSTER=true",
		"ARGOCD_GPG_ENABLED=false",
		"ARGOCD_NAMESPACE=" + ArgoCDNamespace,
		"OTEL_SDK_DISABLED=true",
	}
	repo, err := c.run("argocd-repo-server", argocd, append(env, "ARGOCD_BINARY_NAME=argocd-repo-server"),
		"--address=127.0.0.1",
		"--port="+strconv.Itoa(ports[1]),
		"--metrics-address=127.0.0.1",
		"--metrics-port="+strconv.Itoa(ports[2]),
		"--disable-tls",
		"--redis="+loop(ports[0]),
		"--loglevel=info",
	)
	if err != nil {
		return err
	}
	if err := repo.waitFor(func() error { return get(httpc, "http://"+loop(ports[2])+"/healthz") }); err != nil {
		return err
	}
	ctrl, err := c.run("argocd-application-controller", argocd, append(env, "ARGOCD_BINARY_NAME=argocd-application-controller"),
		"--namespace="+ArgoCDNamespace,
		"--repo-server="+loop(ports[1]),
		"--repo-server-plaintext",
		"--redis="+loop(ports[0]),
		"--metrics-port="+strconv.Itoa(ports[3]),
		"--status-processors=4",
		"--operation-processors=4",
		"--app-resync=30",
		"--self-heal-timeout-seconds=2",
		"--loglevel=info",
	)
	if err != nil {
		return err
	}
	return ctrl.waitFor(func() error { return get(httpc, "http://"+loop(ports[3])+"/healthz") })
}

// AddArgoCDRepository registers an OCI repository with Argo CD, over plain
// HTTP: the test registry has no TLS.
func (c *Cluster) AddArgoCDRepository(ctx context.Context, name, url string) error {
	return c.applyJSON(ctx, map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{
			"name": name, "namespace": ArgoCDNamespace,
			"labels": map[string]string{"argocd.argoproj.io/secret-type": "repository"},
		},
		"stringData": map[string]string{
			"type": "oci", "name": name, "url": url, "insecureOCIForceHttp": "true",
		},
	})
}

// applyJSON applies objects server-side, sent as YAML documents of JSON
// (valid YAML), which kubectl reads as a stream.
func (c *Cluster) applyJSON(ctx context.Context, objs ...any) error {
	var data []byte
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		data = append(append(append(data, "---\n"...), b...), '\n')
	}
	_, err := c.KubectlStdin(ctx, data, "apply", "--server-side", "--force-conflicts", "--field-manager=galley-testcluster", "-f", "-")
	return err
}
