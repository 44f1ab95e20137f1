package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/galley-dev/galley/internal/testtools"
)

// FluxNamespace is where StartFlux runs Flux, as `flux install` does.
const FluxNamespace = "flux-system"

// StartFlux installs Flux's CRDs (from the pinned controller modules,
// config/crd/bases) and its namespace, and starts the real
// source-controller and kustomize-controller against the cluster. Every
// listener is on 127.0.0.1; the source-controller serves artifacts to the
// kustomize-controller on a loopback port.
func (c *Cluster) StartFlux(ctx context.Context) error {
	srcBin, err := testtools.Lookup("source-controller")
	if err != nil {
		return err
	}
	kusBin, err := testtools.Lookup("kustomize-controller")
	if err != nil {
		return err
	}
	if err := c.InstallFluxCRDs(ctx); err != nil {
		return err
	}
	if err := c.ensureNamespace(ctx, FluxNamespace); err != nil {
		return err
	}

	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	storage := filepath.Join(c.dir, "flux-storage")
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", storage, err)
	}
	env := []string{"KUBECONFIG=" + c.kubeconfig, "RUNTIME_NAMESPACE=" + FluxNamespace}
	loop := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	src, err := c.run("source-controller", srcBin, env,
		"--metrics-addr="+loop(ports[0]),
		"--health-addr="+loop(ports[1]),
		"--storage-path="+storage,
		"--storage-addr="+loop(ports[2]),
		"--storage-adv-addr="+loop(ports[2]),
		"--enable-leader-election=false",
		"--events-addr=",
		"--log-level=info",
	)
	if err != nil {
		return err
	}
	httpc := &http.Client{Timeout: 5 * time.Second}
	if err := src.waitFor(func() error { return get(httpc, "http://"+loop(ports[1])+"/readyz") }); err != nil {
		return err
	}
	kus, err := c.run("kustomize-controller", kusBin, env,
		"--metrics-addr="+loop(ports[3]),
		"--health-addr="+loop(ports[4]),
		"--enable-leader-election=false",
		"--events-addr=",
		"--log-level=info",
	)
	if err != nil {
		return err
	}
	return kus.waitFor(func() error { return get(httpc, "http://"+loop(ports[4])+"/readyz") })
}

// InstallFluxCRDs installs the CRDs of the pinned Flux controllers, from
// config/crd/bases of their modules, and waits until they are served.
func (c *Cluster) InstallFluxCRDs(ctx context.Context) error {
	for _, m := range []struct{ tool, module string }{
		{"source-controller", "github.com/fluxcd/source-controller"},
		{"kustomize-controller", "github.com/fluxcd/kustomize-controller"},
	} {
		dir, err := toolModuleDir(m.tool, m.module)
		if err != nil {
			return err
		}
		if err := c.InstallCRDs(ctx, filepath.Join(dir, "config", "crd", "bases")); err != nil {
			return fmt.Errorf("installing the CRDs of %s: %w", m.module, err)
		}
	}
	return nil
}

// InstallArgoCDCRDs installs the CRDs of the pinned Argo CD (Application,
// AppProject, ApplicationSet), from manifests/crds of its module.
func (c *Cluster) InstallArgoCDCRDs(ctx context.Context) error {
	dir, err := toolModuleDir("argocd", "github.com/argoproj/argo-cd/v3")
	if err != nil {
		return err
	}
	if err := c.InstallCRDs(ctx, filepath.Join(dir, "manifests", "crds")); err != nil {
		return fmt.Errorf("installing the CRDs of Argo CD: %w", err)
	}
	return nil
}

// InstallCRDs applies the CRD files in dir (server-side, as CRDs over
// 256 KiB need) and waits until every CRD of the cluster is established.
// Files that are not CRDs (a kustomization.yaml) are skipped.
func (c *Cluster) InstallCRDs(ctx context.Context, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading CRDs: %w", err)
	}
	var data []byte
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("reading CRDs: %w", err)
		}
		if !strings.Contains(string(b), "kind: CustomResourceDefinition") {
			continue
		}
		data = append(append(data, "\n---\n"...), b...)
	}
	if len(data) == 0 {
		return fmt.Errorf("no CRD in %s", dir)
	}
	if _, err := c.KubectlStdin(ctx, data, "apply", "--server-side", "--force-conflicts", "--field-manager=galley-testcluster", "-f", "-"); err != nil {
		return err
	}
	// kubectl wait fails at once, instead of waiting, on a CRD the API
	// server has not yet given any condition: retry until the deadline.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err = c.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=1m", "crd", "--all")
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// EnsureNamespace creates the namespace ns if it does not exist.
func (c *Cluster) EnsureNamespace(ctx context.Context, ns string) error {
	return c.ensureNamespace(ctx, ns)
}

func (c *Cluster) ensureNamespace(ctx context.Context, ns string) error {
	manifest := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns)
	_, err := c.KubectlStdin(ctx, []byte(manifest), "apply", "--server-side", "-f", "-")
	return err
}

// toolModuleDir returns the module cache directory of module at the version
// tools/<tool>/go.mod pins, downloading it if the cache was cleaned since
// the tool was built. The CRDs come from there rather than from a copy in
// this repository, so they always match the binary.
func toolModuleDir(tool, module string) (string, error) {
	src, err := testtools.SourceDir()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = filepath.Join(src, tool)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("finding %s in tools/%s: go mod download: %w", module, tool, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("reading go mod download output for %s: %w", module, err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("downloading %s for tools/%s: %s", module, tool, m.Error)
	}
	return m.Dir, nil
}
