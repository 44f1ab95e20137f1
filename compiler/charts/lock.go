package charts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// LockFile is the name of the lock file, beside the stack's CUE files.
const LockFile = "galley.lock"

// LockVersion is the format version galley writes and reads.
const LockVersion = 1

// Lock is the content of galley.lock: every remote chart of the stack (in
// every environment), resolved. It is JSON, written with sorted entries
// and one field per line so that a change reads well in a review.
type Lock struct {
	LockVersion int     `json:"lockVersion"`
	Charts      []Entry `json:"charts"`
}

// Entry is one resolved chart. The first fields say what the stack asks
// for (a Source); the others what it resolved to.
type Entry struct {
	Name string `json:"name"`
	// OCI or Repository, as in Source.
	OCI        string `json:"oci,omitempty"`
	Repository string `json:"repository,omitempty"`
	// Constraint is the stack's version or range, as written.
	Constraint string `json:"constraint"`
	// Key and Keyring are the fingerprints of the cosign key and GnuPG
	// keyring the chart was verified with, when the stack asks for it.
	Key     string `json:"key,omitempty"`
	Keyring string `json:"keyring,omitempty"`

	// Version is the exact chart version the constraint resolved to.
	Version string `json:"version"`
	// Manifest is the digest of the chart's OCI manifest (OCI charts): a
	// build that must fetch the chart fetches this manifest, not a tag.
	Manifest string `json:"manifest,omitempty"`
	// URL is where the chart archive was downloaded from (repository
	// charts); Provenance where its .prov file was.
	URL        string `json:"url,omitempty"`
	Provenance string `json:"provenance,omitempty"`
	// Digest is "sha256:<hex>" of the chart archive (.tgz): the name of
	// the chart in the cache, checked on every use.
	Digest string `json:"digest"`
}

// Matches says whether the entry was resolved for exactly this source.
func (e *Entry) Matches(s Source) bool {
	return e.sameChart(s) && e.Constraint == s.Constraint &&
		e.Key == keyFingerprint(s) && e.Keyring == keyringFingerprint(s)
}

// sameChart says whether the entry is for the same chart at the same
// place, whatever the version asked for.
func (e *Entry) sameChart(s Source) bool {
	return e.Name == s.Name && e.OCI == s.OCI && e.Repository == s.Repository
}

// Source returns the source the entry was resolved for, without keys.
func (e *Entry) source() string {
	if e.OCI != "" {
		return e.OCI
	}
	return e.Repository
}

func keyFingerprint(s Source) string {
	if s.Key == nil {
		return ""
	}
	return s.Key.Fingerprint
}

func keyringFingerprint(s Source) string {
	if s.Keyring == nil {
		return ""
	}
	return s.Keyring.Fingerprint
}

// Find returns the entry resolved for s. Without one the error wraps
// ErrNotLocked or ErrStale and says what differs and to run `galley
// lock`; it is nil only with an entry.
func (l *Lock) Find(s Source) (*Entry, error) {
	if l == nil {
		return nil, kinded(ErrNotLocked, "chart %s is not locked: there is no %s beside the stack; run `galley lock`", s, LockFile)
	}
	for i := range l.Charts {
		e := &l.Charts[i]
		if !e.Matches(s) {
			continue
		}
		c, err := parseConstraint(s.Constraint)
		if err != nil {
			return nil, err
		}
		if v, err := parseVersion(e.Version); err != nil || !c.allows(v) {
			return nil, kinded(ErrStale, "chart %s: %s pins version %s, which does not satisfy %q; run `galley lock`", s, LockFile, e.Version, s.Constraint)
		}
		return e, nil
	}
	// Say what the lock has instead, which is usually a version the stack
	// moved away from.
	for i := range l.Charts {
		e := &l.Charts[i]
		if !e.sameChart(s) {
			continue
		}
		switch {
		case e.Constraint != s.Constraint:
			return nil, kinded(ErrStale, "chart %s: %s has %s %s for version %q, but the stack now asks for %q; run `galley lock`", s, LockFile, e.Name, e.Version, e.Constraint, s.Constraint)
		case e.Key != keyFingerprint(s):
			return nil, kinded(ErrStale, "chart %s: %s locked it verified with %s, but the stack now asks for %s; run `galley lock`", s, LockFile, describeKey("cosign key", e.Key), describeKey("cosign key", keyFingerprint(s)))
		case e.Keyring != keyringFingerprint(s):
			return nil, kinded(ErrStale, "chart %s: %s locked it verified with %s, but the stack now asks for %s; run `galley lock`", s, LockFile, describeKey("keyring", e.Keyring), describeKey("keyring", keyringFingerprint(s)))
		}
	}
	for i := range l.Charts {
		if e := &l.Charts[i]; e.Name == s.Name && e.Constraint == s.Constraint {
			return nil, kinded(ErrStale, "chart %s: %s has %s from %s, not from %s; run `galley lock`", s, LockFile, e.Name, e.source(), s.URL())
		}
	}
	return nil, kinded(ErrNotLocked, "chart %s is not in %s; run `galley lock`", s, LockFile)
}

func describeKey(what, fp string) string {
	if fp == "" {
		return "no " + what
	}
	return what + " " + shortDigest(fp)
}

