package faultproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galley-dev/galley/internal/faultproxy"
)

// body is what the upstream answers to every GET: big enough that half of
// it is a partial body the client can tell from the whole.
var body = bytes.Repeat([]byte("0123456789abcdef"), 4096)

// upstream answers GET with body and records the size of what it was
// sent with PUT; a truncated upload shows as an error.
func upstream(t *testing.T) (string, <-chan string) {
	t.Helper()
	puts := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPut:
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				puts <- "truncated"
				return
			}
			puts <- "complete"
			w.Header().Set("Location", "http://"+r.Host+r.URL.Path)
			w.WriteHeader(http.StatusCreated)
			_ = n
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), puts
}

func get(t *testing.T, p *faultproxy.Proxy, path string) (*http.Response, []byte, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.Host() + path)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaults(t *testing.T) {
	up, _ := upstream(t)
	for _, tc := range []struct {
		name   string
		fault  faultproxy.Fault
		check  func(t *testing.T, resp *http.Response, b []byte, err error)
		status int
	}{
		{"pass", faultproxy.Fault{}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || !bytes.Equal(b, body) {
				t.Errorf("got %d bytes, %v; want the body", len(b), err)
			}
		}, 200},
		{"status", faultproxy.Fault{Kind: faultproxy.Status, Status: 502}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || resp.StatusCode != 502 || !strings.Contains(string(b), `"code":"UNAVAILABLE"`) {
				t.Errorf("got %v %q %v", resp, b, err)
			}
		}, 502},
		{"rate limit", faultproxy.Fault{Kind: faultproxy.RateLimit, RetryAfter: "7"}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
				t.Errorf("got %v %v", resp, err)
			}
		}, 429},
		{"reset response", faultproxy.Fault{Kind: faultproxy.ResetResponse}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			// The headers arrive, with the full length; the body stops
			// half-way.
			if resp == nil || resp.StatusCode != 200 || len(b) >= len(body) || !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("got %v, %d bytes, %v; want a 200 cut short", resp, len(b), err)
			}
		}, 200},
		{"stall", faultproxy.Fault{Kind: faultproxy.Stall, Delay: 50 * time.Millisecond}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if resp == nil || resp.StatusCode != 200 || len(b) != len(body)/2 || err == nil {
				t.Errorf("got %v, %d bytes, %v; want half the body, then an error", resp, len(b), err)
			}
		}, 200},
		{"corrupt", faultproxy.Fault{Kind: faultproxy.Corrupt}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || len(b) != len(body) || bytes.Equal(b, body) {
				t.Errorf("got %d bytes, %v; want the body with one byte changed", len(b), err)
			}
		}, 200},
		{"echo", faultproxy.Fault{Kind: faultproxy.Status, Status: 500, Echo: true}, func(t *testing.T, resp *http.Response, b []byte, err error) {
			if err != nil || !strings.Contains(string(b), "User-Agent: Go-http-client") {
				t.Errorf("got %q, %v; want the request headers quoted", b, err)
			}
		}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := faultproxy.Start(t, up, faultproxy.At(1, tc.fault))
			resp, b, err := get(t, p, "/v2/x/blobs/sha256:0")
			tc.check(t, resp, b, err)
			// The fault was for request 1 only.
			if _, b, err := get(t, p, "/v2/x/blobs/sha256:0"); err != nil || !bytes.Equal(b, body) {
				t.Errorf("second request: %d bytes, %v", len(b), err)
			}
			log := p.Log()
			if len(log) != 2 || log[0].Fault != tc.fault || log[0].Status != tc.status || log[1].Status != 200 {
				t.Errorf("log = %v", log)
			}
		})
	}
}

