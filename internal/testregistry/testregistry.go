// Package testregistry runs a real CNCF Distribution registry (the pinned
// tools/registry binary) on 127.0.0.1 for tests, so galley is checked
// against the server Argo CD and Flux users actually run, not an in-memory
// fake. Storage is a plain directory tests may inspect or tamper with.
//
// Distribution v3.1.2 has no OCI 1.1 referrers API: clients fall back to
// the referrers tag schema (a "sha256-<hex>" tag holding an index).
package testregistry

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/galley-dev/galley/internal/testtools"
)

// startTimeout bounds how long the registry may take to listen and answer.
// It is generous because the test machine may be busy compiling.
const startTimeout = 60 * time.Second

// Registry is a running registry process.
type Registry struct {
	host       string
	storageDir string
	logPath    string
	user, pass string

	cmd      *exec.Cmd
	exited   chan struct{} // closed once the process has exited and its output is drained
	stopOnce sync.Once
}

// Option configures Start.
type Option func(*config)

type config struct {
	user, pass string
}

// WithAuth requires HTTP basic auth with this one user (htpasswd, bcrypt).
func WithAuth(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// Start starts a registry for the test and stops it when the test ends. The
// registry binary must be installed (`make tools`); the test fails if not.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	bin := testtools.Path(t, "registry")
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	r, err := start(bin, t.TempDir(), cfg)
	if err != nil {
		t.Fatalf("starting registry: %v", err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("registry log (%s):\n%s", r.logPath, tail(r.logPath, 40))
		}
	})
	return r
}

// Host returns "127.0.0.1:<port>".
func (r *Registry) Host() string { return r.host }

// Ref returns the reference of repo (which may carry :tag or @digest) on this
// registry, e.g. "127.0.0.1:5000/team/app:v1".
func (r *Registry) Ref(repo string) string { return r.host + "/" + repo }

// StorageDir returns the registry's filesystem storage root.
func (r *Registry) StorageDir() string { return r.storageDir }

// BlobPath returns the file holding the blob with the given digest
// ("sha256:<hex>"), whether or not it exists; tests overwrite it to simulate a
// corrupted or malicious registry.
func (r *Registry) BlobPath(digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	if len(hex) < 2 {
		return filepath.Join(r.storageDir, "docker", "registry", "v2", "blobs", alg, hex, "data")
	}
	return filepath.Join(r.storageDir, "docker", "registry", "v2", "blobs", alg, hex[:2], hex, "data")
}

// Username returns the user set with WithAuth, or "".
func (r *Registry) Username() string { return r.user }

// Password returns the password set with WithAuth, or "".
func (r *Registry) Password() string { return r.pass }

// LogPath returns the file the registry logs to.
func (r *Registry) LogPath() string { return r.logPath }

// Stop kills the registry and waits for it to exit. It is safe to call more
// than once; Start calls it when the test ends.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
	})
}

var listeningRE = regexp.MustCompile(`listening on (127\.0\.0\.1:[0-9]+)`)

// start runs the registry with its files under dir. The registry listens on
// port 0 and reports the port it got in its log, so there is no window in
// which another process can take a port picked in advance.
func start(bin, dir string, cfg config) (*Registry, error) {
	r := &Registry{
		storageDir: filepath.Join(dir, "storage"),
		logPath:    filepath.Join(dir, "registry.log"),
		user:       cfg.user,
		pass:       cfg.pass,
		exited:     make(chan struct{}),
	}
	if err := os.MkdirAll(r.storageDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating storage: %w", err)
	}
	htpasswd := ""
	if cfg.user != "" {
		htpasswd = filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(htpasswd, cfg.user, cfg.pass); err != nil {
			return nil, err
		}
	}
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, configYAML(r.storageDir, htpasswd), 0o644); err != nil {
		return nil, fmt.Errorf("writing config: %w", err)
	}
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("creating log pipe: %w", err)
	}

	r.cmd = exec.Command(bin, "serve", configPath)
	r.cmd.Env = environ()
	r.cmd.Stdout, r.cmd.Stderr = pw, pw
	if err := r.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}
	pw.Close()

	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		defer logFile.Close()
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64*1024), 1024*1024)
		found := false
		for s.Scan() {
			line := s.Text()
			fmt.Fprintln(logFile, line)
			if m := listeningRE.FindStringSubmatch(line); !found && m != nil {
				found = true
				addr <- m[1]
			}
		}
		// Keep draining after a too-long line so the registry never blocks
		// on a full pipe.
		_, _ = io.Copy(logFile, pr)
		pr.Close()
	}()
	go func() {
		_ = r.cmd.Wait()
		<-logDone
		close(r.exited)
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	select {
	case r.host = <-addr:
	case <-r.exited:
		return nil, fmt.Errorf("registry exited before listening (%v):\n%s", r.cmd.ProcessState, tail(r.logPath, 20))
	case <-deadline.C:
		r.Stop()
		return nil, fmt.Errorf("registry did not report its address within %v:\n%s", startTimeout, tail(r.logPath, 20))
	}
	if err := r.waitReady(deadline.C); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// waitReady polls GET /v2/ until the registry answers as a registry does:
// 200, or 401 with auth.
func (r *Registry) waitReady(deadline <-chan time.Time) error {
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + r.host + "/v2/"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-r.exited:
			return fmt.Errorf("registry exited while starting (%v):\n%s", r.cmd.ProcessState, tail(r.logPath, 20))
		case <-deadline:
			return fmt.Errorf("registry not ready within %v: %w\n%s", startTimeout, err, tail(r.logPath, 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// configYAML is the registry configuration: filesystem storage, deletes
// enabled (tests delete tags and manifests), no caches that could hide a
// tampered blob, and htpasswd auth when htpasswd is set.
func configYAML(storage, htpasswd string) []byte {
	// JSON strings are valid YAML scalars, whatever the path contains.
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  accesslog:
    disabled: true
  formatter: text
  fields:
    service: galley-testregistry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: galley-testregistry-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
`, q(storage))
	if htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: galley-testregistry
    path: %s
`, q(htpasswd))
	}
	return []byte(b.String())
}

func writeHtpasswd(path, user, pass string) error {
	if strings.ContainsAny(user, ":\n") {
		return fmt.Errorf("htpasswd user %q: must not contain ':' or a newline", user)
	}
	// The lowest cost: the registry checks the hash on every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("hashing htpasswd password: %w", err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing htpasswd: %w", err)
	}
	return nil
}

// environ is the test's environment without REGISTRY_* variables (which
// would override the config file) and with OpenTelemetry export off (the
// registry otherwise tries to send traces to localhost:4318).
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "REGISTRY_") || strings.HasPrefix(kv, "OTEL_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
}

// tail returns the last n lines of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var errUsage = errors.New("usage: registry start NAME [-auth user:pass] | registry stop NAME")
