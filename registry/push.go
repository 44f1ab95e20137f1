package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/galley-dev/galley/bundles"
)

// PushResult says what Push did.
type PushResult struct {
	Digest digest.Digest
	// Reference is the pushed manifest pinned by digest.
	Reference Reference
	// BlobsPushed and BlobsSkipped count the config and layer uploads; a
	// blob the registry already had is skipped.
	BlobsPushed, BlobsSkipped int
	// BytesPushed counts the blob and manifest bytes sent.
	BytesPushed int64
	// ManifestPushed is false when the registry already had the manifest.
	ManifestPushed bool
	Tags           []TagUpdate
}

// TagUpdate is what Push did to one tag.
type TagUpdate struct {
	Tag string
	// Previous is the digest the tag named before, "" for a new tag.
	Previous digest.Digest
	// Changed is false when the tag already named the pushed digest and
	// was left alone.
	Changed bool
}

// Push uploads b to ref's repository and points ref's tag and tags at it.
// Order matters to a registry garbage collector and to readers polling
// tags: blobs first (each checked with HEAD and uploaded only if missing),
// then the manifest by digest, then the tags. A tag that already names the
// digest is not written again, so re-pushing an unchanged bundle uploads
// nothing and touches no tag. A tag naming another digest is moved, and the
// previous digest is reported.
//
// ref's digest, if any, must be b's. Tags are checked with ValidateTag
// before anything is sent.
func (c *Client) Push(ctx context.Context, b *bundles.Bundle, ref Reference, tags ...string) (*PushResult, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	res, err := c.push(ctx, b, ref, tags, false)
	return res, c.fail("push", ref, err)
}

// push is Push; with guard, a version tag that names other content by the
// time it is written is refused (see Publish).
func (c *Client) push(ctx context.Context, b *bundles.Bundle, ref Reference, extra []string, guard bool) (*PushResult, error) {
	if err := b.Verify(); err != nil {
		return nil, fmt.Errorf("refusing to push an inconsistent bundle: %w", err)
	}
	d := b.Digest()
	if ref.Digest != "" && ref.Digest != d {
		return nil, fmt.Errorf("the reference names digest %s but the bundle is %s", ref.Digest, d)
	}
	tags, err := uniqueTags(append([]string{ref.Tag}, extra...))
	if err != nil {
		return nil, err
	}
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	res := &PushResult{Digest: d, Reference: ref.WithDigest(d)}

	m, err := bundles.Validate(b.Manifest)
	if err != nil {
		return nil, err
	}
	for _, blob := range []struct {
		what string
		desc ocispec.Descriptor
		open func() (io.ReadCloser, error)
	}{
		{"config", m.Config, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Config)), nil }},
		// The layer streams from its file when it has one.
		{"layer", m.Layers[0], b.OpenLayer},
	} {
		desc := blob.desc
		pushed, err := c.pushBlobFrom(ctx, repo, ref, blob.what, desc, blob.open)
		if err != nil {
			return nil, err
		}
		if pushed {
			res.BlobsPushed++
			res.BytesPushed += desc.Size
		} else {
			res.BlobsSkipped++
		}
	}

	pushed, err := c.pushManifest(ctx, repo, ref, b)
	if err != nil {
		return nil, err
	}
	if pushed {
		res.ManifestPushed = true
		res.BytesPushed += b.Descriptor.Size
	}

	for _, tag := range tags {
		u, err := c.pushTag(ctx, repo, ref, b, tag, guard)
		if err != nil {
			return nil, err
		}
		res.Tags = append(res.Tags, u)
	}
	return res, nil
}

// uniqueTags returns tags without empty ones and repeats, each checked
// with ValidateTag.
func uniqueTags(tags []string) ([]string, error) {
	var out []string
	for _, t := range tags {
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if err := ValidateTag(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// pushManifest uploads b's manifest by digest unless the repository has
// it, and reports whether it did.
func (c *Client) pushManifest(ctx context.Context, repo *remote.Repository, ref Reference, b *bundles.Bundle) (bool, error) {
	var exists bool
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		exists, err = repo.Manifests().Exists(ctx, b.Descriptor)
		return c.classify(err, ref, "manifest "+b.Digest().String())
	})
	if err != nil {
		return false, c.during("checking", "manifest", ref, b.Descriptor, err)
	}
	if exists {
		return false, nil
	}
	err = c.retry(ctx, func(ctx context.Context) error {
		r := c.progressReader(bytes.NewReader(b.Manifest), "push", "manifest", b.Descriptor)
		if err := repo.Manifests().Push(ctx, b.Descriptor, r); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			if refused := typeRefused(err, ref, b); refused != nil {
				return refused
			}
			return c.classify(err, ref, "manifest "+b.Digest().String())
		}
		return nil
	})
	if err != nil {
		return false, c.during("uploading", "manifest", ref, b.Descriptor, err)
	}
	return true, nil
}

// pushTag points tag at b's manifest unless it names it already. Writing
// a tag again is harmless, so a try whose answer was lost is simply
// repeated. With guard, a version naming other content is left alone and
// refused: the registry API has no conditional write, so this narrows the
// race with a concurrent push to the time between two requests.
func (c *Client) pushTag(ctx context.Context, repo *remote.Repository, ref Reference, b *bundles.Bundle, tag string, guard bool) (TagUpdate, error) {
	u := TagUpdate{Tag: tag}
	var err error
	if u.Previous, err = c.tagDigest(ctx, repo, ref, tag); err != nil {
		return u, err
	}
	if u.Previous == b.Digest() {
		return u, nil
	}
	if guard && u.Previous != "" && IsVersion(tag) {
		return u, &VersionExistsError{Repo: ref.Repo(), Tag: tag, Existing: u.Previous, New: b.Digest()}
	}
	if err := c.putTag(ctx, repo, ref, b.Descriptor, b.Manifest, tag); err != nil {
		return u, err
	}
	u.Changed = true
	return u, nil
}

// ErrManifestTypeRefused: the registry refused the bundle manifest as
// invalid, as registries with media-type allow-lists (GitLab, Quay) do for
// an artifactType or config type they do not know (flux2#3724, cue#2817).
var ErrManifestTypeRefused = errors.New("registry refused the manifest's type")

// typeRefused recognises a registry refusing the bundle manifest with
// MANIFEST_INVALID, and says what to do: the manifest is galley's own
// (validated before the push), so the likely cause is the registry's
// allow-list of media types. nil for any other error.
func typeRefused(err error, ref Reference, b *bundles.Bundle) error {
	var resp *errcode.ErrorResponse
	if !errors.As(err, &resp) || resp.StatusCode != http.StatusBadRequest {
		return nil
	}
	for _, e := range resp.Errors {
		if e.Code != errcode.ErrorCodeManifestInvalid {
			continue
		}
		detail := e.Message
		if d, ok := e.Detail.(string); ok && d != "" {
			detail += "; " + d
		}
		return &cleanError{fmt.Sprintf("%s refused the bundle manifest %s (HTTP 400 MANIFEST_INVALID: %s): registries with an allow-list of media types (GitLab, Quay) refuse an artifactType they do not know, here %s; "+
			"build the bundle with --artifact-type set to a type %s accepts (the layer, and what Argo CD and Flux deploy, stay the same)",
			ref.Registry, b.Digest(), detail, b.Descriptor.ArtifactType, ref.Registry), ErrManifestTypeRefused, err}
	}
	return nil
}
