package charts

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// maxIndexSize bounds a repository's index.yaml. Big public repositories
// (bitnami's) have indexes of tens of megabytes.
const maxIndexSize = 256 << 20

// repoIndex is the part of a Helm repository's index.yaml galley reads.
type repoIndex struct {
	APIVersion string                    `json:"apiVersion"`
	Entries    map[string][]repoChartRef `json:"entries"`
}

type repoChartRef struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	// Digest is the sha256 of the archive, in hex (helm repo index writes
	// it without an algorithm prefix).
	Digest string `json:"digest"`
}

func (r *Resolver) resolveRepo(ctx context.Context, src Source, c constraint) (Entry, string, error) {
	indexURL := src.Repository + "/index.yaml"
	r.progress("reading %s", indexURL)
	data, err := r.get(ctx, indexURL, maxIndexSize)
	if err != nil {
		return Entry{}, "", fmt.Errorf("chart %s: reading the repository index: %w", src, err)
	}
	var idx repoIndex
	if err := yaml.Unmarshal(data, &idx); err != nil {
		return Entry{}, "", fmt.Errorf("chart %s: %s is not a Helm repository index: %w", src, indexURL, err)
	}
	if idx.APIVersion == "" || idx.Entries == nil {
		return Entry{}, "", fmt.Errorf("chart %s: %s is not a Helm repository index (no apiVersion or entries)", src, indexURL)
	}
	refs := idx.Entries[src.Name]
	if len(refs) == 0 {
		return Entry{}, "", kinded(ErrNoVersion, "chart %s: the repository has no chart %s (its index lists %d charts)", src, src.Name, len(idx.Entries))
	}
	versions := make([]string, len(refs))
	for i, ref := range refs {
		versions[i] = ref.Version
	}
	i := c.best(versions)
	if i < 0 {
		return Entry{}, "", kinded(ErrNoVersion, "chart %s: no version matches %q (%s)", src, src.Constraint, describeVersions(versions))
	}
	ref := refs[i]
	if ref.Name != "" && ref.Name != src.Name {
		return Entry{}, "", fmt.Errorf("chart %s: the index lists %s %s under %s", src, ref.Name, ref.Version, src.Name)
	}
	if len(ref.URLs) == 0 {
		return Entry{}, "", fmt.Errorf("chart %s: the index gives no URL for version %s", src, ref.Version)
	}
	chartURL, err := resolveURL(src.Repository, ref.URLs[0])
	if err != nil {
		return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, ref.Version, err)
	}
	indexDigest, err := normalizeDigest(ref.Digest)
	if err != nil {
		return Entry{}, "", fmt.Errorf("chart %s %s: index.yaml: %w", src, ref.Version, err)
	}

	cache, err := r.store()
	if err != nil {
		return Entry{}, "", err
	}
	// The index's digest, when it has one, finds the chart in the cache
	// without downloading it again.
	digest, p, ok := indexDigest, "", false
	if digest != "" {
		if p, ok, err = cache.Get(digest); err != nil {
			return Entry{}, "", err
		}
	}
	if !ok {
		r.progress("fetching %s %s from %s", src.Name, ref.Version, chartURL)
		data, err := r.get(ctx, chartURL, maxChartSize)
		if err != nil {
			return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, ref.Version, err)
		}
		digest = bytesDigest(data)
		if indexDigest != "" && digest != indexDigest {
			return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, ref.Version,
				&MismatchError{What: "downloaded chart", Path: chartURL, Want: indexDigest, Got: digest, Hint: "the repository's index.yaml names another archive"})
		}
		if p, err = cache.Put(digest, data); err != nil {
			return Entry{}, "", err
		}
	}
	e := Entry{
		Name: src.Name, Repository: src.Repository, Constraint: src.Constraint,
		Keyring: keyringFingerprint(src),
		Version: ref.Version, URL: chartURL, Digest: digest,
	}
	if src.Keyring != nil {
		e.Provenance = provURL(chartURL)
		prov, err := r.get(ctx, e.Provenance, maxProvSize)
		if err != nil {
			return Entry{}, "", kinded(ErrNotSigned, "chart %s %s: the stack asks for a provenance signature: %w", src, ref.Version, err)
		}
		if err := verifyProvenance(src.Keyring, p, path.Base(urlPath(chartURL)), prov); err != nil {
			return Entry{}, "", fmt.Errorf("chart %s %s: %w", src, ref.Version, err)
		}
	}
	return e, p, nil
}

