package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// ErrVersionExists: a version tag already names other content. A released
// version is immutable: Argo CD and Flux cache by tag, and a reviewer who
// approved 1.4.0 approved one digest.
var ErrVersionExists = errors.New("version exists")

// VersionExistsError is a refused attempt to point a version tag that
// already names a manifest at another one.
type VersionExistsError struct {
	Repo     string // host/repo
	Tag      string
	Existing digest.Digest // what the tag names now
	New      digest.Digest // what it would have named
}

func (e *VersionExistsError) Error() string {
	return fmt.Sprintf("version %s already exists in %s as %s, and this bundle is %s: a released version does not change; release a new version", e.Tag, e.Repo, e.Existing, e.New)
}

// Is makes errors.Is(err, ErrVersionExists) hold.
func (e *VersionExistsError) Is(target error) bool { return target == ErrVersionExists }

// IsVersion reports whether tag is a version (a semantic version such as
// 1.4.0 or v1.5.0-rc.1), which the version rule keeps immutable, as opposed
// to a name such as latest or stable, which moves from release to release.
func IsVersion(tag string) bool {
	_, err := parseSemver(tag)
	return err == nil
}

// CheckVersions enforces the version rule before a push: it fails with a
// *VersionExistsError when ref's tag or one of tags is a version (see
// IsVersion) that already names a manifest other than d in ref's
// repository. A version naming d already, or not there yet, passes, so
// re-pushing identical content stays a no-op. Names such as latest are not
// checked.
//
// The registry API has no conditional tag write, so a concurrent push
// between this check and the tag write can still win; Copy checks again
// just before it tags.
func (c *Client) CheckVersions(ctx context.Context, ref Reference, d digest.Digest, tags ...string) error {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	repo, err := c.repository(ref)
	if err != nil {
		return c.fail("push", ref, err)
	}
	for _, tag := range versionTags(append([]string{ref.Tag}, tags...)) {
		if err := c.checkVersion(ctx, repo, ref, tag, d); err != nil {
			return c.fail("push", ref, err)
		}
	}
	return nil
}

// checkVersion applies the version rule to one tag.
func (c *Client) checkVersion(ctx context.Context, repo *remote.Repository, ref Reference, tag string, d digest.Digest) error {
	cur, err := c.tagDigest(ctx, repo, ref, tag)
	if err != nil {
		return err
	}
	if cur != "" && cur != d {
		return &VersionExistsError{Repo: ref.Repo(), Tag: tag, Existing: cur, New: d}
	}
	return nil
}

// tagDigest returns the digest tag names in repo, "" when the tag or the
// whole repository does not exist.
func (c *Client) tagDigest(ctx context.Context, repo *remote.Repository, ref Reference, tag string) (digest.Digest, error) {
	var d digest.Digest
	err := c.retry(ctx, func(ctx context.Context) error {
		d = ""
		desc, err := repo.Manifests().Resolve(ctx, tag)
		switch {
		case err == nil:
			d = desc.Digest
			return nil
		case errors.Is(err, errdef.ErrNotFound):
			return nil
		}
		err = c.classify(err, ref, "tag "+tag)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRepositoryNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("resolving tag %s: %w", tag, err)
	}
	return d, nil
}

// versionTags returns the distinct versions among tags, in order.
func versionTags(tags []string) []string {
	var vs []string
	for _, t := range tags {
		if t != "" && IsVersion(t) && !slices.Contains(vs, t) {
			vs = append(vs, t)
		}
	}
	return vs
}
