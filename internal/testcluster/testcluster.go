// Package testcluster runs a real Kubernetes control plane on 127.0.0.1 for
// tests: etcd and kube-apiserver built from the pinned tools/ modules
// (tools/etcd, tools/kube-apiserver), with certificates made for each
// cluster, free ports and temporary directories, stopped when the cluster
// is. On top of it, the real GitOps engines can be started: the Flux
// source-controller and kustomize-controller (StartFlux).
//
// There is no kubelet, no scheduler and no controller manager: nothing runs
// a container or pulls an image, and Deployments, Jobs and Pods keep an
// empty status. Where a test needs workloads to look healthy, as Flux's
// health checks and Argo CD's health assessment do, it starts the status
// simulator (internal/statussim), which writes the status a kubelet and the
// workload controllers would: that is a simulation, said so in every test
// that uses it.
//
// The ServiceAccount admission plugin is off: with no controller manager,
// no namespace gets its default ServiceAccount, and every Pod would be
// refused for it.
//
// Cold builds of the tools on 2 busy cores (Go 1.26.8, `make tools`):
// kube-apiserver and kubectl about 13 min each, etcd 4 min, the Flux
// controllers 6 and 3.5 min, Argo CD 10 min (see tools/README.md).
package testcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/galley-dev/galley/internal/statussim"
	"github.com/galley-dev/galley/internal/testtools"
)

// startTimeout bounds how long one server may take to become ready. It is
// generous: the machine may be busy compiling.
const startTimeout = 3 * time.Minute

// Cluster is a running control plane.
type Cluster struct {
	dir        string
	server     string // https://127.0.0.1:<port>
	kubeconfig string
	pki        *pki
	kubectl    string

	mu         sync.Mutex
	procs      []*process // in start order; stopped in reverse
	simulating bool
}

// Start starts a cluster for the test and stops it when the test ends. The
// tools must be installed (`make tools`); the test fails if one is not.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := New(t.TempDir())
	if err != nil {
		t.Fatalf("starting cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs(40))
		}
		c.Stop()
	})
	return c
}

// New starts a cluster with its files under dir, for callers that share
// one cluster between tests (a TestMain); they must call Stop.
func New(dir string) (*Cluster, error) {
	etcdBin, err := testtools.Lookup("etcd")
	if err != nil {
		return nil, err
	}
	apiBin, err := testtools.Lookup("kube-apiserver")
	if err != nil {
		return nil, err
	}
	kubectl, err := testtools.Lookup("kubectl")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, kubectl: kubectl}
	if err := c.start(etcdBin, apiBin); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(etcdBin, apiBin string) error {
	pkiDir := filepath.Join(c.dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", pkiDir, err)
	}
	var err error
	if c.pki, err = makePKI(pkiDir); err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcd, err := c.run("etcd", etcdBin, nil,
		"--name=galley-test",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdClient,
		"--advertise-client-urls="+etcdClient,
		"--listen-peer-urls="+etcdPeer,
		"--initial-advertise-peer-urls="+etcdPeer,
		"--initial-cluster=galley-test="+etcdPeer,
		// A test cluster's data dies with it: no fsync, a small quota.
		"--unsafe-no-fsync",
		"--quota-backend-bytes=1073741824",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	httpc := &http.Client{Timeout: 5 * time.Second}
	if err := etcd.waitFor(func() error { return get(httpc, etcdClient+"/health") }); err != nil {
		return err
	}

	c.server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	api, err := c.run("kube-apiserver", apiBin, nil,
		"--etcd-servers="+etcdClient,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(c.dir, "apiserver-certs"),
		"--tls-cert-file="+c.pki.serverCert,
		"--tls-private-key-file="+c.pki.server,
		"--client-ca-file="+c.pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+c.pki.saPub,
		"--service-account-signing-key-file="+c.pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// No Endpoints for the kubernetes Service: 127.0.0.1 is not a
		// valid endpoint address, and nothing here routes to it anyway.
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
		"--v=0",
	)
	if err != nil {
		return err
	}
	adminTLS, err := c.clientTLS()
	if err != nil {
		return err
	}
	apic := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: adminTLS}}
	if err := api.waitFor(func() error { return get(apic, c.server+"/readyz") }); err != nil {
		return err
	}
	return c.writeKubeconfig()
}

