package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/cmd/galley/cli"
	"github.com/galley-dev/galley/internal/faultproxy"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
	"github.com/galley-dev/galley/registry/airgap"
)

// The safety rules, through the command line as CI runs it: secrets never
// in the output, an interrupt leaves the previous state, limits hold.

// safetyRun runs galley in-process with ctx and returns the exit code and
// what it printed.
type safetyRun struct {
	ctx         context.Context
	stdin       string
	env         map[string]string
	interactive bool
	// stderr, when set, receives what galley prints on stderr as well.
	stderr io.Writer
}

func (r safetyRun) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx := r.ctx
	if ctx == nil {
		ctx = t.Context()
	}
	var stdout, stderr safetyBuffer
	var errW io.Writer = &stderr
	if r.stderr != nil {
		errW = io.MultiWriter(&stderr, r.stderr)
	}
	home := t.TempDir()
	code := cli.Run(ctx, args, cli.Env{
		Stdin:  strings.NewReader(r.stdin),
		Stdout: &stdout,
		Stderr: errW,
		Getenv: func(k string) string {
			if v, ok := r.env[k]; ok {
				return v
			}
			if k == "HOME" {
				return home
			}
			return ""
		},
		Interactive: r.interactive,
	})
	return code, stdout.String(), stderr.String()
}

type safetyBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *safetyBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *safetyBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// safetyBundle packs files of random YAML adding up to about size bytes
// (at least one file), distinct for each seed.
func safetyBundle(t *testing.T, version string, seed uint64, size int) *bundles.Bundle {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	tree := bundles.NewTree()
	for i := 0; i == 0 || i*4096 < size; i++ {
		var b strings.Builder
		for b.Len() < 4096 {
			fmt.Fprintf(&b, "key%d: %x\n", rng.IntN(1000), rng.Uint64())
		}
		if err := tree.Add(fmt.Sprintf("apps/app%d/file%03d.yaml", i%4, i), []byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
	b, err := bundles.Pack(tree, bundles.Metadata{Name: "shop", Version: version, Created: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func safetyLayout(t *testing.T, b *bundles.Bundle) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := bundles.WriteLayout(dir, b, safetyVersion(t, b)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func safetyVersion(t *testing.T, b *bundles.Bundle) string {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(b.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return m.Annotations[ocispec.AnnotationVersion]
}

// tree returns every file under dir with a hash of its content, and every
// directory, so two calls tell whether anything changed.
func safetyTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			got[rel+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		got[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func safetyEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestSecretsNeverPrinted runs failing authenticated pushes, one of them
// signed, and air-gap exports and imports, against a registry behind a
// proxy that answers 5xx quoting the request's headers, goes away
// mid-push, or is given a wrong password, and looks for every form of the
// password and the key in all output.
func TestSecretsNeverPrinted(t *testing.T) {
	const (
		user    = "ci-bot"
		pass    = "S3cret-Registry-pa55word"
		keyPass = "S3cret-Key-pa55word"
	)
	r := testregistry.Start(t, testregistry.WithAuth(user, pass))
	layout := safetyLayout(t, safetyBundle(t, "1.0.0", 1, 8<<10))
	// What export reads and import loads: a bundle with a bundle.json,
	// already in the registry, and its export file.
	published := safetyIndexedBundle(t)
	authOpts := registry.Options{PlainHTTP: true, Username: user, Password: pass}
	if _, err := registry.New(authOpts).Push(t.Context(), published, registry.Reference{Registry: r.Host(), Repository: "shop", Tag: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	exportFile := filepath.Join(t.TempDir(), "shop.tar")
	if _, err := airgap.New(authOpts).Export(t.Context(), registry.Reference{Registry: r.Host(), Repository: "shop", Tag: "2.0.0"}, exportFile, airgap.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	keyEnv := map[string]string{"GALLEY_KEY_PASSWORD": keyPass}
	if code, _, stderr := (safetyRun{env: keyEnv}).run(t, "key", "generate", "--output-key-prefix", filepath.Join(keyDir, "cosign")); code != 0 {
		t.Fatalf("key generate: %d %s", code, stderr)
	}
	keyPEM, err := os.ReadFile(filepath.Join(keyDir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}

	var forbidden []string
	for _, p := range []string{pass, "wrong-" + pass} {
		userpass := []byte(user + ":" + p)
		forbidden = append(forbidden, p,
			base64.StdEncoding.EncodeToString(userpass),
			base64.RawStdEncoding.EncodeToString(userpass),
			base64.RawURLEncoding.EncodeToString(userpass))
	}
	forbidden = append(forbidden, keyPass, "wrong-"+keyPass)
	for _, line := range strings.Split(string(keyPEM), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			forbidden = append(forbidden, line)
		}
	}

	authed := func(q faultproxy.Request) bool { return q.Header.Get("Authorization") != "" }
	// Not HEAD: its answer has no body to quote anything in.
	authedWithBody := func(q faultproxy.Request) bool { return authed(q) && q.Method != http.MethodHead }
	echo500 := faultproxy.Match(authedWithBody, -1, faultproxy.Fault{Kind: faultproxy.Status, Status: 500, Echo: true})
	var seen atomic.Int32
	downMidPush := func(q faultproxy.Request) faultproxy.Fault {
		if authed(q) && seen.Add(1) == 3 {
			return faultproxy.Fault{Kind: faultproxy.Down}
		}
		return faultproxy.Fault{}
	}
	for _, tc := range []struct {
		name   string
		cmd    string // "push" (the default), "export" or "import"
		rule   faultproxy.Rule
		stdin  string
		env    map[string]string
		key    bool
		stderr []string // what the error must say
	}{
		{name: "wrong password", stdin: "wrong-" + pass + "\n", stderr: []string{"rejected the credentials"}},
		{name: "5xx quoting the request", rule: echo500, stdin: pass, stderr: []string{"HTTP 500", "gave up", "Authorization: Basic ***"}},
		{name: "registry gone mid-push", rule: downMidPush, stdin: pass, stderr: []string{"connection refused"}},
		{name: "signed, 5xx quoting the request", rule: echo500, stdin: pass, env: keyEnv, key: true, stderr: []string{"HTTP 500", "Authorization: Basic ***"}},
		{name: "wrong key password", stdin: pass, env: map[string]string{"GALLEY_KEY_PASSWORD": "wrong-" + keyPass}, key: true, stderr: []string{"cosign.key"}},
		{name: "export, wrong password", cmd: "export", stdin: "wrong-" + pass + "\n", stderr: []string{"rejected the credentials"}},
		{name: "export, 5xx quoting the request", cmd: "export", rule: echo500, stdin: pass, stderr: []string{"HTTP 500", "gave up", "Authorization: Basic ***"}},
		{name: "import, wrong password", cmd: "import", stdin: "wrong-" + pass + "\n", stderr: []string{"rejected the credentials"}},
		{name: "import, 5xx quoting the request", cmd: "import", rule: echo500, stdin: pass, stderr: []string{"HTTP 500", "gave up", "Authorization: Basic ***"}},
		{name: "import, registry gone mid-push", cmd: "import", rule: downMidPush, stdin: pass, stderr: []string{"connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen.Store(0)
			p := faultproxy.Start(t, r.Host(), tc.rule)
			login := []string{"--plain-http", "--timeout", "1s", "--username", user, "--password-stdin"}
			args := append([]string{"bundle", "push"}, append(login, layout, "oci://"+p.Host()+"/shop:1.0.0", "--tag", "latest")...)
			switch tc.cmd {
			case "export":
				args = append([]string{"bundle", "export"}, append(login, "oci://"+p.Host()+"/shop:2.0.0", "-d", filepath.Join(t.TempDir(), "out.tar"))...)
			case "import":
				args = append([]string{"bundle", "import"}, append(login, exportFile, "--to", "oci://"+p.Host()+"/mirror")...)
			}
			if tc.key {
				args = append(args, "--key", filepath.Join(keyDir, "cosign.key"))
			}
			code, stdout, stderr := (safetyRun{stdin: tc.stdin, env: tc.env, interactive: true}).run(t, args...)
			if code != cli.ExitError {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, cli.ExitError, stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			for _, secret := range forbidden {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output shows the secret %q:\nstdout:\n%s\nstderr:\n%s", secret, stdout, stderr)
				}
			}
			if last := safetyLastLine(stderr); !strings.HasPrefix(last, "galley: ") {
				t.Errorf("the error is not one galley: line at the end:\n%s", stderr)
			}
			if tc.rule != nil && strings.Contains(tc.name, "quoting") {
				// The proxy did quote credentials: the test is not vacuous.
				quoted := false
				for _, e := range p.Log() {
					quoted = quoted || e.Fault.Echo && authed(e.Request)
				}
				if !quoted {
					t.Error("no answer quoted an Authorization header")
				}
			}
		})
	}
}

// safetyIndexedBundle is a small bundle with the bundle.json import reads.
func safetyIndexedBundle(t *testing.T) *bundles.Bundle {
	t.Helper()
	tree := bundles.NewTree()
	index, err := json.Marshal(bundles.Index{SchemaVersion: bundles.IndexSchemaVersion, Galley: "test", Stack: bundles.IndexStack{Name: "shop", Version: "2.0.0"}, Apps: []bundles.IndexApp{}, Images: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{bundles.IndexPath: index, "apps/web/deployment.yaml": []byte("kind: Deployment\n")} {
		if err := tree.Add(name, data); err != nil {
			t.Fatal(err)
		}
	}
	b, err := bundles.Pack(tree, bundles.Metadata{Name: "shop", Version: "2.0.0", Created: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func safetyLastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// safetyCancelOnWrite cancels a context on the n-th write that is not the final
// summary line: progress lines arrive while the build runs.
type safetyCancelOnWrite struct {
	n      int
	writes int
	cancel context.CancelFunc
}

func (c *safetyCancelOnWrite) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("built ")) {
		if c.writes++; c.writes == c.n {
			c.cancel()
		}
	}
	return len(p), nil
}

// TestInterruptKeepsPreviousState interrupts build, push and pull at each
// point it can reach, as Ctrl-C does (the context is cancelled), and
// checks that what was there before is still there, unchanged, with no
// temporary files beside it.
func TestInterruptKeepsPreviousState(t *testing.T) {
	t.Run("build", func(t *testing.T) {
		stack := filepath.Join(repoRoot(t), "examples", "data-platform")
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		// The previous layout differs from what the build makes.
		old := safetyRun{env: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}}
		if code, _, stderr := old.run(t, "bundle", "build", "--no-cache", stack, "-d", out); code != 0 {
			t.Fatalf("first build: %s", stderr)
		}
		before := safetyTree(t, out)

		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		if code, _, stderr := (safetyRun{ctx: cancelled}).run(t, "bundle", "build", "--no-cache", stack, "-d", out); code != cli.ExitError || !strings.Contains(stderr, "galley: interrupted") {
			t.Errorf("build with Ctrl-C pressed before: exit %d, %s", code, stderr)
		}
		for n := 1; ; n++ {
			ctx, cancel := context.WithCancel(t.Context())
			w := &safetyCancelOnWrite{n: n, cancel: cancel}
			code, _, stderr := (safetyRun{ctx: ctx, interactive: true, stderr: w}).run(t, "bundle", "build", "--no-cache", stack, "-d", out)
			cancel()
			if w.writes < n {
				// Nothing left to interrupt: the build ran to the end.
				if code != 0 || n < 2 {
					t.Fatalf("build %d: exit %d after %d progress lines: %s", n, code, w.writes, stderr)
				}
				if _, err := bundles.ReadLayout(out, ""); err != nil {
					t.Errorf("the completed build left no layout: %v", err)
				}
				t.Logf("build interrupted at each of its %d progress lines", n-1)
				break
			}
			if code != cli.ExitError || !strings.Contains(stderr, "galley: interrupted") {
				t.Errorf("build interrupted at progress line %d: exit %d, %s", n, code, stderr)
			}
			if !sameFiles(before, safetyTree(t, out)) {
				t.Errorf("build interrupted at progress line %d changed the previous layout", n)
			}
			if got := safetyEntries(t, dir); !slices.Equal(got, []string{"out"}) {
				t.Errorf("build interrupted at progress line %d left %v", n, got)
			}
		}
	})

	t.Run("push", func(t *testing.T) {
		r := testregistry.Start(t)
		p := faultproxy.Start(t, r.Host(), nil)
		b1, b2 := safetyBundle(t, "1.0.0", 1, 64<<10), safetyBundle(t, "2.0.0", 2, 64<<10)
		layout := safetyLayout(t, b2)
		layoutBefore := safetyTree(t, layout)
		direct := registry.New(registry.Options{PlainHTTP: true})
		for k := 1; ; k++ {
			repo := fmt.Sprintf("interrupt/push%d", k)
			ref, err := registry.ParseReference("oci://" + r.Host() + "/" + repo + ":1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := direct.Push(t.Context(), b1, ref, "latest"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			p.SetRule(safetyInterruptAt(p.Requests()+k, cancel))
			code, _, stderr := (safetyRun{ctx: ctx}).run(t, "bundle", "push", "--plain-http", layout, "oci://"+p.Host()+"/"+repo+":2.0.0", "--tag", "latest")
			interrupted := ctx.Err() != nil
			cancel()
			rel := safetyReleases(t, r.Host(), repo)
			if !interrupted {
				if code != 0 || k < 6 {
					t.Fatalf("push %d: exit %d: %s", k, code, stderr)
				}
				if rel["2.0.0"] != b2.Digest() || rel["latest"] != b2.Digest() {
					t.Errorf("the completed push left %v", rel)
				}
				t.Logf("push interrupted at each of its %d requests", k-1)
				break
			}
			if code != cli.ExitError || !strings.Contains(stderr, "galley: interrupted") {
				t.Errorf("push interrupted at request %d: exit %d, %s", k, code, stderr)
			}
			if rel["1.0.0"] != b1.Digest() || rel["latest"] != b1.Digest() && rel["latest"] != b2.Digest() {
				t.Errorf("push interrupted at request %d: tags %v", k, rel)
			}
			if d, ok := rel["2.0.0"]; ok && d != b2.Digest() {
				t.Errorf("push interrupted at request %d: 2.0.0 names %s", k, d)
			}
		}
		if !sameFiles(layoutBefore, safetyTree(t, layout)) {
			t.Error("push changed the layout it read")
		}
	})

	t.Run("pull", func(t *testing.T) {
		r := testregistry.Start(t)
		b := safetyBundle(t, "1.0.0", 1, 512<<10)
		ref, err := registry.ParseReference("oci://" + r.Host() + "/shop:1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := registry.New(registry.Options{PlainHTTP: true}).Push(t.Context(), b, ref); err != nil {
			t.Fatal(err)
		}
		p := faultproxy.Start(t, r.Host(), nil)
		pull := func(ctx context.Context, out string) (int, string) {
			code, _, stderr := (safetyRun{ctx: ctx}).run(t, "bundle", "pull", "--plain-http", "oci://"+p.Host()+"/shop:1.0.0", "-d", out)
			return code, stderr
		}
		check := func(what string, code int, stderr, parent string, want []string) {
			t.Helper()
			if code != cli.ExitError || !strings.Contains(stderr, "galley: interrupted") {
				t.Errorf("pull interrupted %s: exit %d, %s", what, code, stderr)
			}
			if got := safetyEntries(t, parent); !slices.Equal(got, want) {
				t.Errorf("pull interrupted %s left %v, want %v", what, got, want)
			}
		}

		for k := 1; ; k++ {
			parent := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			p.SetRule(safetyInterruptAt(p.Requests()+k, cancel))
			code, stderr := pull(ctx, filepath.Join(parent, "out"))
			interrupted := ctx.Err() != nil
			cancel()
			if !interrupted {
				if code != 0 || k < 3 {
					t.Fatalf("pull %d: exit %d: %s", k, code, stderr)
				}
				t.Logf("pull interrupted at each of its %d requests", k-1)
				break
			}
			check(fmt.Sprintf("at request %d", k), code, stderr, parent, nil)
		}

		// Half-way through the layer, into an empty directory that must
		// stay as it was.
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		if err := os.Mkdir(out, 0o755); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		layer := "/blobs/" + b.LayerDescriptor.Digest.String()
		p.SetRule(func(q faultproxy.Request) faultproxy.Fault {
			if !strings.HasSuffix(q.Path, layer) {
				return faultproxy.Fault{}
			}
			// The proxy sends half the layer and stalls; the interrupt
			// comes while the client waits for the rest.
			time.AfterFunc(100*time.Millisecond, cancel)
			return faultproxy.Fault{Kind: faultproxy.Stall, Delay: time.Minute}
		})
		code, stderr := pull(ctx, out)
		check("mid-layer", code, stderr, parent, []string{"out"})
		if got := safetyEntries(t, out); len(got) != 0 {
			t.Errorf("the empty output directory now holds %v", got)
		}
	})
}

// interruptAt cancels the command's context when the proxy receives
// request n, and holds that request until the client gives up.
func safetyInterruptAt(n int, cancel context.CancelFunc) faultproxy.Rule {
	return func(q faultproxy.Request) faultproxy.Fault {
		if q.N != n {
			return faultproxy.Fault{}
		}
		cancel()
		return faultproxy.Fault{Kind: faultproxy.Delay, Delay: time.Minute}
	}
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// releases returns what each tag of repo names, asking the registry
// directly, and fails the test for a tag whose manifest or blobs are
// missing or do not match their digests.
func safetyReleases(t *testing.T, host, repo string) map[string]digest.Digest {
	t.Helper()
	get := func(path, accept string) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	status, body := get("/v2/"+repo+"/tags/list", "")
	var list struct{ Tags []string }
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("tags of %s: %d %s", repo, status, body)
	}
	got := map[string]digest.Digest{}
	for _, tag := range list.Tags {
		status, manifest := get("/v2/"+repo+"/manifests/"+tag, ocispec.MediaTypeImageManifest)
		if status != http.StatusOK {
			t.Errorf("%s:%s: manifest: HTTP %d", repo, tag, status)
			continue
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(manifest, &m); err != nil {
			t.Errorf("%s:%s: %v", repo, tag, err)
			continue
		}
		for _, desc := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			status, blob := get("/v2/"+repo+"/blobs/"+desc.Digest.String(), "")
			if status != http.StatusOK || digest.FromBytes(blob) != desc.Digest {
				t.Errorf("%s:%s: blob %s: HTTP %d, or not matching its digest", repo, tag, desc.Digest, status)
			}
		}
		got[tag] = digest.FromBytes(manifest)
	}
	return got
}

// TestLimitFlags checks the flags that bound reading a layer, on pull and
// inspect, against a real registry.
func TestLimitFlags(t *testing.T) {
	r := testregistry.Start(t)
	b := safetyBundle(t, "1.0.0", 1, 40<<10) // 10 files of 4 KiB
	ref, err := registry.ParseReference("oci://" + r.Host() + "/shop:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.New(registry.Options{PlainHTTP: true}).Push(t.Context(), b, ref); err != nil {
		t.Fatal(err)
	}
	p := faultproxy.Start(t, r.Host(), nil)
	src := "oci://" + p.Host() + "/shop:1.0.0"
	layout := safetyLayout(t, b)
	layer := b.LayerDescriptor

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"within the limits", []string{"--max-files", "10", "--max-extracted-size", "1MiB", "--max-layer-size", "64KiB"}, 0, ""},
		{"too many files", []string{"--max-files", "3"}, cli.ExitError, "more than 3 files"},
		{"too large a file", []string{"--max-file-size", "1KiB"}, cli.ExitError, "bytes, limit is 1024"},
		{"too much extracted", []string{"--max-extracted-size", "10KB"}, cli.ExitError, "files add up to more than 10000 bytes"},
		{"too large a layer", []string{"--max-layer-size", "100"}, cli.ExitError, fmt.Sprintf("layer %s is %d bytes, limit is 100", layer.Digest, layer.Size)},
		{"zero files", []string{"--max-files", "0"}, cli.ExitUsage, "want a positive whole number"},
		{"unknown unit", []string{"--max-layer-size", "12XB"}, cli.ExitUsage, "want a positive number of bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			p.TakeLog()
			args := append([]string{"bundle", "pull", "--plain-http", src, "-d", out}, tc.args...)
			code, _, stderr := (safetyRun{}).run(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Fatalf("exit %d, want %d; stderr %q, want %q", code, tc.code, stderr, tc.msg)
			}
			if code == 0 {
				if n := len(safetyTree(t, out)); n != 10+6 { // 10 files; out, apps and 4 app directories
					t.Errorf("unpacked %d entries", n)
				}
				return
			}
			if got := safetyEntries(t, parent); len(got) != 0 {
				t.Errorf("a refused pull left %v", got)
			}
			for _, e := range p.Log() {
				if tc.name == "too large a layer" && strings.HasSuffix(e.Path, layer.Digest.String()) {
					t.Errorf("the layer was downloaded before being refused: %v", e)
				}
			}
		})
	}

	// inspect reads a layout or a registry with the same limits.
	for _, args := range [][]string{
		{"bundle", "inspect", layout, "--max-files", "3"},
		{"bundle", "inspect", "--plain-http", src, "--max-files", "3"},
	} {
		if code, _, stderr := (safetyRun{}).run(t, args...); code != cli.ExitError || !strings.Contains(stderr, "more than 3 files") {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
	if code, _, stderr := (safetyRun{}).run(t, "bundle", "inspect", layout, "--max-layer-size", "100"); code != cli.ExitError || !strings.Contains(stderr, "limit is 100 (--max-layer-size)") {
		t.Errorf("inspect a layout with too large a layer: exit %d, %s", code, stderr)
	}

	// The help says what the defaults are and where they are explained.
	for _, cmd := range []string{"pull", "inspect"} {
		_, help, _ := (safetyRun{}).run(t, "bundle", cmd, "--help")
		for _, want := range []string{
			"--max-layer-size size", "(default 1088MiB)",
			"--max-files int", "(default 10000)",
			"--max-file-size size", "(default 64MiB)",
			"--max-extracted-size size", "(default 1GiB)",
			"--timeout duration", "(default 2m0s)",
			"docs/limits.md",
		} {
			if !strings.Contains(help, want) {
				t.Errorf("bundle %s --help does not say %q", cmd, want)
			}
		}
	}
}

// TestPullFailureLeavesNothing: a layer that arrives corrupted, or never
// arrives whole, fails the pull with nothing written.
func TestPullFailureLeavesNothing(t *testing.T) {
	r := testregistry.Start(t)
	b := safetyBundle(t, "1.0.0", 1, 64<<10)
	ref, err := registry.ParseReference("oci://" + r.Host() + "/shop:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.New(registry.Options{PlainHTTP: true}).Push(t.Context(), b, ref); err != nil {
		t.Fatal(err)
	}
	layer := func(q faultproxy.Request) bool {
		return strings.HasSuffix(q.Path, "/blobs/"+b.LayerDescriptor.Digest.String())
	}
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
		msg   string
	}{
		{"corrupted", faultproxy.Fault{Kind: faultproxy.Corrupt}, "layer blob " + b.LayerDescriptor.Digest.String() + ": content digest is"},
		{"cut every time", faultproxy.Fault{Kind: faultproxy.ResetResponse}, "fetching layer " + b.LayerDescriptor.Digest.String() + ": gave up after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := faultproxy.Start(t, r.Host(), faultproxy.Match(layer, -1, tc.fault))
			parent := t.TempDir()
			code, _, stderr := (safetyRun{}).run(t, "bundle", "pull", "--plain-http", "--timeout", "5s", "oci://"+p.Host()+"/shop:1.0.0", "-d", filepath.Join(parent, "out"))
			if code != cli.ExitError || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, cli.ExitError, tc.msg)
			}
			if got := safetyEntries(t, parent); len(got) != 0 {
				t.Errorf("a failed pull left %v", got)
			}
		})
	}
}
