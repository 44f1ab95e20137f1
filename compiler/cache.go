package compiler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/galley-dev/galley/compiler/helm"
)

// renderCache keeps chart renders on disk, keyed by everything that
// decides them: the chart's content digest, the request (values,
// Kubernetes version, API versions, names) and galley itself. Only renders
// that passed the determinism check are stored, so a hit skips both renders.
// Entries are written to a temporary file and renamed, which makes
// concurrent builds safe: the last identical write wins.
type renderCache struct {
	// dir holds the renders; root, the cache directory, holds dir and
	// the app and layer entries (appcache.go) beside it.
	root, dir string
	galley    string
}

// cacheFormat is bumped when the entry format or what goes into a key
// changes, so old entries are never misread.
const cacheFormat = "galley-render-v1"

func newRenderCache(dir, galleyVersion string) *renderCache {
	if dir == "" {
		return nil
	}
	return &renderCache{root: dir, dir: filepath.Join(dir, "render"), galley: galleyIdentity(galleyVersion)}
}

// galleyIdentity names the galley that renders. A released version is its
// version; a development build is the hash of its own executable, so that
// changing galley's code never reuses renders of the old code.
func galleyIdentity(version string) string {
	if version != "" && version != "devel" {
		return version
	}
	return executableHash()
}

var executableHash = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Sum != "" {
		return bi.Main.Path + "@" + bi.Main.Version + "/" + bi.Main.Sum
	}
	exe, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	f, err := os.Open(exe)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unknown"
	}
	return hex.EncodeToString(h.Sum(nil))
})

type cacheEntry struct {
	Key       string          `json:"key"`
	Documents []helm.Document `json:"documents"`
}

func (c *renderCache) key(ch *helm.Chart, req helm.Request) (string, error) {
	// Every field of helm.Request that changes the output, listed so that
	// a new one is a conscious decision (Warn does not).
	b, err := json.Marshal(struct {
		Format, Galley, Chart  string
		ReleaseName, Namespace string
		Values                 map[string]any
		KubeVersion            string
		APIVersions            []string
		IncludeCRDs, Tests     bool
		Now                    *time.Time
	}{cacheFormat, c.galley, ch.Digest, req.ReleaseName, req.Namespace, req.Values,
		req.KubeVersion, req.APIVersions, req.IncludeCRDs, req.KeepTestHooks, req.Now})
	if err != nil {
		return "", fmt.Errorf("computing render cache key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (c *renderCache) path(key string) string {
	return filepath.Join(c.dir, key[:2], key+".json")
}

// get returns the cached render, if there is a sound one. A damaged entry
// is a miss, and is overwritten by the next put.
func (c *renderCache) get(key string) ([]helm.Document, bool) {
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil || e.Key != key {
		return nil, false
	}
	return e.Documents, true
}

// put stores a render. Failing to cache is not failing to build: the
// error is dropped and the next build renders again.
func (c *renderCache) put(key string, docs []helm.Document) {
	b, err := json.Marshal(cacheEntry{Key: key, Documents: docs})
	if err != nil {
		return
	}
	c.writeFile(c.path(key), b)
}

// cachingCharts serves renders from the render cache, and stores the
// renders of inner that passed the determinism check.
type cachingCharts struct {
	inner chartRenderer
	cache *renderCache
}

var _ chartRenderer = cachingCharts{}

func (c cachingCharts) render(ctx context.Context, ch *helm.Chart, req helm.Request) ([]helm.Document, bool, error) {
	key, err := c.cache.key(ch, req)
	if err != nil {
		return nil, false, err
	}
	if docs, ok := c.cache.get(key); ok {
		return docs, true, nil
	}
	docs, _, err := c.inner.render(ctx, ch, req)
	if err == nil {
		c.cache.put(key, docs)
	}
	return docs, false, err
}

// DefaultCacheDir is where galley caches renders: $GALLEY_CACHE_DIR, else
// galley/ in the user's cache directory.
func DefaultCacheDir(getenv func(string) string) (string, error) {
	if d := getenv("GALLEY_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory (set GALLEY_CACHE_DIR): %w", err)
	}
	return filepath.Join(d, "galley"), nil
}
