// Package charts fetches the remote charts a stack names (from OCI
// registries and classic Helm repositories), pins each to an exact version
// and content digest in galley.lock, and keeps them in a content-addressed
// cache so that a locked build never needs the network.
//
// A chart is resolved once, by Lock or by a build with UpdateLock: the
// version range is matched against the registry's tags or the repository's
// index.yaml, the chart archive downloaded, its signature checked when the
// stack asks for one, and the result recorded as an Entry. Every later use
// reads the archive from the stack's vendor/charts/ directory or from the
// cache, and checks it against the entry's digest; a mismatch is an error,
// never a reason to download again.
package charts

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/sigstore/sigstore/pkg/signature"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler/stack"
)

// Sentinel errors, for errors.Is.
var (
	// ErrNotLocked: the stack names a remote chart galley.lock has no
	// entry for; run `galley lock`.
	ErrNotLocked = errors.New("chart not locked")
	// ErrStale: galley.lock has an entry for the chart's source that no
	// longer matches what the stack asks for.
	ErrStale = errors.New("lock entry stale")
	// ErrDigestMismatch: a cached, vendored or downloaded chart is not the
	// one its digest names.
	ErrDigestMismatch = bundles.ErrDigestMismatch
	// ErrUpstreamChanged: a version galley.lock pins is now served with
	// other content.
	ErrUpstreamChanged = errors.New("chart changed upstream")
	// ErrOffline: a chart is neither vendored nor cached, and fetching is
	// not allowed.
	ErrOffline = errors.New("chart not available offline")
	// ErrNoVersion: no version of the chart satisfies the stack's range.
	ErrNoVersion = errors.New("no matching chart version")
	// ErrNotSigned: the stack asks for a signature the chart does not
	// have, or that does not verify.
	ErrNotSigned = errors.New("chart signature not verified")
	// ErrInvalidLock: galley.lock cannot be read.
	ErrInvalidLock = errors.New("invalid lock file")
)

// Options configure where charts come from and how galley.lock is used.
// The zero value uses no cache (every chart not vendored is downloaded),
// anonymous HTTPS, and never changes the lock.
type Options struct {
	// CacheDir is galley's cache directory (see compiler.DefaultCacheDir);
	// charts are kept in its charts/sha256/ directory, named by digest.
	// "" keeps downloaded charts in memory for one use only.
	CacheDir string
	// Offline refuses every network access: a chart that is neither
	// vendored nor cached is an ErrOffline error.
	Offline bool
	// UpdateLock resolves the charts galley.lock is missing or has stale
	// entries for, and writes the lock, instead of failing.
	UpdateLock bool
	// PlainHTTP talks plain HTTP to OCI registries (local test registries
	// only). Classic repositories use the scheme of their URL.
	PlainHTTP bool
	// Credential returns the credential for a registry or repository host
	// ("host:port" as in the Docker config), e.g.
	// credentials.Credential(store) of oras-go. nil means anonymous.
	Credential auth.CredentialFunc
	// HTTPClient carries every request; nil means a client that retries
	// server errors and dropped connections.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Progress, when set, is told about each chart as it is resolved or
	// fetched, e.g. "fetching metabase 2.26.0 from oci://...".
	Progress func(string)
}

// Source is a remote chart as a stack names it.
type Source struct {
	// OCI is oci://<registry>/<repository>/<chart>; Repository is the URL
	// of a classic repository, without a trailing slash. One is set.
	OCI        string
	Repository string
	// Name is the chart's name: the last element of OCI, or the name in
	// the repository's index.
	Name string
	// Constraint is the version or version range the stack asks for.
	Constraint string
	// Key, when set, is the cosign public key the chart must be signed by.
	Key *Key
	// Keyring, when set, is the GnuPG keyring the chart's Helm provenance
	// file must be signed by.
	Keyring *Keyring
}

// URL is the chart's source: the OCI reference or the repository URL.
func (s Source) URL() string {
	if s.OCI != "" {
		return s.OCI
	}
	return s.Repository
}

