package registry

import (
	"context"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// The Client's transport, for packages that move content the Client has
// no operation for (registry/airgap copies whole image graphs): they open
// repositories here and run each request through Step, so every byte
// galley sends or fetches goes through one HTTP stack with the same
// credentials, retries, time limit, error classification and redaction.

// Repository opens the repository ref names with the Client's HTTP
// client, credentials and user agent.
func (c *Client) Repository(ref Reference) (*remote.Repository, error) {
	return c.repository(ref)
}

// Begin bounds an operation by RetryOptions.MaxTime (--timeout), as the
// Client bounds each of its own; call cancel when it ends.
func (c *Client) Begin(ctx context.Context) (context.Context, context.CancelFunc) {
	return c.begin(ctx)
}

// Step runs fn, one step of an operation on ref, as the Client runs its
// own: tried again while it fails for a reason that may pass (see
// RetryOptions), its error classified under the sentinels of this package
// (what names the object, e.g. "manifest sha256:...", for a 404) and
// stripped of credentials. fn must be safe to run again.
func (c *Client) Step(ctx context.Context, ref Reference, what string, fn func(context.Context) error) error {
	err := c.retry(ctx, func(ctx context.Context) error {
		return c.classify(fn(ctx), ref, what)
	})
	return redact(err, c.secrets())
}

// Fail wraps err, the failure of operation op on what (a reference or a
// file), as an *Error with every credential the Client has offered
// removed from its message.
func (c *Client) Fail(op, what string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Ref: what, Err: redact(err, c.secrets())}
}

// ProgressReader reports the bytes read through r to Options.Progress as
// the transfer of desc (op "push" or "pull"; what "layer", "manifest"...).
func (c *Client) ProgressReader(r io.Reader, op, what string, desc ocispec.Descriptor) io.Reader {
	return c.progressReader(r, op, what, desc)
}

// Skipped reports desc to Options.Progress as not transferred: the other
// side had it.
func (c *Client) Skipped(op, what string, desc ocispec.Descriptor) {
	c.progress(Progress{Op: op, What: what, Digest: desc.Digest, Size: desc.Size, Done: desc.Size, Skipped: true})
}
