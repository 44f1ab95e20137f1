package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
)

// progressEvery is how many bytes pass between two Progress reports.
const progressEvery = 1 << 20

// pushBlob uploads data unless the repository already has it, and reports
// whether it did. A failed upload starts again from a new upload session;
// from the second try on, the blob is looked for first, in case the
// registry stored it but the answer was lost.
func (c *Client) pushBlob(ctx context.Context, repo *remote.Repository, ref Reference, what string, desc ocispec.Descriptor, data []byte) (bool, error) {
	name := what + " " + desc.Digest.String()
	exists, err := c.blobExists(ctx, repo, ref, name, desc)
	if err != nil {
		return false, c.during("checking", what, ref, desc, err)
	}
	if exists {
		c.progress(Progress{Op: "push", What: what, Digest: desc.Digest, Size: desc.Size, Done: desc.Size, Skipped: true})
		return false, nil
	}
	tries, found := 0, false
	err = c.retry(ctx, func(ctx context.Context) error {
		if tries++; tries > 1 {
			ok, err := repo.Blobs().Exists(ctx, desc)
			if err != nil {
				return c.classify(err, ref, name)
			}
			if found = ok; found {
				return nil
			}
		}
		r := c.progressReader(bytes.NewReader(data), "push", what, desc)
		if err := repo.Blobs().Push(ctx, desc, r); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return c.classify(err, ref, name)
		}
		return nil
	})
	if err != nil {
		return false, c.during("uploading", what, ref, desc, err)
	}
	return !found, nil
}

func (c *Client) blobExists(ctx context.Context, repo *remote.Repository, ref Reference, name string, desc ocispec.Descriptor) (bool, error) {
	var exists bool
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		exists, err = repo.Blobs().Exists(ctx, desc)
		return c.classify(err, ref, name)
	})
	return exists, err
}

// during classifies err from verb (checking, uploading, fetching) on the
// blob desc. A recognised error (401, 404, unreachable...) says enough on
// its own; others, and giving up after retries, get the step prefixed.
func (c *Client) during(verb, what string, ref Reference, desc ocispec.Descriptor, err error) error {
	return stepError(verb, what, desc, c.classify(err, ref, what+" "+desc.Digest.String()))
}

// stepError prefixes err, the classified failure of verb (checking,
// copying, uploading) on desc, with the step, unless it is a recognised
// error that says enough on its own; giving up after retries always names
// the step.
func stepError(verb, what string, desc ocispec.Descriptor, err error) error {
	var re *RetryError
	var clean *cleanError
	if !errors.As(err, &re) && errors.As(err, &clean) {
		return err
	}
	return fmt.Errorf("%s %s %s: %w", verb, what, desc.Digest, err)
}

// fetchBlob downloads a blob and checks its size and digest against desc.
// It refuses, before reading, a descriptor larger than limit. A download
// cut short is tried again from the start.
func (c *Client) fetchBlob(ctx context.Context, repo *remote.Repository, ref Reference, what string, desc ocispec.Descriptor, limit int64) ([]byte, error) {
	if desc.Size < 0 || desc.Size > limit {
		return nil, &cleanError{fmt.Sprintf("%s %s is %d bytes, limit is %d", what, desc.Digest, desc.Size, limit), ErrTooLarge, nil}
	}
	name := what + " " + desc.Digest.String()
	var data []byte
	err := c.retry(ctx, func(ctx context.Context) error {
		rc, err := repo.Blobs().Fetch(ctx, desc)
		if err != nil && strings.Contains(err.Error(), "mismatch Content-Length") {
			// oras checks the announced length before any byte is read.
			return &cleanError{fmt.Sprintf("%s blob %s: the registry sends a size other than the %d bytes the descriptor says", what, desc.Digest, desc.Size), ErrDigestMismatch, err}
		}
		if err != nil {
			return c.classify(err, ref, name)
		}
		defer rc.Close()
		data, err = c.readVerified(rc, what, desc)
		return c.classifyRead(err, ref)
	})
	if err != nil {
		return nil, c.during("fetching", what, ref, desc, err)
	}
	return data, nil
}

// classifyRead classifies a failure to read a body: a digest mismatch
// stays as it is, a dropped connection says which registry dropped it.
func (c *Client) classifyRead(err error, ref Reference) error {
	var clean *cleanError
	if err == nil || errors.As(err, &clean) {
		return err
	}
	if msg, ok := unreachable(err, ref.Registry); ok {
		return &cleanError{msg, ErrUnreachable, err}
	}
	return err
}

// readVerified reads at most desc.Size+1 bytes and checks them against
// desc, so a registry that sends more, less or other bytes than it
// described is caught with a *bundles.DigestMismatchError.
func (c *Client) readVerified(r io.Reader, what string, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s digest %q: %w", what, desc.Digest, err)
	}
	r = c.progressReader(r, "pull", what, desc)
	var buf bytes.Buffer
	buf.Grow(int(min(desc.Size, 64<<20)))
	verifier := desc.Digest.Algorithm().Hash()
	n, err := io.Copy(io.MultiWriter(&buf, verifier), io.LimitReader(r, desc.Size+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", what, desc.Digest, err)
	}
	got := digest.NewDigest(desc.Digest.Algorithm(), verifier)
	if n != desc.Size || got != desc.Digest {
		dm := &bundles.DigestMismatchError{Blob: what, Want: desc.Digest, Got: got, WantSize: desc.Size, GotSize: n}
		return nil, &cleanError{dm.Error(), ErrDigestMismatch, dm}
	}
	return buf.Bytes(), nil
}

// progressReader reports the bytes read through r when Options.Progress is
// set.
func (c *Client) progressReader(r io.Reader, op, what string, desc ocispec.Descriptor) io.Reader {
	if c.opts.Progress == nil {
		return r
	}
	p := &progressReader{r: r, report: c.opts.Progress, p: Progress{Op: op, What: what, Digest: desc.Digest, Size: desc.Size}}
	p.report(p.p)
	return p
}

type progressReader struct {
	r      io.Reader
	report func(Progress)
	p      Progress
	last   int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.p.Done += int64(n)
	if p.p.Done-p.last >= progressEvery || (err == io.EOF || p.p.Done == p.p.Size) && p.last != p.p.Done {
		p.last = p.p.Done
		p.report(p.p)
	}
	return n, err
}
