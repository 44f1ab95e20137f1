package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
)

// progressEvery is how many bytes pass between two Progress reports.
const progressEvery = 1 << 20

// pushBlob uploads data unless the repository already has it, and reports
// whether it did (see pushBlobFrom).
func (c *Client) pushBlob(ctx context.Context, repo *remote.Repository, ref Reference, what string, desc ocispec.Descriptor, data []byte) (bool, error) {
	return c.pushBlobFrom(ctx, repo, ref, what, desc, func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// pushBlobFrom uploads the blob open reads unless the repository already
// has it, and reports whether it did. The blob streams from open to the
// registry, so a layer in a file is never loaded. A failed upload starts
// again from a new upload session, with open called again; from the
// second try on, the blob is looked for first, in case the registry
// stored it but the answer was lost.
func (c *Client) pushBlobFrom(ctx context.Context, repo *remote.Repository, ref Reference, what string, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) (bool, error) {
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
		rc, err := open()
		if err != nil {
			return fmt.Errorf("reading the %s to upload: %w", what, err)
		}
		defer rc.Close()
		r := c.progressReader(rc, "push", what, desc)
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
	var buf bytes.Buffer
	buf.Grow(int(min(desc.Size, 64<<20)))
	if err := c.copyVerified(&buf, r, what, desc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// copyVerified is readVerified writing to w instead of memory.
func (c *Client) copyVerified(w io.Writer, r io.Reader, what string, desc ocispec.Descriptor) error {
	err := bundles.CopyVerified(w, c.progressReader(r, "pull", what, desc), what, desc)
	if dm := (*bundles.DigestMismatchError)(nil); errors.As(err, &dm) {
		return &cleanError{dm.Error(), ErrDigestMismatch, dm}
	}
	return err
}

// fetchBlobFile downloads a blob into a new temporary file in dir,
// checking its size and digest as it streams, and returns the file's
// name. A blob that does not match leaves no file; a download cut short is
// tried again from the start, into a new file.
func (c *Client) fetchBlobFile(ctx context.Context, repo *remote.Repository, ref Reference, what string, desc ocispec.Descriptor, limit int64, dir string) (string, error) {
	if desc.Size < 0 || desc.Size > limit {
		return "", &cleanError{fmt.Sprintf("%s %s is %d bytes, limit is %d", what, desc.Digest, desc.Size, limit), ErrTooLarge, nil}
	}
	if err := desc.Digest.Validate(); err != nil {
		return "", fmt.Errorf("%s digest %q: %w", what, desc.Digest, err)
	}
	name := what + " " + desc.Digest.String()
	var file string
	err := c.retry(ctx, func(ctx context.Context) error {
		rc, err := repo.Blobs().Fetch(ctx, desc)
		if err != nil && strings.Contains(err.Error(), "mismatch Content-Length") {
			return &cleanError{fmt.Sprintf("%s blob %s: the registry sends a size other than the %d bytes the descriptor says", what, desc.Digest, desc.Size), ErrDigestMismatch, err}
		}
		if err != nil {
			return c.classify(err, ref, name)
		}
		defer rc.Close()
		f, err := os.CreateTemp(dir, ".galley-"+what+"-*")
		if err != nil {
			return fmt.Errorf("creating a file for the %s: %w", what, err)
		}
		err = c.copyVerified(f, rc, what, desc)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing the %s to %s: %w", what, f.Name(), cerr)
		}
		if err != nil {
			_ = os.Remove(f.Name())
			return c.classifyRead(err, ref)
		}
		file = f.Name()
		return nil
	})
	if err != nil {
		return "", c.during("fetching", what, ref, desc, err)
	}
	return file, nil
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
