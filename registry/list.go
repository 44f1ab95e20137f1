package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
)

// listConcurrency bounds the manifest fetches of one ListVersions.
const listConcurrency = 8

// Version is one tag of a repository.
type Version struct {
	Tag    string
	Digest digest.Digest
	// Semver is true for tags that are semantic versions.
	Semver bool
	// Created is the org.opencontainers.image.created annotation, as
	// written ("" when absent).
	Created string
	// Bundle is false when the tag names something other than a galley
	// bundle; Created is then empty.
	Bundle bool
	// Signed is true when the repository has a cosign signature tag or a
	// Sigstore bundle signature referrer for Digest. It says nothing about
	// who signed: use Verify for that.
	Signed bool
}

// ListVersions lists the tags of ref's repository: semantic versions first,
// in semver order (lowest first), then the other tags by name. Signature and
// referrers tags ("sha256-...") are left out, and mark the versions they
// sign instead. It fetches each tagged manifest for its digest and created
// time.
func (c *Client) ListVersions(ctx context.Context, ref Reference) ([]Version, error) {
	ctx, cancel := c.begin(ctx)
	defer cancel()
	vs, err := c.listVersions(ctx, ref)
	return vs, c.fail("list", ref.WithTag(""), err)
}

func (c *Client) listVersions(ctx context.Context, ref Reference) ([]Version, error) {
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	var all []string
	err = c.retry(ctx, func(ctx context.Context) error {
		all = nil
		return c.classify(repo.Tags(ctx, "", func(ts []string) error { all = append(all, ts...); return nil }), ref, "repository")
	})
	if err != nil {
		var re *RetryError
		if errors.As(err, &re) {
			err = fmt.Errorf("listing tags: %w", err)
		}
		return nil, err
	}
	sigTags := map[string]bool{}
	type entry struct {
		v    Version
		sv   *semver.Version
		gone bool
	}
	var entries []*entry
	for _, t := range all {
		if strings.HasPrefix(t, "sha256-") || strings.HasPrefix(t, "sha512-") {
			sigTags[t] = true
			continue
		}
		e := &entry{v: Version{Tag: t}}
		if sv, err := parseSemver(t); err == nil {
			e.v.Semver, e.sv = true, sv
		}
		entries = append(entries, e)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	var mu sync.Mutex
	for _, e := range entries {
		g.Go(func() error {
			manifest, desc, err := c.fetchManifest(gctx, repo, ref.WithTag(e.v.Tag))
			if errors.Is(err, ErrNotFound) {
				// Deleted since the listing: not a version any more.
				mu.Lock()
				e.gone = true
				mu.Unlock()
				return nil
			}
			if err != nil {
				return err
			}
			signed := sigTags[sign.SignatureTag(desc.Digest)] || c.hasSignatureBundle(gctx, repo, desc)
			mu.Lock()
			defer mu.Unlock()
			e.v.Digest = desc.Digest
			e.v.Signed = signed
			if _, err := bundles.Validate(manifest); err == nil {
				var m ocispec.Manifest
				if json.Unmarshal(manifest, &m) == nil {
					e.v.Bundle = true
					e.v.Created = m.Annotations[ocispec.AnnotationCreated]
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	slices.SortFunc(entries, func(a, b *entry) int {
		switch {
		case a.sv != nil && b.sv != nil:
			if c := a.sv.Compare(b.sv); c != 0 {
				return c
			}
		case a.sv != nil:
			return -1
		case b.sv != nil:
			return 1
		}
		return strings.Compare(a.v.Tag, b.v.Tag)
	})
	vs := make([]Version, 0, len(entries))
	for _, e := range entries {
		if !e.gone {
			vs = append(vs, e.v)
		}
	}
	return vs, nil
}