// String names the chart for messages: "metabase ~2.26.0 from oci://...".
func (s Source) String() string {
	return fmt.Sprintf("%s %s from %s", s.Name, s.Constraint, s.URL())
}

// Key is a cosign public key.
type Key struct {
	// Path is the key file as the stack names it.
	Path string
	// Fingerprint is "sha256:<hex>" of the key's DER encoding
	// (SubjectPublicKeyInfo); galley.lock records it.
	Fingerprint string
	verifier    signature.Verifier
}

// Keyring is a GnuPG public keyring.
type Keyring struct {
	// Path is the keyring file as the stack names it; abs is where it is.
	Path string
	abs  string
	// Fingerprint is "sha256:<hex>" of the keyring file; galley.lock
	// records it.
	Fingerprint string
}

// SourceOf returns the remote source of an app's chart; ok is false for a
// chart at a path. The stack must have been loaded (validated) by
// stack.Load; key and keyring files are read here.
func SourceOf(s *stack.Stack, a *stack.App) (src Source, ok bool, err error) {
	c := a.Chart
	if !c.Remote() {
		return Source{}, false, nil
	}
	src = Source{Name: c.Name, Constraint: c.Version}
	if c.OCI != "" {
		src.OCI = strings.TrimSuffix(c.OCI, "/")
		src.Name = src.OCI[strings.LastIndex(src.OCI, "/")+1:]
	} else {
		src.Repository = strings.TrimRight(c.Repository, "/")
	}
	if v := c.Verify; v != nil {
		if v.Key != "" {
			if src.Key, err = readKey(s.Path(v.Key), v.Key); err != nil {
				return Source{}, true, err
			}
		}
		if v.Keyring != "" {
			b, err := os.ReadFile(s.Path(v.Keyring))
			if err != nil {
				return Source{}, true, fmt.Errorf("reading keyring: %w", err)
			}
			sum := sha256.Sum256(b)
			src.Keyring = &Keyring{Path: v.Keyring, abs: s.Path(v.Keyring), Fingerprint: "sha256:" + hex.EncodeToString(sum[:])}
		}
	}
	return src, true, nil
}

func readKey(path, name string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	v, err := sign.ParsePublicKey(b, name)
	if err != nil {
		return nil, err
	}
	pub, err := v.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("reading public key %s: %w", name, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("reading public key %s: %w", name, err)
	}
	sum := sha256.Sum256(der)
	return &Key{Path: name, Fingerprint: "sha256:" + hex.EncodeToString(sum[:]), verifier: v}, nil
}

// constraint is a parsed Source.Constraint: an exact version is fetched
// by name (an OCI tag), a range is matched against the versions listed.
type constraint struct {
	exact *semver.Version // set for an exact version
	rng   *semver.Constraints
	text  string
}

func parseConstraint(s string) (constraint, error) {
	if v, err := semver.StrictNewVersion(s); err == nil {
		return constraint{exact: v, text: s}, nil
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		return constraint{}, fmt.Errorf("version %q is neither a version nor a range: %w", s, err)
	}
	return constraint{rng: c, text: s}, nil
}

// allows says whether version v satisfies the constraint.
func (c constraint) allows(v *semver.Version) bool {
	if c.exact != nil {
		return c.exact.Equal(v)
	}
	return c.rng.Check(v)
}

// best returns the highest of versions the constraint allows, and its
// index; -1 when none does. Unparseable versions are skipped.
func (c constraint) best(versions []string) int {
	best := -1
	var bestV *semver.Version
	for i, s := range versions {
		v, err := semver.NewVersion(s)
		if err != nil || !c.allows(v) {
			continue
		}
		if bestV == nil || v.GreaterThan(bestV) {
			best, bestV = i, v
		}
	}
	return best
}

func parseVersion(s string) (*semver.Version, error) {
	v, err := semver.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("version %q is not a semantic version: %w", s, err)
	}
	return v, nil
}

// kindError is an error of a kind (a sentinel) its message does not
// repeat.
type kindError struct {
	kind, err error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// kinded formats an error that also matches kind with errors.Is.
func kinded(kind error, format string, args ...any) error {
	return &kindError{kind: kind, err: fmt.Errorf(format, args...)}
}
