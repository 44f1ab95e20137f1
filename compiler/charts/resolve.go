package charts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/galley-dev/galley/compiler/helm"
)

// Resolver resolves chart sources to lock entries and turns entries into
// loaded charts, from a vendor directory, the cache or the network. It is
// safe for concurrent use. Close it when done: without a CacheDir it keeps
// downloads in a temporary directory.
type Resolver struct {
	o    Options
	http *http.Client
	auth *auth.Client
	// sentCredentials records whether a registry credential was ever
	// offered, so a 401 can say "rejected" rather than "wants".
	sentCredentials atomic.Bool

	cacheOnce sync.Once
	cache     *Cache
	cacheErr  error
	tempDir   string
}

// NewResolver returns a Resolver.
func NewResolver(o Options) *Resolver {
	hc := o.HTTPClient
	if hc == nil {
		hc = retry.NewClient()
	}
	r := &Resolver{o: o, http: hc}
	r.auth = &auth.Client{Client: hc, Cache: auth.NewCache()}
	if o.Credential != nil {
		r.auth.Credential = func(ctx context.Context, host string) (auth.Credential, error) {
			cred, err := o.Credential(ctx, host)
			if err == nil && cred != auth.EmptyCredential {
				r.sentCredentials.Store(true)
			}
			return cred, err
		}
	}
	if o.UserAgent != "" {
		r.auth.SetUserAgent(o.UserAgent)
	}
	return r
}

// Close removes the temporary download directory, if any.
func (r *Resolver) Close() error {
	if r.tempDir != "" {
		return os.RemoveAll(r.tempDir)
	}
	return nil
}

// store returns the chart cache, or a temporary one without CacheDir.
func (r *Resolver) store() (*Cache, error) {
	r.cacheOnce.Do(func() {
		if r.o.CacheDir != "" {
			r.cache = NewCache(r.o.CacheDir)
			return
		}
		d, err := os.MkdirTemp("", "galley-charts-")
		if err != nil {
			r.cacheErr = fmt.Errorf("creating a download directory: %w", err)
			return
		}
		r.tempDir, r.cache = d, NewCache(d)
	})
	return r.cache, r.cacheErr
}

func (r *Resolver) progress(format string, args ...any) {
	if r.o.Progress != nil {
		r.o.Progress(fmt.Sprintf(format, args...))
	}
}

// Resolve finds the version of src its constraint selects, downloads the
// chart into the cache (unless it is there already), checks its signature
// when src asks for one and that it is the chart named, and returns its
// lock entry. pinned, when not nil, is the current lock: a version it
// pins for the same chart with other content is an ErrUpstreamChanged
// error.
func (r *Resolver) Resolve(ctx context.Context, src Source, pinned *Lock) (Entry, error) {
	if r.o.Offline {
		return Entry{}, kinded(ErrOffline, "resolving chart %s needs the network", src)
	}
	c, err := parseConstraint(src.Constraint)
	if err != nil {
		return Entry{}, fmt.Errorf("chart %s: %w", src, err)
	}
	var (
		e    Entry
		path string
	)
	if src.OCI != "" {
		e, path, err = r.resolveOCI(ctx, src, c)
	} else {
		e, path, err = r.resolveRepo(ctx, src, c)
	}
	if err != nil {
		return Entry{}, err
	}
	if prev := pinned.pinned(src, e.Version); prev != nil && prev.Digest != e.Digest {
		return Entry{}, kinded(ErrUpstreamChanged, "chart %s: version %s changed upstream: %s has %s, %s now serves %s; a published version should never change: if you trust the new content, delete the entry from %s and lock again",
			src, e.Version, LockFile, prev.Digest, src.URL(), e.Digest, LockFile)
	}
	ch, err := helm.Load(path)
	if err != nil {
		return Entry{}, fmt.Errorf("chart %s %s: %w", src, e.Version, err)
	}
	if ch.Digest != e.Digest {
		return Entry{}, &MismatchError{What: "chart", Path: path, Want: e.Digest, Got: ch.Digest, Hint: "it changed while galley read it"}
	}
	if ch.Name != src.Name || ch.Version != e.Version {
		return Entry{}, fmt.Errorf("chart %s: %s serves chart %s %s as %s %s", src, src.URL(), ch.Name, ch.Version, src.Name, e.Version)
	}
	return e, nil
}

// Load returns the chart e locks, checked against e.Digest: the copy in
// vendorDir (named by VendorFile) when there is one, else the cached one,
// else one downloaded from where e says (unless Offline) into the cache.
// A copy with other content is an error wrapping ErrDigestMismatch, never
// a reason to download again.
func (r *Resolver) Load(ctx context.Context, e Entry, vendorDir string) (*helm.Chart, error) {
	path, err := r.local(ctx, e, vendorDir)
	if err != nil {
		return nil, err
	}
	ch, err := helm.Load(path)
	if err != nil {
		return nil, err
	}
	// helm.Load digests the bytes it parsed: this closes the window
	// between checking the file and reading it.
	if ch.Digest != e.Digest {
		return nil, &MismatchError{What: "chart", Path: path, Want: e.Digest, Got: ch.Digest, Hint: "it changed while galley read it"}
	}
	if ch.Name != e.Name || ch.Version != e.Version {
		return nil, fmt.Errorf("chart %s is %s %s, but %s locks %s %s", path, ch.Name, ch.Version, LockFile, e.Name, e.Version)
	}
	return ch, nil
}

// local returns a checked local copy of e's chart, fetching it into the
// cache if needed.
func (r *Resolver) local(ctx context.Context, e Entry, vendorDir string) (string, error) {
	if vendorDir != "" {
		p := filepath.Join(vendorDir, VendorFile(e))
		got, err := fileDigest(p)
		switch {
		case err == nil && got == e.Digest:
			return p, nil
		case err == nil:
			return "", &MismatchError{What: "vendored chart", Path: p, Want: e.Digest, Got: got,
				Hint: "run `galley charts vendor` to copy the locked chart again"}
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("reading vendored chart: %w", err)
		}
	}
	cache, err := r.store()
	if err != nil {
		return "", err
	}
	if p, ok, err := cache.Get(e.Digest); err != nil || ok {
		return p, err
	}
	if r.o.Offline {
		where := "the cache"
		if r.o.CacheDir != "" {
			where = "the cache " + cache.dir
		}
		return "", kinded(ErrOffline, "chart %s %s (%s) is neither vendored nor in %s, and fetching is off: run `galley lock` or `galley charts vendor` while online",
			e.Name, e.Version, shortDigest(e.Digest), where)
	}
	r.progress("fetching %s %s from %s", e.Name, e.Version, e.source())
	if e.OCI != "" {
		return r.fetchOCI(ctx, e, cache)
	}
	return r.fetchRepo(ctx, e, cache)
}
