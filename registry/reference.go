package registry

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	orasregistry "oras.land/oras-go/v2/registry"
)

// Scheme prefixes every galley reference, as in Argo CD's and Flux's
// repository URLs.
const Scheme = "oci://"

// Reference names a repository on a registry, and optionally one manifest
// in it by tag, digest or both (the digest wins).
type Reference struct {
	// Registry is host[:port].
	Registry string
	// Repository is the path inside the registry, e.g. "team/platform".
	Repository string
	Tag        string
	Digest     digest.Digest
}

// ParseReference parses oci://host[:port]/repo[:tag][@digest]. It refuses
// credentials in the URL (they would end up in logs and shell history) and
// any tag ValidateTag refuses except for being a signature tag, so a pull
// can name what a push could not have written only by digest.
func ParseReference(s string) (Reference, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Reference{}, invalidRef(redactURL(s), "must start with "+Scheme)
	}
	host, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		// Never echo what came before the @: it is a password.
		return Reference{}, invalidRef(Scheme+"***@"+host[at+1:]+"/"+path,
			"credentials do not belong in a reference: use a credential store (docker login) or a username and password")
	}
	if path == "" {
		return Reference{}, invalidRef(s, "no repository: want oci://host/repository[:tag|@digest]")
	}
	var r Reference
	r.Registry = host
	if before, d, ok := strings.Cut(path, "@"); ok {
		dg, err := digest.Parse(d)
		if err != nil {
			return Reference{}, invalidRef(s, fmt.Sprintf("digest %q: %v", d, err))
		}
		r.Digest, path = dg, before
	}
	if i := strings.LastIndex(path, ":"); i > strings.LastIndex(path, "/") {
		r.Tag, path = path[i+1:], path[:i]
		if r.Tag == "" {
			return Reference{}, invalidRef(s, "empty tag")
		}
	}
	r.Repository = path
	o := orasregistry.Reference{Registry: r.Registry, Repository: r.Repository, Reference: r.Tag}
	if err := o.ValidateRegistry(); err != nil {
		return Reference{}, invalidRef(s, fmt.Sprintf("registry %q is not a valid host[:port]", r.Registry))
	}
	if err := o.ValidateRepository(); err != nil {
		return Reference{}, invalidRef(s, fmt.Sprintf("repository %q: must be lowercase letters, digits and separators (. _ - /)", r.Repository))
	}
	if r.Tag != "" {
		if err := checkTagSyntax(r.Tag); err != nil {
			return Reference{}, invalidRef(s, err.Error())
		}
	}
	return r, nil
}

// String returns the reference in oci:// form.
func (r Reference) String() string { return Scheme + r.Name() }

// Name returns host/repo[:tag][@digest], without the scheme: the form
// docker, crane, oras and cosign take.
func (r Reference) Name() string {
	s := r.Repo()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Repo returns host/repo, the repository alone.
func (r Reference) Repo() string { return r.Registry + "/" + r.Repository }

// WithDigest returns the reference pinned to d, without its tag.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Tag, r.Digest = "", d
	return r
}

// WithTag returns the reference to tag, without a digest.
func (r Reference) WithTag(tag string) Reference {
	r.Tag, r.Digest = tag, ""
	return r
}

// reference is the tag or digest to resolve, digest first.
func (r Reference) reference() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

var (
	// ociTag is the tag grammar of the OCI distribution spec.
	ociTag = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// simpleName is a tag that is not a version: it starts with a letter
	// (so "1.4" or "v1" are refused as incomplete versions, not taken as
	// names) and has no underscore.
	simpleName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9.-]*$`)
)

// ValidateTag checks that tag is one galley pushes: a plain semantic version
// (1.4.0, v1.4.0, 1.5.0-rc.1) or a simple name (latest, stable). It refuses
// build metadata and underscores, since Argo CD turns "_" into "+" when it
// lists tags, and the "sha256-..." tags cosign and the referrers fallback
// own.
func ValidateTag(tag string) error {
	if err := checkTagSyntax(tag); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(tag, "sha256-") || strings.HasPrefix(tag, "sha512-"):
		return fmt.Errorf("%w %q: sha256-... tags hold signatures and referrers", ErrInvalidTag, tag)
	case strings.Contains(tag, "_"):
		return fmt.Errorf("%w %q: no underscores (Argo CD reads \"_\" as \"+\")", ErrInvalidTag, tag)
	case simpleName.MatchString(tag) && !looksVersioned(tag):
		return nil
	}
	if _, err := parseSemver(tag); err != nil {
		return fmt.Errorf("%w %q: want a plain semantic version (1.4.0) or a simple name (latest): %v", ErrInvalidTag, tag, err)
	}
	return nil
}

// checkTagSyntax applies the OCI tag grammar, explaining "+" on its own.
func checkTagSyntax(tag string) error {
	if strings.Contains(tag, "+") {
		return fmt.Errorf("%w %q: build metadata (+...) is not allowed in a tag; OCI tags cannot hold \"+\" and Argo CD rewrites \"_\" to \"+\"", ErrInvalidTag, tag)
	}
	if !ociTag.MatchString(tag) {
		return fmt.Errorf("%w %q: a tag is up to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'", ErrInvalidTag, tag)
	}
	return nil
}

// looksVersioned reports whether tag reads as a version: "v" then a digit.
func looksVersioned(tag string) bool {
	return len(tag) > 1 && (tag[0] == 'v' || tag[0] == 'V') && tag[1] >= '0' && tag[1] <= '9'
}

// parseSemver parses a strict semantic version with an optional "v" and no
// build metadata.
func parseSemver(tag string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	if err != nil {
		return nil, err
	}
	if v.Metadata() != "" {
		return nil, errors.New("build metadata is not allowed")
	}
	return v, nil
}

func invalidRef(ref, reason string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidReference, ref, reason)
}

// redactURL hides the userinfo of anything URL-shaped: "scheme://user:pw@h"
// becomes "scheme://***@h".
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	host, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(host, "@"); at >= 0 {
		host = "***@" + host[at+1:]
		if path != "" || strings.Contains(rest, "/") {
			return scheme + "://" + host + "/" + path
		}
		return scheme + "://" + host
	}
	return s
}