// pinned returns an entry for the same chart at the same place, locked
// at version, whatever the constraint; nil if there is none.
func (l *Lock) pinned(s Source, version string) *Entry {
	if l == nil {
		return nil
	}
	for i := range l.Charts {
		if e := &l.Charts[i]; e.sameChart(s) && e.Version == version {
			return e
		}
	}
	return nil
}

// Put adds e, replacing the entry resolved for the same source.
func (l *Lock) Put(e Entry) {
	for i := range l.Charts {
		if l.Charts[i].identity() == e.identity() {
			l.Charts[i] = e
			return
		}
	}
	l.Charts = append(l.Charts, e)
}

// identity is what makes entries distinct: the source as asked for.
func (e *Entry) identity() string {
	return strings.Join([]string{e.Name, e.OCI, e.Repository, e.Constraint, e.Key, e.Keyring}, "\x00")
}

// sort orders entries by name, source, then constraint and keys.
func (l *Lock) sort() {
	slices.SortFunc(l.Charts, func(a, b Entry) int {
		return strings.Compare(a.sortKey(), b.sortKey())
	})
}

func (e *Entry) sortKey() string {
	return strings.Join([]string{e.Name, e.source(), e.OCI, e.Constraint, e.Key, e.Keyring}, "\x00")
}

// Marshal encodes the lock as galley writes it: indented JSON, entries
// sorted, a final newline. The same lock always gives the same bytes.
func (l *Lock) Marshal() ([]byte, error) {
	out := Lock{LockVersion: LockVersion, Charts: slices.Clone(l.Charts)}
	if out.Charts == nil {
		out.Charts = []Entry{}
	}
	out.sort()
	if err := out.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", LockFile, err)
	}
	return buf.Bytes(), nil
}

// ParseLock decodes a lock file; name is used in errors. Unknown fields,
// another format version, malformed digests and duplicate entries are
// errors wrapping ErrInvalidLock.
func ParseLock(data []byte, name string) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("reading %s: %w: %v", name, ErrInvalidLock, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("reading %s: %w: data after the lock object", name, ErrInvalidLock)
	}
	if l.LockVersion != LockVersion {
		return nil, fmt.Errorf("reading %s: %w: lockVersion %d, this galley reads %d", name, ErrInvalidLock, l.LockVersion, LockVersion)
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return &l, nil
}

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// validate checks every entry holds what a build needs to fetch and check
// its chart.
func (l *Lock) validate() error {
	seen := map[string]int{}
	for i := range l.Charts {
		e := &l.Charts[i]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: charts[%d] (%s): %s", ErrInvalidLock, i, e.Name, fmt.Sprintf(format, args...))
		}
		switch {
		case e.Name == "" || strings.ContainsAny(e.Name, "/\\ ") || e.Name == "." || e.Name == "..":
			return bad("name %q is not a chart name", e.Name)
		case (e.OCI == "") == (e.Repository == ""):
			return bad("needs one of oci and repository")
		case e.Constraint == "":
			return bad("constraint is empty")
		case !digestRE.MatchString(e.Digest):
			return bad("digest %q is not sha256:<64 hex digits>", e.Digest)
		}
		if _, err := parseConstraint(e.Constraint); err != nil {
			return bad("%v", err)
		}
		if _, err := parseVersion(e.Version); err != nil {
			return bad("%v", err)
		}
		for _, k := range []struct{ name, v string }{{"key", e.Key}, {"keyring", e.Keyring}} {
			if k.v != "" && !digestRE.MatchString(k.v) {
				return bad("%s %q is not sha256:<64 hex digits>", k.name, k.v)
			}
		}
		if e.OCI != "" {
			if !strings.HasPrefix(e.OCI, "oci://") || !strings.HasSuffix(e.OCI, "/"+e.Name) {
				return bad("oci %q is not oci://<registry>/<repository>/%s", e.OCI, e.Name)
			}
			if !digestRE.MatchString(e.Manifest) {
				return bad("manifest %q is not sha256:<64 hex digits>", e.Manifest)
			}
			if e.URL != "" || e.Provenance != "" {
				return bad("url and provenance are for repository charts")
			}
		} else {
			if e.Manifest != "" {
				return bad("manifest is for oci charts")
			}
			if !isHTTPURL(e.Repository) {
				return bad("repository %q is not an http(s) URL", e.Repository)
			}
			if !isHTTPURL(e.URL) {
				return bad("url %q is not an http(s) URL", e.URL)
			}
			if e.Provenance != "" && !isHTTPURL(e.Provenance) {
				return bad("provenance %q is not an http(s) URL", e.Provenance)
			}
		}
		if e.Keyring != "" && e.OCI == "" && e.Provenance == "" {
			return bad("keyring without a provenance URL")
		}
		if j, dup := seen[e.identity()]; dup {
			return bad("same source and constraint as charts[%d]", j)
		}
		seen[e.identity()] = i
	}
	return nil
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// ReadLock reads dir's galley.lock; a missing file is a nil lock and no
// error.
func ReadLock(dir string) (*Lock, error) {
	p := filepath.Join(dir, LockFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", LockFile, err)
	}
	return ParseLock(b, p)
}

// WriteLock writes l to dir's galley.lock, through a temporary file so a
// failure leaves the old lock whole.
func WriteLock(dir string, l *Lock) error {
	b, err := l.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, LockFile), b)
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place, so readers see the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, werr)
	}
	return nil
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
