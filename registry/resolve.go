package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// resolveImagesAtOnce bounds the registry requests ResolveImages has in
// flight: a stack runs tens of images, mostly on a few registries.
const resolveImagesAtOnce = 8

// ImageError is an image reference ResolveImages could not resolve.
type ImageError struct {
	// Image is the reference as given.
	Image string
	// Registry is the host asked, "" when the reference does not parse.
	Registry string
	Err      error
}

func (e *ImageError) Error() string {
	if e.Registry == "" {
		return fmt.Sprintf("image %s: %v", e.Image, e.Err)
	}
	return fmt.Sprintf("image %s (registry %s): %v", e.Image, e.Registry, e.Err)
}

func (e *ImageError) Unwrap() error { return e.Err }

// ResolveImages asks each image's registry for the digest its tag names
// now (for a multi-platform image, the digest of its index), the way a
// container runtime would before pulling. An image already pinned by
// digest keeps its digest and costs no request. Every image is in the
// map returned; on any failure ResolveImages returns an *ImageError for the
// first image, in the order given, that failed (all are asked regardless),
// so the error is the same from one run to the next.
//
// The Client's Username and Password would go to every image registry:
// give it a CredentialStore only (see DockerCredentials).
func (c *Client) ResolveImages(ctx context.Context, images []string) (map[string]digest.Digest, error) {
	digests := make([]digest.Digest, len(images))
	errs := make([]error, len(images))
	// Not errgroup.WithContext: the images after a failure are still
	// asked about, so the error reported does not depend on timing.
	var g errgroup.Group
	g.SetLimit(resolveImagesAtOnce)
	for i, im := range images {
		ref, err := ImageReference(im)
		if err != nil {
			errs[i] = &ImageError{Image: im, Err: err}
			continue
		}
		if ref.Digest != "" {
			digests[i] = ref.Digest
			continue
		}
		g.Go(func() error {
			desc, err := c.Resolve(ctx, ref)
			if err != nil {
				errs[i] = &ImageError{Image: im, Registry: ref.Registry, Err: unwrapOp(err)}
				return nil
			}
			digests[i] = desc.Digest
			return nil
		})
	}
	_ = g.Wait() // the errors are in errs
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	out := make(map[string]digest.Digest, len(images))
	for i, im := range images {
		out[im] = digests[i]
	}
	return out, nil
}

// PinnedImage returns image pinned to d: repo:tag@digest, keeping the
// reference exactly as written before the @ (postgres:16@sha256:...), so
// a tool that matches the manifests' repo:tag can still find it. An image
// already pinned is returned as it is.
func PinnedImage(image string, d digest.Digest) string {
	if ref, err := ImageReference(image); err == nil && ref.Digest != "" {
		return image
	}
	return image + "@" + d.String()
}

// unwrapOp drops the "resolve host/repo:tag" prefix of an *Error: an
// ImageError names the image and its registry already.
func unwrapOp(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}
