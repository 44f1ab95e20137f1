package registry

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
)

// Resolve returns the descriptor of the manifest ref names (its tag, or its
// digest when it has one).
func (c *Client) Resolve(ctx context.Context, ref Reference) (ocispec.Descriptor, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	desc, err := c.resolve(ctx, ref)
	return desc, c.fail("resolve", ref, err)
}

func (c *Client) resolve(ctx context.Context, ref Reference) (ocispec.Descriptor, error) {
	if ref.reference() == "" {
		return ocispec.Descriptor{}, invalidRef(ref.String(), "no tag or digest")
	}
	repo, err := c.repository(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var desc ocispec.Descriptor
	err = c.retry(ctx, func(ctx context.Context) error {
		d, err := repo.Manifests().Resolve(ctx, ref.reference())
		if err != nil {
			return c.notFound(ctx, repo, ref, err)
		}
		desc = d
		return nil
	})
	return desc, err
}

// Pull downloads the bundle ref names and checks it all: the manifest and
// every blob against their digests and sizes (a *bundles.DigestMismatchError
// otherwise), the manifest against bundles.Validate, and the sizes against
// bundles.MaxManifestSize and Options.MaxLayerSize before reading. It holds
// the bundle in memory and writes nothing. A download cut short is tried
// again (see RetryOptions).
func (c *Client) Pull(ctx context.Context, ref Reference) (*bundles.Bundle, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	b, err := c.pull(ctx, ref, "", false)
	return b, c.fail("pull", ref, err)
}

// PullTo is Pull with the layer streamed into a new temporary file in dir
// ("" for the system's temporary directory) instead of memory, its digest
// checked as it is written: memory does not grow with the layer's size.
// The bundle's LayerFile names the file; the caller removes it with the
// bundle's Close. A layer that does not match its digest leaves no file.
func (c *Client) PullTo(ctx context.Context, ref Reference, dir string) (*bundles.Bundle, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	b, err := c.pull(ctx, ref, dir, true)
	return b, c.fail("pull", ref, err)
}

// pull is Pull, or PullTo into dir when toFile.
func (c *Client) pull(ctx context.Context, ref Reference, dir string, toFile bool) (*bundles.Bundle, error) {
	if ref.reference() == "" {
		return nil, invalidRef(ref.String(), "no tag or digest")
	}
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	manifest, desc, err := c.fetchManifest(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	m, err := bundles.Validate(manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	config, err := c.fetchBlob(ctx, repo, ref, "config", m.Config, m.Config.Size)
	if err != nil {
		return nil, err
	}
	limit := c.opts.MaxLayerSize
	if limit <= 0 {
		limit = bundles.MaxLayerSize
	}
	var (
		layer     []byte
		layerFile string
	)
	if toFile {
		layerFile, err = c.fetchBlobFile(ctx, repo, ref, "layer", m.Layers[0], limit, dir)
	} else {
		layer, err = c.fetchBlob(ctx, repo, ref, "layer", m.Layers[0], limit)
	}
	if err != nil {
		return nil, err
	}
	// Every part was checked on the way in (readVerified, Validate), so the
	// bundle is consistent without b.Verify hashing the layer again.
	return &bundles.Bundle{
		LayerFile: layerFile,
		TempLayer: toFile,
		Manifest:  manifest,
		Descriptor: ocispec.Descriptor{
			MediaType:    bundles.ManifestMediaType,
			ArtifactType: m.ArtifactType,
			Digest:       desc.Digest,
			Size:         desc.Size,
		},
		Config:          config,
		Layer:           layer,
		LayerDescriptor: ocispec.Descriptor{MediaType: m.Layers[0].MediaType, Digest: m.Layers[0].Digest, Size: m.Layers[0].Size},
	}, nil
}

// fetchManifest GETs the manifest ref names and checks it against the
// digest: ref's own when it has one, else the one the registry announced.
func (c *Client) fetchManifest(ctx context.Context, repo *remote.Repository, ref Reference) ([]byte, ocispec.Descriptor, error) {
	var (
		manifest []byte
		desc     ocispec.Descriptor
	)
	err := c.retry(ctx, func(ctx context.Context) error {
		var (
			rc  io.ReadCloser
			err error
		)
		desc, rc, err = repo.Manifests().FetchReference(ctx, ref.reference())
		if err != nil {
			return c.notFound(ctx, repo, ref, err)
		}
		defer rc.Close()
		if ref.Digest != "" && desc.Digest != ref.Digest {
			return &cleanError{fmt.Sprintf("asked for manifest %s, the registry answered with %s", ref.Digest, desc.Digest), ErrDigestMismatch, nil}
		}
		if desc.Size > bundles.MaxManifestSize {
			return &cleanError{fmt.Sprintf("manifest %s is %d bytes, limit is %d", desc.Digest, desc.Size, bundles.MaxManifestSize), ErrTooLarge, nil}
		}
		manifest, err = c.readVerified(rc, "manifest", desc)
		return c.classifyRead(err, ref)
	})
	if err != nil {
		var re *RetryError
		if errors.As(err, &re) {
			err = fmt.Errorf("fetching manifest %s: %w", ref.reference(), err)
		}
		return nil, desc, err
	}
	return manifest, desc, nil
}

// notFound classifies err; for a 404 on a tag or digest, it asks the tag
// list whether the repository exists at all, so the message can say which
// of the two is missing.
func (c *Client) notFound(ctx context.Context, repo *remote.Repository, ref Reference, err error) error {
	what := "tag " + ref.Tag
	if ref.Digest != "" {
		what = "manifest " + ref.Digest.String()
	}
	err = c.classify(err, ref, what)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	tagErr := repo.Tags(ctx, "", func([]string) error { return errStop })
	if tagErr != nil && !errors.Is(tagErr, errStop) {
		if cerr := c.classify(tagErr, ref, "repository"); errors.Is(cerr, ErrRepositoryNotFound) {
			return cerr
		}
	}
	return err
}

var errStop = errors.New("stop")
