package compiler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/galley-dev/galley/compiler/kustomize"
	"github.com/galley-dev/galley/compiler/manifest"
	"github.com/galley-dev/galley/compiler/stack"
)

// An app entry is an app's finished objects: rendered, patched, checked
// and printed as they go into the bundle. A warm build then skips parsing
// the render, kustomize and printing, most of its time. Entries are only
// stored for apps whose renders agreed and whose checks passed, and the key
// holds everything those depend on besides the render (the kustomize
// options and the secrets policy), so a hit can skip them too. Checks
// across apps (collisions) read the facts stored with each object and
// still run.
//
// The file is the magic line, the length of the JSON header (8 bytes, big
// endian), the header, then every object's YAML back to back. Reading it
// needs no unescaping, and the header's checksum of the YAML turns a
// damaged entry into a miss.
const appCacheFormat = "galley-app-v2\n"

type appEntryHeader struct {
	Key     string           `json:"key"`
	Sum     string           `json:"sum"`
	Objects []appEntryObject `json:"objects"`
}

type appEntryObject struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name"`
	Source     string    `json:"source"`
	Images     []string  `json:"images,omitempty"`
	CRD        *crdFacts `json:"crd,omitempty"`
	PreHook    bool      `json:"preHook,omitempty"`
	Size       int       `json:"size"`
}

// cachingApps serves an app's finished objects from its app entry, and
// stores those of inner for apps whose checks passed.
type cachingApps struct {
	inner appRenderer
	cache *renderCache
}

var _ appRenderer = cachingApps{}

func (c cachingApps) renderApp(ctx context.Context, j *appJob) (*renderedApp, error) {
	renderKey, err := c.cache.key(j.chart, j.req)
	if err != nil {
		return nil, err
	}
	key, err := c.cache.appKey(renderKey, j.ko, j.app.Secrets, j.marks)
	if err != nil {
		return nil, err
	}
	if objs, ok := c.cache.getApp(key); ok {
		return &renderedApp{app: j.app, chart: j.chart, cached: true, objects: objs}, nil
	}
	r, err := c.inner.renderApp(ctx, j)
	if err == nil {
		c.cache.putApp(key, r.objects)
	}
	return r, err
}

// appKey is the key of an app's entry: the render key and what turns the
// render into the app's objects.
func (c *renderCache) appKey(renderKey string, ko kustomize.Options, secrets stack.SecretPolicy, marks deliveryMarks) (string, error) {
	b, err := json.Marshal(struct {
		Format, Render string
		Kustomize      kustomize.Options
		Secrets        stack.SecretPolicy
		Marks          deliveryMarks
	}{appCacheFormat, renderKey, ko, secrets, marks})
	if err != nil {
		return "", fmt.Errorf("computing app cache key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func (c *renderCache) appPath(key string) string {
	return filepath.Join(c.root, "app", key[:2], key+".app")
}

// getApp returns an app's cached objects, if there is a sound entry. Their
// Body is nil: YAML and Images answer from the entry.
func (c *renderCache) getApp(key string) ([]*Object, bool) {
	b, err := os.ReadFile(c.appPath(key))
	if err != nil {
		return nil, false
	}
	objs, ok := decodeAppEntry(key, b)
	return objs, ok
}

func decodeAppEntry(key string, b []byte) ([]*Object, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(appCacheFormat))
	if !ok || len(rest) < 8 {
		return nil, false
	}
	n := binary.BigEndian.Uint64(rest)
	rest = rest[8:]
	if n > uint64(len(rest)) {
		return nil, false
	}
	var h appEntryHeader
	if err := json.Unmarshal(rest[:n], &h); err != nil || h.Key != key {
		return nil, false
	}
	blob := rest[n:]
	sum := sha256.Sum256(blob)
	if h.Sum != hex.EncodeToString(sum[:]) {
		return nil, false
	}
	objs := make([]*Object, len(h.Objects))
	for i, e := range h.Objects {
		if e.Size < 0 || e.Size > len(blob) {
			return nil, false
		}
		id := manifest.Object{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name, Source: e.Source}
		objs[i] = &Object{Object: *manifest.FromCache(id, blob[:e.Size:e.Size], e.Images), crd: e.CRD, preHook: e.PreHook}
		blob = blob[e.Size:]
	}
	if len(blob) != 0 {
		return nil, false
	}
	return objs, true
}

// putApp stores an app's finished objects, printing each one; the printed
// YAML stays with the object so that the build does not print it again.
// Failing to cache is not failing to build.
func (c *renderCache) putApp(key string, objs []*Object) {
	h := appEntryHeader{Key: key, Objects: make([]appEntryObject, len(objs))}
	var blob bytes.Buffer
	for i, o := range objs {
		y, err := o.Print()
		if err != nil {
			return // the build reports it when it writes the object
		}
		h.Objects[i] = appEntryObject{
			APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Source: o.Source,
			Images: o.Images(), CRD: o.crdFacts(), PreHook: o.preHook, Size: len(y),
		}
		blob.Write(y)
	}
	sum := sha256.Sum256(blob.Bytes())
	h.Sum = hex.EncodeToString(sum[:])
	hb, err := json.Marshal(h)
	if err != nil {
		return
	}
	var out bytes.Buffer
	out.Grow(len(appCacheFormat) + 8 + len(hb) + blob.Len())
	out.WriteString(appCacheFormat)
	out.Write(binary.BigEndian.AppendUint64(nil, uint64(len(hb))))
	out.Write(hb)
	out.Write(blob.Bytes())
	c.writeFile(c.appPath(key), out.Bytes())
}

// writeFile writes an entry through a temporary file and a rename, so that
// readers never see half of one.
func (c *renderCache) writeFile(p string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), p) != nil {
		os.Remove(f.Name())
	}
}