// provURL is where a repository keeps an archive's provenance file:
// beside it, named <archive>.prov.
func provURL(chartURL string) string {
	u, err := url.Parse(chartURL)
	if err != nil {
		return chartURL + ".prov"
	}
	u.Path += ".prov"
	u.RawPath = ""
	return u.String()
}

// urlPath is the path of a URL, for the archive name a provenance file
// names it by.
func urlPath(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	return parsed.Path
}

// fetchRepo downloads e's chart from the URL the lock records.
func (r *Resolver) fetchRepo(ctx context.Context, e Entry, cache *Cache) (string, error) {
	data, err := r.get(ctx, e.URL, maxChartSize)
	if err != nil {
		return "", fmt.Errorf("fetching chart %s %s: %w", e.Name, e.Version, err)
	}
	if got := bytesDigest(data); got != e.Digest {
		return "", fmt.Errorf("fetching chart %s %s: %w", e.Name, e.Version,
			&MismatchError{What: "downloaded chart", Path: e.URL, Want: e.Digest, Got: got, Hint: "the repository now serves other content for a locked version"})
	}
	return cache.Put(e.Digest, data)
}

var hexDigest = regexp.MustCompile(`^[a-f0-9]{64}$`)

// normalizeDigest turns an index digest (hex, or sha256:hex) into
// "sha256:<hex>"; "" stays "" (the index has none).
func normalizeDigest(d string) (string, error) {
	d = strings.ToLower(strings.TrimSpace(d))
	if d == "" {
		return "", nil
	}
	hex := strings.TrimPrefix(d, "sha256:")
	if !hexDigest.MatchString(hex) {
		return "", fmt.Errorf("digest %q is not a sha256 digest", d)
	}
	return "sha256:" + hex, nil
}

// resolveURL resolves a chart URL from an index against the repository
// URL, as helm does: relative URLs are relative to the repository
// directory.
func resolveURL(repo, ref string) (string, error) {
	base, err := url.Parse(repo + "/")
	if err != nil {
		return "", fmt.Errorf("repository URL %q: %w", repo, err)
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("chart URL %q in index.yaml: %w", ref, err)
	}
	abs := base.ResolveReference(u)
	if abs.Scheme != "http" && abs.Scheme != "https" {
		return "", fmt.Errorf("chart URL %q in index.yaml is not http(s)", ref)
	}
	return abs.String(), nil
}

// get downloads rawURL, at most limit bytes. Basic auth credentials for
// the URL's host (from Options.Credential, i.e. the Docker config) are
// sent over HTTPS, or over plain HTTP to a loopback address only; Go's
// client drops them on a redirect to another host.
func (r *Resolver) get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	if r.o.UserAgent != "" {
		req.Header.Set("User-Agent", r.o.UserAgent)
	}
	withCreds := false
	if r.o.Credential != nil {
		cred, err := r.o.Credential(ctx, u.Host)
		if err != nil {
			return nil, fmt.Errorf("reading credentials for %s: %w", u.Host, err)
		}
		if cred.Username != "" || cred.Password != "" {
			if u.Scheme != "https" && !isLoopback(u.Hostname()) {
				return nil, fmt.Errorf("refusing to send the credentials for %s over plain HTTP: use an https:// repository URL", u.Host)
			}
			req.SetBasicAuth(cred.Username, cred.Password)
			withCreds = true
		}
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redactURL(u), err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized && withCreds:
		return nil, fmt.Errorf("GET %s: unauthorized: %s rejected the credentials from the Docker config (HTTP 401)", redactURL(u), u.Host)
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("GET %s: unauthorized: %s wants credentials (HTTP 401); add them for %s to the Docker config (docker login %s, or an \"auths\" entry)", redactURL(u), u.Host, u.Host, u.Host)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: not found (HTTP 404)", redactURL(u))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: HTTP %d %s", redactURL(u), resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("GET %s: %d bytes, over the %d byte limit", redactURL(u), resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redactURL(u), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("GET %s: over the %d byte limit", redactURL(u), limit)
	}
	return data, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops credentials and the query (which may carry a token)
// from a URL shown in a message.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}