func TestResetRequestTruncatesTheUpload(t *testing.T) {
	up, puts := upstream(t)
	p := faultproxy.Start(t, up, faultproxy.At(1, faultproxy.Fault{Kind: faultproxy.ResetRequest}))
	put := func() error {
		req, err := http.NewRequest(http.MethodPut, "http://"+p.Host()+"/v2/x/blobs/uploads/1", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := put(); err == nil {
		t.Fatal("the reset upload succeeded")
	}
	if got := <-puts; got != "truncated" {
		t.Errorf("upstream saw a %s upload, want truncated", got)
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if got := <-puts; got != "complete" {
		t.Errorf("upstream saw a %s upload, want complete", got)
	}
}

func TestDownAndUp(t *testing.T) {
	up, _ := upstream(t)
	p := faultproxy.Start(t, up, faultproxy.At(2, faultproxy.Fault{Kind: faultproxy.Down}))
	if _, _, err := get(t, p, "/"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(t, p, "/"); err == nil {
		t.Fatal("request 2 got an answer from a proxy going down")
	}
	if _, _, err := get(t, p, "/"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("request after down: %v, want connection refused", err)
	}
	if !p.IsDown() {
		t.Error("IsDown = false")
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	if _, b, err := get(t, p, "/"); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("after Up: %d bytes, %v", len(b), err)
	}
	if n := p.Requests(); n != 3 {
		t.Errorf("Requests = %d, want 3 (the refused one never arrived)", n)
	}
}

func TestDelayEndsWhenTheClientGivesUp(t *testing.T) {
	up, _ := upstream(t)
	p := faultproxy.Start(t, up, faultproxy.At(1, faultproxy.Fault{Kind: faultproxy.Delay, Delay: time.Hour}))
	c := &http.Client{Timeout: 50 * time.Millisecond}
	if _, err := c.Get("http://" + p.Host() + "/"); err == nil {
		t.Fatal("a request delayed by an hour was answered")
	}
	// The proxy is not stuck: the next request is answered.
	if _, b, err := get(t, p, "/"); err != nil || !bytes.Equal(b, body) {
		t.Fatalf("after the delay: %d bytes, %v", len(b), err)
	}
}

// Random depends only on its seed and the order of requests.
func TestRandomIsRepeatable(t *testing.T) {
	faults := []faultproxy.Fault{{Kind: faultproxy.Status}, {Kind: faultproxy.ResetRequest}, {Kind: faultproxy.Delay}}
	draw := func(seed uint64) []faultproxy.Kind {
		r := faultproxy.Random(seed, 0.3, faults...)
		var ks []faultproxy.Kind
		for n := 1; n <= 1000; n++ {
			ks = append(ks, r(faultproxy.Request{N: n}).Kind)
		}
		return ks
	}
	a, b, c := draw(1), draw(1), draw(2)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different faults")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same faults")
	}
	n := 0
	for _, k := range a {
		if k != faultproxy.Pass {
			n++
		}
	}
	// 1000 draws at 30%: far outside 200..400 means the rate is ignored.
	if n < 200 || n > 400 {
		t.Errorf("%d faults in 1000 requests at rate 0.3", n)
	}
}

func TestChainAndMatch(t *testing.T) {
	blobs := func(r faultproxy.Request) bool { return strings.Contains(r.Path, "/blobs/") }
	rule := faultproxy.Chain(
		faultproxy.Match(blobs, 2, faultproxy.Fault{Kind: faultproxy.Status}),
		faultproxy.From(5, faultproxy.Fault{Kind: faultproxy.Down}),
	)
	var got []faultproxy.Kind
	for n, path := range []string{"/v2/", "/v2/x/blobs/a", "/v2/x/manifests/1", "/v2/x/blobs/b", "/v2/x/blobs/c", "/v2/"} {
		got = append(got, rule(faultproxy.Request{N: n + 1, Path: path}).Kind)
	}
	want := []faultproxy.Kind{faultproxy.Pass, faultproxy.Status, faultproxy.Pass, faultproxy.Status, faultproxy.Down, faultproxy.Down}
	if !slices.Equal(got, want) {
		t.Errorf("faults %v, want %v", got, want)
	}
}