// A layer entry is a compressed bundle layer, found by the digest of its
// uncompressed tar (see bundles.LayerCache). The key holds galley's
// identity too: another galley may compress differently. The file is the
// magic line, the key and the layer's digest on a line each, then the
// layer; a layer that does not match its digest is a miss.
const layerCacheFormat = "galley-layer-v1\n"

func (c *renderCache) layerPath(tar digest.Digest) string {
	sum := sha256.Sum256([]byte(layerCacheFormat + c.galley + "\n" + tar.String()))
	key := hex.EncodeToString(sum[:])
	return filepath.Join(c.root, "layer", key[:2], key+".layer")
}

// GetLayer implements bundles.LayerCache.
func (c *renderCache) GetLayer(tar digest.Digest) ([]byte, bool) {
	b, err := os.ReadFile(c.layerPath(tar))
	if err != nil {
		return nil, false
	}
	rest, ok := bytes.CutPrefix(b, []byte(layerCacheFormat))
	if !ok {
		return nil, false
	}
	key, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || string(key) != c.galley+" "+tar.String() {
		return nil, false
	}
	want, layer, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || digest.FromBytes(layer).String() != string(want) {
		return nil, false
	}
	return layer, true
}

// PutLayer implements bundles.LayerCache.
func (c *renderCache) PutLayer(tar digest.Digest, layer []byte) {
	var b bytes.Buffer
	b.Grow(len(layerCacheFormat) + len(c.galley) + 200 + len(layer))
	b.WriteString(layerCacheFormat)
	b.WriteString(c.galley + " " + tar.String() + "\n")
	b.WriteString(digest.FromBytes(layer).String() + "\n")
	b.Write(layer)
	c.writeFile(c.layerPath(tar), b.Bytes())
}

// An alert-tests entry is an empty file whose name digests a run of the
// built-in alert tests that passed (alerts.PassedTests) and galley's
// identity: another galley may evaluate rules differently.
func (c *renderCache) alertTestsPath(key string) string {
	sum := sha256.Sum256([]byte("galley-alerttests-v1\n" + c.galley + "\n" + key))
	k := hex.EncodeToString(sum[:])
	return filepath.Join(c.root, "alerttests", k[:2], k)
}

// Passed reports whether the run named key passed before.
func (c *renderCache) Passed(key string) bool {
	_, err := os.Stat(c.alertTestsPath(key))
	return err == nil
}

// RecordPass remembers that the run named key passed.
func (c *renderCache) RecordPass(key string) {
	c.writeFile(c.alertTestsPath(key), nil)
}
