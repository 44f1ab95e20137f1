package charts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxChartSize bounds a chart archive galley downloads or reads: the
// largest helm itself loads (loader.MaxDecompressedChartSize), which no
// compressed archive it accepts can exceed.
const maxChartSize = 100 << 20

// Cache is a content-addressed store of chart archives:
// <dir>/sha256/<hex>.tgz, each named by the sha256 of its bytes. Entries
// are written whole (temporary file, then rename) and checked on every
// read, so a damaged or altered file is found, not used.
type Cache struct {
	dir string
}

// NewCache returns the chart cache in galley's cache directory root, i.e.
// root/charts.
func NewCache(root string) *Cache {
	return &Cache{dir: filepath.Join(root, "charts")}
}

// Path returns where the chart with digest ("sha256:<hex>") is kept,
// whether or not it is there.
func (c *Cache) Path(digest string) string {
	return filepath.Join(c.dir, "sha256", strings.TrimPrefix(digest, "sha256:")+".tgz")
}

// Get returns the path of the cached chart with digest, after checking its
// content; ok is false when it is not cached. A cached file with other
// content is a *MismatchError: it is never replaced silently.
func (c *Cache) Get(digest string) (path string, ok bool, err error) {
	p := c.Path(digest)
	got, err := fileDigest(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading cached chart: %w", err)
	}
	if got != digest {
		return "", false, &MismatchError{What: "cached chart", Path: p, Want: digest, Got: got,
			Hint: "the file changed after galley stored it; delete it to fetch the chart again"}
	}
	return p, true, nil
}

// Put stores data, which must have digest, and returns its path.
func (c *Cache) Put(digest string, data []byte) (string, error) {
	if got := bytesDigest(data); got != digest {
		return "", &MismatchError{What: "downloaded chart", Want: digest, Got: got}
	}
	p := c.Path(digest)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("caching chart: %w", err)
	}
	if err := writeFileAtomic(p, data); err != nil {
		return "", fmt.Errorf("caching chart: %w", err)
	}
	return p, nil
}

// MismatchError is a chart whose bytes are not those its digest names.
type MismatchError struct {
	What string // "cached chart", "vendored chart", "downloaded chart"
	Path string // the file, when there is one
	Want string // the digest galley.lock (or the source) names
	Got  string
	Hint string
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	b.WriteString(e.What)
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	fmt.Fprintf(&b, " has digest %s, not %s", e.Got, e.Want)
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrDigestMismatch }

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxChartSize+1))
	if err != nil {
		return "", err
	}
	if n > maxChartSize {
		return "", fmt.Errorf("%s is over %d bytes", path, maxChartSize)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func bytesDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
