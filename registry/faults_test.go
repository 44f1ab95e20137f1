package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/faultproxy"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// The tests below put internal/faultproxy between the client and the
// real Distribution registry, and check what the registry holds by asking
// it directly, never through the proxy or the client under test.

// fastRetry retries quickly, so tests spend their time on requests.
var fastRetry = registry.RetryOptions{
	MaxTime:         20 * time.Second,
	MaxAttempts:     5,
	MinWait:         time.Millisecond,
	MaxWait:         5 * time.Millisecond,
	ResponseTimeout: 100 * time.Millisecond,
}

func retryClient(o registry.RetryOptions) *registry.Client {
	return registry.New(registry.Options{PlainHTTP: true, Retry: o})
}

func proxyRef(t *testing.T, p *faultproxy.Proxy, s string) registry.Reference {
	t.Helper()
	ref, err := registry.ParseReference("oci://" + p.Host() + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// store reads a registry directly over HTTP.
type store struct {
	t    testing.TB
	host string
	hc   *http.Client
}

func directStore(t testing.TB, r *testregistry.Registry) *store {
	return &store{t: t, host: r.Host(), hc: &http.Client{Timeout: 10 * time.Second}}
}

func (s *store) get(method, path, accept string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.host+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// tags lists repo's tags; none when the repository does not exist.
func (s *store) tags(repo string) []string {
	s.t.Helper()
	status, b := s.get(http.MethodGet, "/v2/"+repo+"/tags/list", "")
	if status == http.StatusNotFound {
		return nil
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &list) != nil {
		s.t.Fatalf("listing tags of %s: %d %s", repo, status, b)
	}
	slices.Sort(list.Tags)
	return list.Tags
}

func (s *store) has(repo, kind string, d digest.Digest) bool {
	s.t.Helper()
	status, _ := s.get(http.MethodHead, "/v2/"+repo+"/"+kind+"/"+d.String(), ocispec.MediaTypeImageManifest)
	return status == http.StatusOK
}

// release fetches the manifest tag names and every blob it lists, and
// checks each against its digest and size. It returns the manifest's
// digest, or an error saying what is missing or wrong: a corrupted
// release.
//
// Distribution writes a tag in two files: between them, the tag is listed
// but does not resolve. A client that gave up waiting may leave such a
// write running, so a listed tag that does not resolve is asked for again
// until it does or is no longer listed (errAbsent).
func (s *store) release(repo, tag string) (digest.Digest, error) {
	s.t.Helper()
	var (
		status   int
		manifest []byte
	)
	for range 100 {
		status, manifest = s.get(http.MethodGet, "/v2/"+repo+"/manifests/"+tag, ocispec.MediaTypeImageManifest)
		if status != http.StatusNotFound {
			break
		}
		if !slices.Contains(s.tags(repo), tag) {
			return "", errAbsent
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("tag %s: manifest: HTTP %d", tag, status)
	}
	d := digest.FromBytes(manifest)
	var m ocispec.Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return d, fmt.Errorf("tag %s: manifest %s: %v", tag, d, err)
	}
	for _, desc := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		status, blob := s.get(http.MethodGet, "/v2/"+repo+"/blobs/"+desc.Digest.String(), "")
		switch {
		case status != http.StatusOK:
			return d, fmt.Errorf("tag %s: manifest %s: blob %s: HTTP %d", tag, d, desc.Digest, status)
		case int64(len(blob)) != desc.Size || digest.FromBytes(blob) != desc.Digest:
			return d, fmt.Errorf("tag %s: manifest %s: blob %s does not match its descriptor", tag, d, desc.Digest)
		}
	}
	return d, nil
}

var errAbsent = errors.New("no such tag")

// releases checks every tag of repo (see release) and returns what each
// names; it fails the test on a corrupted release.
func (s *store) releases(repo string) map[string]digest.Digest {
	s.t.Helper()
	got := map[string]digest.Digest{}
	for _, tag := range s.tags(repo) {
		d, err := s.release(repo, tag)
		if errors.Is(err, errAbsent) {
			continue
		}
		if err != nil {
			s.t.Errorf("corrupted release in %s: %v", repo, err)
		}
		got[tag] = d
	}
	return got
}

// writes returns the requests of log that change the registry, as
// "METHOD kind" with kind one of upload, manifest <digest|tag>.
func proxyWrites(log []faultproxy.Entry) []string {
	var w []string
	for _, e := range log {
		if e.Method == http.MethodGet || e.Method == http.MethodHead {
			continue
		}
		switch {
		case strings.Contains(e.Path, "/blobs/uploads/"):
			w = append(w, e.Method+" upload")
		case strings.Contains(e.Path, "/manifests/"):
			w = append(w, e.Method+" manifest "+e.Path[strings.LastIndex(e.Path, "/")+1:])
		default:
			w = append(w, e.Method+" "+e.Path)
		}
	}
	return w
}

func countKind(log []faultproxy.Entry, k faultproxy.Kind) int {
	n := 0
	for _, e := range log {
		if e.Fault.Kind == k {
			n++
		}
	}
	return n
}

// Every retryable fault, injected in a third of the requests: push and
// pull succeed, and the bundle that comes back is the one that went.
func TestRetriesTransientFaults(t *testing.T) {
	r := testregistry.Start(t)
	for i, tc := range []struct {
		name  string
		fault faultproxy.Fault
	}{
		{"500", faultproxy.Fault{Kind: faultproxy.Status, Status: 500}},
		{"502", faultproxy.Fault{Kind: faultproxy.Status, Status: 502}},
		{"503", faultproxy.Fault{Kind: faultproxy.Status, Status: 503}},
		{"504", faultproxy.Fault{Kind: faultproxy.Status, Status: 504}},
		{"429", faultproxy.Fault{Kind: faultproxy.RateLimit, RetryAfter: "0"}},
		{"reset mid-request", faultproxy.Fault{Kind: faultproxy.ResetRequest}},
		{"reset mid-response", faultproxy.Fault{Kind: faultproxy.ResetResponse}},
		{"slow", faultproxy.Fault{Kind: faultproxy.Delay, Delay: 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			p := faultproxy.Start(t, r.Host(), faultproxy.Random(uint64(i+1), 0.3, tc.fault))
			c := retryClient(registry.RetryOptions{MaxAttempts: 10, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, ResponseTimeout: 100 * time.Millisecond})
			b := bigBundle(t, 256<<10)
			ref := proxyRef(t, p, "retry/"+strings.ReplaceAll(tc.name, " ", "-")+":1.0.0")
			if _, err := c.Push(ctx, b, ref, "latest"); err != nil {
				t.Fatalf("push: %v", err)
			}
			got, err := c.Pull(ctx, ref)
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if got.Digest() != b.Digest() || string(got.Layer) != string(b.Layer) {
				t.Errorf("pulled %s, pushed %s", got.Digest(), b.Digest())
			}
			log := p.Log()
			if n := countKind(log, tc.fault.Kind); n == 0 {
				t.Errorf("no fault injected in %d requests: the test proves nothing", len(log))
			} else {
				t.Logf("%d requests, %d faults", len(log), n)
			}
			s := directStore(t, r)
			if rel := s.releases(ref.Repository); rel["1.0.0"] != b.Digest() || rel["latest"] != b.Digest() {
				t.Errorf("registry holds %v, want 1.0.0 and latest at %s", rel, b.Digest())
			}
		})
	}
}

// A 429's Retry-After is waited for, even beyond MaxWait.
func TestRetryAfterIsHonoured(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	b := testBundle(t, "1.0.0", 1)
	if _, err := plainClient().Push(ctx, b, distRef(t, r, "shop:1.0.0")); err != nil {
		t.Fatal(err)
	}
	manifests := func(r faultproxy.Request) bool { return strings.Contains(r.Path, "/manifests/") }
	p := faultproxy.Start(t, r.Host(), faultproxy.Match(manifests, 1, faultproxy.Fault{Kind: faultproxy.RateLimit, RetryAfter: "1"}))
	if _, err := retryClient(fastRetry).Pull(ctx, proxyRef(t, p, "shop:1.0.0")); err != nil {
		t.Fatal(err)
	}
	log := p.Log()
	if len(log) < 2 || log[0].Status != http.StatusTooManyRequests {
		t.Fatalf("log = %v, want a 429 first", log)
	}
	// A lower bound only: honouring the header means not asking again
	// before the second it named.
	if wait := log[1].Time.Sub(log[0].Time); wait < time.Second {
		t.Errorf("asked again %s after a 429 with Retry-After: 1; MaxWait is %s", wait, fastRetry.MaxWait)
	}
}

// A Retry-After past the time limit ends the operation at once, saying so.
func TestRetryAfterBeyondTheTimeLimit(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	p := faultproxy.Start(t, r.Host(), faultproxy.From(1, faultproxy.Fault{Kind: faultproxy.RateLimit, RetryAfter: "3600"}))
	o := fastRetry
	o.MaxTime = 5 * time.Second
	_, err := retryClient(o).Pull(ctx, proxyRef(t, p, "shop:1.0.0"))
	var re *registry.RetryError
	if !errors.As(err, &re) || re.RetryAfter != time.Hour || re.Attempts != 1 {
		t.Fatalf("err = %v, want a *RetryError after one attempt naming the hour asked for", err)
	}
	want := "pull " + p.Host() + "/shop:1.0.0: fetching manifest 1.0.0: gave up after 1 attempt: the registry asks to wait 1h0m0s (Retry-After), beyond the 5s time limit: " + p.Host() + " is rate limiting requests (HTTP 429); try again later"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	if n := len(p.Log()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// When a fault does not pass, the error comes after a bounded number of
// attempts or time, in one line naming the registry and the last cause.
func TestGivesUpClearly(t *testing.T) {
	r := testregistry.Start(t)
	b := testBundle(t, "1.0.0", 1)
	for _, tc := range []struct {
		name     string
		fault    faultproxy.Fault
		opts     func(*registry.RetryOptions)
		msg      string
		requests int // exact, or 0 when the HTTP transport may add its own retries
		is       error
	}{
		{
			name:     "503 every time",
			fault:    faultproxy.Fault{Kind: faultproxy.Status, Status: 503},
			msg:      "checking config sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a: gave up after 3 attempts in ",
			requests: 3,
		},
		{
			name:  "reset every time",
			fault: faultproxy.Fault{Kind: faultproxy.ResetResponse},
			msg:   ": gave up after 3 attempts in ",
			is:    registry.ErrUnreachable,
		},
		{
			name:     "no answer",
			fault:    faultproxy.Fault{Kind: faultproxy.Delay, Delay: time.Minute},
			opts:     func(o *registry.RetryOptions) { o.ResponseTimeout = 50 * time.Millisecond },
			msg:      ": gave up after 3 attempts in ",
			requests: 3,
			is:       registry.ErrUnreachable,
		},
		{
			name:  "time limit",
			fault: faultproxy.Fault{Kind: faultproxy.Delay, Delay: time.Minute},
			opts: func(o *registry.RetryOptions) {
				o.MaxTime, o.ResponseTimeout, o.MaxAttempts = 300*time.Millisecond, time.Minute, 100
			},
			msg:      "gave up after 1 attempt: the 300ms time limit is reached: registry " + "%s unreachable: timed out",
			requests: 1,
			is:       context.DeadlineExceeded,
		},
		{
			name:     "400 is final",
			fault:    faultproxy.Fault{Kind: faultproxy.Status, Status: 400},
			msg:      "checking config sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a: config sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a: HTTP 400 Bad Request from %s",
			requests: 1,
		},
		{
			name:  "gone for good",
			fault: faultproxy.Fault{Kind: faultproxy.Down},
			// The cut request is retried; the refused connection is not.
			msg: "registry %s unreachable: connection refused",
			is:  registry.ErrUnreachable,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := faultproxy.Start(t, r.Host(), faultproxy.From(1, tc.fault))
			o := fastRetry
			o.MaxAttempts = 3
			if tc.opts != nil {
				tc.opts(&o)
			}
			ref := proxyRef(t, p, "shop:1.0.0")
			_, err := retryClient(o).Push(t.Context(), b, ref)
			if err == nil {
				t.Fatal("push succeeded")
			}
			msg := err.Error()
			want := strings.ReplaceAll(tc.msg, "%s", p.Host())
			if !strings.HasPrefix(msg, "push "+p.Host()+"/shop:1.0.0: ") || !strings.Contains(msg, want) || strings.Contains(msg, "\n") {
				t.Errorf("err = %q\nwant one line starting with the operation and registry, containing %q", msg, want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want it to be %v", err, tc.is)
			}
			if n := len(p.Log()); tc.requests > 0 && n != tc.requests {
				t.Errorf("%d requests, want %d: %v", n, tc.requests, p.Log())
			}
			if tags := directStore(t, r).tags("shop"); len(tags) != 0 {
				t.Errorf("tags %v after a failed push", tags)
			}
		})
	}
}

// The registry is killed before, or in the middle of, each request of a
// push in turn: whatever the point, every tag names a manifest whose blobs
// are all there, and the push run again completes, uploading only what is
// missing.
func TestPushKilledAtEveryStep(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	s := directStore(t, r)
	b1, b2 := testBundle(t, "1.0.0", 1), testBundle(t, "2.0.0", 2)
	once := registry.RetryOptions{MaxAttempts: 1, MinWait: time.Millisecond, ResponseTimeout: time.Second}
	direct := plainClient()

	for _, mode := range []struct {
		name  string
		fault faultproxy.Fault
	}{
		{"registry gone", faultproxy.Fault{Kind: faultproxy.Down}},
		{"request cut", faultproxy.Fault{Kind: faultproxy.ResetRequest}},
		{"answer lost", faultproxy.Fault{Kind: faultproxy.ResetResponse}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := faultproxy.Start(t, r.Host(), nil)
			for k := 1; ; k++ {
				repo := fmt.Sprintf("kill/%s/%d", strings.ReplaceAll(mode.name, " ", "-"), k)
				if _, err := direct.Push(ctx, b1, distRef(t, r, repo+":1.0.0"), "latest"); err != nil {
					t.Fatal(err)
				}
				if err := p.Up(); err != nil {
					t.Fatal(err)
				}
				p.TakeLog()
				p.SetRule(faultproxy.At(p.Requests()+k, mode.fault))
				_, err := retryClient(once).Push(ctx, b2, proxyRef(t, p, repo+":2.0.0"), "latest")
				hit := countKind(p.TakeLog(), mode.fault.Kind) > 0
				if !hit {
					if err != nil {
						t.Fatalf("k=%d: push failed without a fault: %v", k, err)
					}
					if k < 8 {
						t.Fatalf("a push of %d requests: too few to be a real one", k-1)
					}
					t.Logf("%s: killed at each of the %d requests of a push", mode.name, k-1)
					break
				}

				rel := s.releases(repo)
				if rel["1.0.0"] != b1.Digest() || rel["latest"] != b1.Digest() && rel["latest"] != b2.Digest() {
					t.Errorf("k=%d: tags %v; 1.0.0 must stay at b1, latest at b1 or b2", k, rel)
				}
				if d, ok := rel["2.0.0"]; ok && d != b2.Digest() {
					t.Errorf("k=%d: 2.0.0 names %s", k, d)
				}

				// What the registry lacks is exactly what the second push
				// writes.
				var want []string
				if !s.has(repo, "blobs", b2.LayerDescriptor.Digest) {
					want = append(want, "POST upload", "PUT upload")
				}
				if !s.has(repo, "manifests", b2.Digest()) {
					want = append(want, "PUT manifest "+b2.Digest().String())
				}
				for _, tag := range []string{"2.0.0", "latest"} {
					if rel[tag] != b2.Digest() {
						want = append(want, "PUT manifest "+tag)
					}
				}
				p.SetRule(nil)
				if err := p.Up(); err != nil {
					t.Fatal(err)
				}
				res, err := retryClient(once).Push(ctx, b2, proxyRef(t, p, repo+":2.0.0"), "latest")
				if err != nil {
					t.Fatalf("k=%d: push again: %v", k, err)
				}
				if got := proxyWrites(p.TakeLog()); !slices.Equal(got, want) {
					t.Errorf("k=%d: push again wrote %v, want %v", k, got, want)
				}
				if res.BlobsPushed+res.BlobsSkipped != 2 {
					t.Errorf("k=%d: %+v", k, res)
				}
				rel = s.releases(repo)
				if rel["2.0.0"] != b2.Digest() || rel["latest"] != b2.Digest() || rel["1.0.0"] != b1.Digest() {
					t.Errorf("k=%d: after the second push, tags %v", k, rel)
				}
			}
		})
	}
}

// An upload cut half-way through the layer: the push run again skips the
// config it had sent and sends the rest, in order.
func TestInterruptedPushUploadsOnlyWhatIsMissing(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	b := bigBundle(t, 1<<20)
	layerPut := func(q faultproxy.Request) bool {
		return q.Method == http.MethodPut && strings.Contains(q.Path, "/blobs/uploads/")
	}
	// The first upload (the config) passes, the second (the layer) is cut.
	var uploads int
	p := faultproxy.Start(t, r.Host(), func(q faultproxy.Request) faultproxy.Fault {
		if layerPut(q) {
			if uploads++; uploads == 2 {
				return faultproxy.Fault{Kind: faultproxy.ResetRequest}
			}
		}
		return faultproxy.Fault{}
	})
	ref := proxyRef(t, p, "shop:1.0.0")
	once := registry.RetryOptions{MaxAttempts: 1}
	if _, err := retryClient(once).Push(ctx, b, ref); !errors.Is(err, registry.ErrUnreachable) {
		t.Fatalf("push with the layer upload cut: %v", err)
	}
	if got, want := proxyWrites(p.TakeLog()), []string{"POST upload", "PUT upload", "POST upload", "PUT upload"}; !slices.Equal(got, want) {
		t.Errorf("first push wrote %v, want %v", got, want)
	}
	if tags := directStore(t, r).tags("shop"); len(tags) != 0 {
		t.Fatalf("tags %v after a push that failed on the layer", tags)
	}

	res, err := retryClient(once).Push(ctx, b, ref)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"POST upload", "PUT upload", "PUT manifest " + b.Digest().String(), "PUT manifest 1.0.0"}
	if got := proxyWrites(p.TakeLog()); !slices.Equal(got, want) {
		t.Errorf("second push wrote %v, want %v", got, want)
	}
	if res.BlobsPushed != 1 || res.BlobsSkipped != 1 || res.BytesPushed != b.LayerDescriptor.Size+b.Descriptor.Size {
		t.Errorf("second push: %+v", res)
	}
	if d, err := directStore(t, r).release("shop", "1.0.0"); err != nil || d != b.Digest() {
		t.Errorf("release 1.0.0: %s, %v", d, err)
	}
}

// Pull verifies every byte: a download cut short is fetched again, a
// corrupted one is refused at once, and nothing comes back on failure.
func TestPullUnderFaults(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	b := bigBundle(t, 512<<10)
	if _, err := plainClient().Push(ctx, b, distRef(t, r, "shop:1.0.0")); err != nil {
		t.Fatal(err)
	}
	layerGet := func(q faultproxy.Request) bool {
		return q.Method == http.MethodGet && strings.HasSuffix(q.Path, "/blobs/"+b.LayerDescriptor.Digest.String())
	}
	countGets := func(log []faultproxy.Entry) int {
		n := 0
		for _, e := range log {
			if layerGet(e.Request) {
				n++
			}
		}
		return n
	}

	t.Run("cut twice", func(t *testing.T) {
		p := faultproxy.Start(t, r.Host(), faultproxy.Match(layerGet, 2, faultproxy.Fault{Kind: faultproxy.ResetResponse}))
		got, err := retryClient(fastRetry).Pull(ctx, proxyRef(t, p, "shop:1.0.0"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest() != b.Digest() || string(got.Layer) != string(b.Layer) {
			t.Error("pulled another bundle")
		}
		if n := countGets(p.Log()); n < 3 {
			t.Errorf("%d GETs of the layer, want 3 or more", n)
		}
	})
	t.Run("corrupted", func(t *testing.T) {
		p := faultproxy.Start(t, r.Host(), faultproxy.Match(layerGet, -1, faultproxy.Fault{Kind: faultproxy.Corrupt}))
		got, err := retryClient(fastRetry).Pull(ctx, proxyRef(t, p, "shop:1.0.0"))
		var dm *bundles.DigestMismatchError
		if got != nil || !errors.Is(err, registry.ErrDigestMismatch) || !errors.As(err, &dm) || dm.Blob != "layer" {
			t.Fatalf("pull = %v, %v; want nothing and a digest mismatch on the layer", got, err)
		}
		if n := countGets(p.Log()); n != 1 {
			t.Errorf("%d GETs of the layer: a digest mismatch is not retried", n)
		}
	})
	t.Run("cut every time", func(t *testing.T) {
		p := faultproxy.Start(t, r.Host(), faultproxy.Match(layerGet, -1, faultproxy.Fault{Kind: faultproxy.ResetResponse}))
		got, err := retryClient(fastRetry).Pull(ctx, proxyRef(t, p, "shop:1.0.0"))
		var re *registry.RetryError
		if got != nil || !errors.As(err, &re) || !strings.Contains(err.Error(), "fetching layer "+b.LayerDescriptor.Digest.String()+": gave up after 5 attempts") {
			t.Fatalf("pull = %v, %v; want nothing and giving up on the layer", got, err)
		}
	})
}

// The numbers for the report: N pushes of distinct small bundles through
// a proxy injecting a fault into a fixed share of the requests, from a
// fixed seed. Some pushes fail; what must never happen is a tag naming a
// manifest whose blobs are missing or wrong.
func TestFaultInjectionFigures(t *testing.T) {
	const (
		n    = 200
		rate = 0.2
		seed = 1
	)
	ctx := t.Context()
	r := testregistry.Start(t)
	s := directStore(t, r)
	faults := []faultproxy.Fault{
		{Kind: faultproxy.Status, Status: 500},
		{Kind: faultproxy.Status, Status: 503},
		{Kind: faultproxy.RateLimit, RetryAfter: "0"},
		{Kind: faultproxy.ResetRequest},
		{Kind: faultproxy.ResetResponse},
		{Kind: faultproxy.Delay, Delay: time.Minute},
		{Kind: faultproxy.Down},
	}
	p := faultproxy.Start(t, r.Host(), faultproxy.Random(seed, rate, faults...))
	c := retryClient(registry.RetryOptions{MaxTime: 10 * time.Second, MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 4 * time.Millisecond, ResponseTimeout: 50 * time.Millisecond})

	var succeeded, failedCleanly, corrupted int
	causes := map[string]int{}
	pushed := map[string]digest.Digest{}
	for i := range n {
		if err := p.Up(); err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("1.0.%d", i)
		b := testBundle(t, tag, i)
		pushed[tag] = b.Digest()
		before := len(p.Log())
		_, err := c.Push(ctx, b, proxyRef(t, p, "figures:"+tag), "latest")
		if err == nil {
			succeeded++
			if d, rerr := s.release("figures", tag); rerr != nil || d != b.Digest() {
				t.Errorf("push %d succeeded but %s is %s: %v", i, tag, d, rerr)
			}
			continue
		}
		var re *registry.Error
		if !errors.As(err, &re) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), p.Host()) {
			t.Errorf("push %d: err = %q, want a one-line *registry.Error naming the registry", i, err)
		}
		causes[cause(err)]++
		// A failed push leaves its tags absent or complete.
		clean := true
		for _, tg := range []string{tag, "latest"} {
			if !slices.Contains(s.tags("figures"), tg) {
				continue
			}
			if _, rerr := s.release("figures", tg); rerr != nil && !errors.Is(rerr, errAbsent) {
				t.Errorf("push %d failed (%v) and left a corrupted release: %v", i, err, rerr)
				for _, e := range p.Log()[before:] {
					t.Logf("request %v", e)
				}
				clean = false
			}
		}
		if clean {
			failedCleanly++
		}
	}

	// Every tag in the end, whichever push wrote it.
	for _, tag := range s.tags("figures") {
		d, err := s.release("figures", tag)
		switch {
		case errors.Is(err, errAbsent):
		case err != nil:
			corrupted++
			t.Errorf("corrupted release: %v", err)
		case tag != "latest" && d != pushed[tag]:
			corrupted++
			t.Errorf("tag %s names %s, pushed %s", tag, d, pushed[tag])
		}
	}
	log := p.Log()
	injected := map[string]int{}
	for _, e := range log {
		if e.Fault.Kind != faultproxy.Pass {
			injected[e.Fault.String()]++
		}
	}
	t.Logf("fault injection: %d pushes, %.0f%% of requests faulted (seed %d): %d succeeded, %d failed cleanly, %d corrupted releases", n, rate*100, seed, succeeded, failedCleanly, corrupted)
	t.Logf("requests: %d, faults injected: %d %v", len(log), countFaults(log), injected)
	t.Logf("failures by last cause: %v", causes)
	if corrupted != 0 {
		t.Errorf("%d corrupted releases, want 0", corrupted)
	}
	if succeeded+failedCleanly != n {
		t.Errorf("%d succeeded + %d failed cleanly != %d pushes", succeeded, failedCleanly, n)
	}
	if succeeded == 0 || succeeded == n {
		t.Errorf("%d of %d pushes succeeded: the fault rate proves nothing", succeeded, n)
	}
}

func countFaults(log []faultproxy.Entry) int {
	n := 0
	for _, e := range log {
		if e.Fault.Kind != faultproxy.Pass {
			n++
		}
	}
	return n
}

// cause names the kind of a push failure for the figures.
func cause(err error) string {
	msg := err.Error()
	var re *registry.RetryError
	prefix := ""
	if errors.As(err, &re) {
		prefix = "gave up: "
	}
	for _, c := range []string{"HTTP 500", "HTTP 503", "HTTP 429", "connection refused", "connection reset", "dropped the connection", "timed out"} {
		if strings.Contains(msg, c) {
			return prefix + c
		}
	}
	return prefix + "other: " + msg
}
