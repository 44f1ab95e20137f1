package charts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Helm's OCI media types (helm.sh/helm/v4/pkg/registry), kept here so the
// compiler does not link Helm's registry client.
const (
	ConfigMediaType       = "application/vnd.cncf.helm.config.v1+json"
	ChartLayerMediaType   = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	ProvLayerMediaType    = "application/vnd.cncf.helm.chart.provenance.v1.prov"
	legacyChartLayerMedia = "application/tar+gzip"
)

// maxManifestSize bounds a chart manifest; Helm's are a few hundred bytes.
const maxManifestSize = 4 << 20

// maxProvSize bounds a provenance file, a page of signed text.
const maxProvSize = 1 << 20

func (r *Resolver) ociRepository(oci string) (*remote.Repository, error) {
	repo, err := remote.NewRepository(strings.TrimPrefix(oci, "oci://"))
	if err != nil {
		return nil, fmt.Errorf("chart reference %s: %w", oci, err)
	}
	repo.Client = r.auth
	repo.PlainHTTP = r.o.PlainHTTP
	// A hostile registry must not page tags forever.
	repo.TagListMaxPages = 1000
	return repo, nil
}

// ociTag is the tag Helm pushes a chart version as: OCI tags cannot hold
// "+", so build metadata is written with "_".
func ociTag(version string) string { return strings.ReplaceAll(version, "+", "_") }

func (r *Resolver) resolveOCI(ctx context.Context, src Source, c constraint) (Entry, string, error) {
	repo, err := r.ociRepository(src.OCI)
	if err != nil {
		return Entry{}, "", err
	}
	tag := ""
	if c.exact != nil {
		tag = ociTag(c.text)
	} else {
		r.progress("listing versions of %s", src.OCI)
		var tags []string
		err := repo.Tags(ctx, "", func(ts []string) error {
			tags = append(tags, ts...)
			return nil
		})
		if err != nil {
			return Entry{}, "", fmt.Errorf("listing versions of chart %s: %w", src, r.ociError(err, src.OCI, "repository"))
		}
		versions := make([]string, len(tags))
		for i, t := range tags {
			versions[i] = strings.ReplaceAll(t, "_", "+")
		}
		i := c.best(versions)
		if i < 0 {
			return Entry{}, "", kinded(ErrNoVersion, "chart %s: no version matches %q (%s)", src, src.Constraint, describeVersions(versions))
		}
		tag = tags[i]
	}
	version := strings.ReplaceAll(tag, "_", "+")

	r.progress("resolving %s %s", src.OCI, version)
	mdesc, layer, prov, err := r.chartManifest(ctx, repo, src.OCI, tag)
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) && c.exact != nil {
			return Entry{}, "", kinded(ErrNoVersion, "chart %s: %w", src, err)
		}
		return Entry{}, "", fmt.Errorf("chart %s: %w", src, err)
	}
	e := Entry{
		Name: src.Name, OCI: src.OCI, Constraint: src.Constraint,
		Key: keyFingerprint(src), Keyring: keyringFingerprint(src),
		Version: version, Manifest: mdesc.Digest.String(), Digest: layer.Digest.String(),
	}
	if src.Key != nil {
		if err := r.verifyCosign(ctx, repo, src.OCI, mdesc.Digest, src.Key); err != nil {
			return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, version, err)
		}
	}
	cache, err := r.store()
	if err != nil {
		return Entry{}, "", err
	}
	path, ok, err := cache.Get(e.Digest)
	if err != nil {
		return Entry{}, "", err
	}
	if !ok {
		r.progress("fetching %s %s from %s", src.Name, version, src.OCI)
		if path, err = r.fetchLayer(ctx, repo, src.OCI, layer, cache); err != nil {
			return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, version, err)
		}
	}
	if src.Keyring != nil {
		if prov == nil {
			return Entry{}, "", kinded(ErrNotSigned, "chart %s %s: the stack asks for a provenance signature, but the chart's manifest has no %s layer (push it with the .prov file beside the .tgz)", src, version, ProvLayerMediaType)
		}
		if prov.Size > maxProvSize {
			return Entry{}, "", fmt.Errorf("chart %s %s: provenance layer of %d bytes is over %d", src, version, prov.Size, maxProvSize)
		}
		provData, err := content.FetchAll(ctx, repo.Blobs(), *prov)
		if err != nil {
			return Entry{}, "", fmt.Errorf("chart %s %s: fetching provenance: %w", src, version, r.ociError(err, src.OCI, "provenance "+prov.Digest.String()))
		}
		if err := verifyProvenance(src.Keyring, path, src.Name+"-"+version+".tgz", provData); err != nil {
			return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, version, err)
		}
	}
	return e, path, nil
}