// run starts a server of the cluster, logging to <dir>/<name>.log.
func (c *Cluster) run(name, bin string, env []string, args ...string) (*process, error) {
	p, err := startProcess(name, bin, filepath.Join(c.dir, name+".log"), args, environ(env...))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// Stop stops every server, the last started first. It is safe to call more
// than once.
func (c *Cluster) Stop() {
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
}

// Server returns the API server's URL, https://127.0.0.1:<port>.
func (c *Cluster) Server() string { return c.server }

// Kubeconfig returns the path of a kubeconfig for a system:masters user.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// Dir returns the directory holding the cluster's files and logs.
func (c *Cluster) Dir() string { return c.dir }

// Logs returns the last n lines of every server's log, for a failed test.
func (c *Cluster) Logs(n int) string {
	c.mu.Lock()
	procs := c.procs
	c.mu.Unlock()
	var b strings.Builder
	for _, p := range procs {
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", p.name, p.logPath, tail(p.logPath, n))
	}
	return b.String()
}

// Kubectl runs the pinned kubectl against the cluster and returns its
// standard output; the error carries its standard error.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.KubectlStdin(ctx, nil, args...)
}

// KubectlStdin is Kubectl with data on standard input (for `-f -`).
func (c *Cluster) KubectlStdin(ctx context.Context, stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig=" + c.kubeconfig}, args...)...)
	cmd.Env = environ()
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// clientTLS is the admin's TLS configuration.
func (c *Cluster) clientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.pki.adminCert, c.pki.adminKey)
	if err != nil {
		return nil, fmt.Errorf("loading admin cert: %w", err)
	}
	caPEM, err := os.ReadFile(c.pki.caCert)
	if err != nil {
		return nil, fmt.Errorf("reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in the cluster CA file")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// writeKubeconfig writes the admin's kubeconfig. It is JSON, which every
// kubeconfig reader accepts, so no YAML quoting can go wrong.
func (c *Cluster) writeKubeconfig() error {
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	cfg := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": "galley-test",
		"clusters": []any{map[string]any{"name": "galley-test", "cluster": map[string]any{
			"server": c.server, "certificate-authority": c.pki.caCert,
		}}},
		"users": []any{map[string]any{"name": "admin", "user": map[string]any{
			"client-certificate": c.pki.adminCert, "client-key": c.pki.adminKey,
		}}},
		"contexts": []any{map[string]any{"name": "galley-test", "context": map[string]any{
			"cluster": "galley-test", "user": "admin",
		}}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.kubeconfig, b, 0o600); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// RESTConfig returns a client configuration for the admin user.
func (c *Cluster) RESTConfig() (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.kubeconfig, err)
	}
	return cfg, nil
}

// SimulateStatus starts the status simulator (internal/statussim) until the
// cluster stops: from then on workloads look ready and Jobs complete,
// though nothing runs. Its errors go to statussim.log in Dir and to Logs.
// Calling it again does nothing.
func (c *Cluster) SimulateStatus() error {
	c.mu.Lock()
	running := c.simulating
	c.simulating = true
	c.mu.Unlock()
	if running {
		return nil
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return err
	}
	sim, err := statussim.New(cfg)
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "statussim.log")
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{name: "status simulator", logPath: logPath, exited: make(chan struct{})}
	p.stopFn = cancel
	go func() {
		defer close(p.exited)
		for ctx.Err() == nil {
			if err := sim.Run(ctx, 250*time.Millisecond); err != nil {
				// Keep going: a refused write is reported, and the
				// objects it did not mark make the waiting test fail.
				appendLog(logPath, err.Error())
				time.Sleep(time.Second)
			}
		}
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}