// chartManifest fetches the manifest ref (a tag or digest) names and finds
// its chart layer and, if any, its provenance layer.
func (r *Resolver) chartManifest(ctx context.Context, repo *remote.Repository, oci, ref string) (ocispec.Descriptor, ocispec.Descriptor, *ocispec.Descriptor, error) {
	var none ocispec.Descriptor
	mdesc, b, err := oras.FetchBytes(ctx, repo, ref, oras.FetchBytesOptions{MaxBytes: maxManifestSize})
	if err != nil {
		what := "version " + strings.ReplaceAll(ref, "_", "+")
		if strings.HasPrefix(ref, "sha256:") {
			what = "manifest " + ref
		}
		return none, none, nil, r.ociError(err, oci, what)
	}
	if mdesc.MediaType != ocispec.MediaTypeImageManifest {
		return none, none, nil, fmt.Errorf("%s:%s is a %s, not a Helm chart (an OCI image manifest)", oci, ref, mdesc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return none, none, nil, fmt.Errorf("%s:%s: reading manifest: %w", oci, ref, err)
	}
	if m.Config.MediaType != ConfigMediaType {
		return none, none, nil, fmt.Errorf("%s:%s is not a Helm chart: its config is %q, not %s", oci, ref, m.Config.MediaType, ConfigMediaType)
	}
	var layers []ocispec.Descriptor
	var prov *ocispec.Descriptor
	for i, l := range m.Layers {
		switch l.MediaType {
		case ChartLayerMediaType, legacyChartLayerMedia:
			layers = append(layers, l)
		case ProvLayerMediaType:
			prov = &m.Layers[i]
		}
	}
	if len(layers) != 1 {
		return none, none, nil, fmt.Errorf("%s:%s is not a Helm chart: %d layers of type %s, want one", oci, ref, len(layers), ChartLayerMediaType)
	}
	if err := layers[0].Digest.Validate(); err != nil || layers[0].Digest.Algorithm() != digest.SHA256 {
		return none, none, nil, fmt.Errorf("%s:%s: chart layer digest %q is not a sha256 digest", oci, ref, layers[0].Digest)
	}
	return mdesc, layers[0], prov, nil
}

// fetchLayer downloads a chart layer into the cache.
func (r *Resolver) fetchLayer(ctx context.Context, repo *remote.Repository, oci string, layer ocispec.Descriptor, cache *Cache) (string, error) {
	if layer.Size > maxChartSize || layer.Size < 0 {
		return "", fmt.Errorf("chart layer of %d bytes is over %d", layer.Size, maxChartSize)
	}
	// FetchAll checks the size and the digest.
	data, err := content.FetchAll(ctx, repo.Blobs(), layer)
	if err != nil {
		return "", fmt.Errorf("fetching chart layer: %w", r.ociError(err, oci, "chart layer "+layer.Digest.String()))
	}
	return cache.Put(layer.Digest.String(), data)
}

// fetchOCI downloads e's chart by the manifest digest the lock records,
// never by tag: a tag moved since does not matter.
func (r *Resolver) fetchOCI(ctx context.Context, e Entry, cache *Cache) (string, error) {
	repo, err := r.ociRepository(e.OCI)
	if err != nil {
		return "", err
	}
	_, layer, _, err := r.chartManifest(ctx, repo, e.OCI, e.Manifest)
	if err != nil {
		return "", fmt.Errorf("fetching chart %s %s: %w", e.Name, e.Version, err)
	}
	if layer.Digest.String() != e.Digest {
		return "", kinded(ErrDigestMismatch, "fetching chart %s %s: manifest %s names chart layer %s, but %s locks %s",
			e.Name, e.Version, e.Manifest, layer.Digest, LockFile, e.Digest)
	}
	p, err := r.fetchLayer(ctx, repo, e.OCI, layer, cache)
	if err != nil {
		return "", fmt.Errorf("fetching chart %s %s: %w", e.Name, e.Version, err)
	}
	return p, nil
}

// ociError says in one line why a registry request failed, keeping the
// original error for errors.Is and errors.As.
func (r *Resolver) ociError(err error, oci, what string) error {
	host := strings.TrimPrefix(oci, "oci://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	clean := func(format string, args ...any) error {
		return &cleanError{msg: fmt.Sprintf(format, args...), errs: []error{err}}
	}
	unauthorized := func() error {
		if r.sentCredentials.Load() {
			return clean("unauthorized: %s rejected the credentials from the Docker config for %s (HTTP 401)", host, oci)
		}
		return clean("unauthorized: %s wants credentials for %s (HTTP 401); log in with `docker login %s` (galley reads the Docker config and its credential helpers)", host, oci, host)
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return unauthorized()
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return unauthorized()
		case http.StatusForbidden:
			return clean("denied: no permission to read %s (HTTP 403)", oci)
		case http.StatusNotFound:
			for _, e := range resp.Errors {
				if e.Code == errcode.ErrorCodeNameUnknown {
					return &cleanError{msg: fmt.Sprintf("repository %s not found", oci), errs: []error{errdef.ErrNotFound, err}}
				}
			}
			return &cleanError{msg: fmt.Sprintf("%s not found in %s", what, oci), errs: []error{errdef.ErrNotFound, err}}
		}
	}
	if errors.Is(err, errdef.ErrNotFound) {
		return clean("%s not found in %s", what, oci)
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return clean("registry %s speaks plain HTTP: allow it with --plain-http (local registries only)", host)
	}
	return err
}

// cleanError is a one-line message that still unwraps to the errors
// behind it.
type cleanError struct {
	msg  string
	errs []error
}

func (e *cleanError) Error() string   { return e.msg }
func (e *cleanError) Unwrap() []error { return e.errs }

// describeVersions lists the latest few versions for an error message.
func describeVersions(all []string) string {
	var versions []string
	var parsed []*semver.Version
	for _, s := range all {
		if v, err := semver.NewVersion(s); err == nil {
			versions, parsed = append(versions, s), append(parsed, v)
		}
	}
	if len(versions) == 0 {
		return "there are no versions"
	}
	idx := make([]int, len(versions))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return parsed[idx[a]].GreaterThan(parsed[idx[b]]) })
	sorted := make([]string, len(idx))
	for i, j := range idx {
		sorted[i] = versions[j]
	}
	versions = sorted
	const show = 8
	s := "versions: " + strings.Join(versions[:min(show, len(versions))], ", ")
	if len(versions) > show {
		s += fmt.Sprintf(" and %d more", len(versions)-show)
	}
	return s
}
