package airgap

import (
	"context"
	"fmt"
	"io"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/galley-dev/galley/registry"
)

// Client exports and imports bundles with their images. It reuses
// registry.Client for the bundle itself (pull, push, verify, sign) and talks
// to image repositories directly.
type Client struct {
	opts registry.Options
	reg  *registry.Client
}

// New returns a Client. opts apply to every registry it talks to, except
// Username and Password: they go only to the registry of the reference an
// operation names (the bundle's for Export, the destination for Import),
// so a login for one registry is never offered to Docker Hub. The others
// get credentials from opts.CredentialStore.
func New(opts registry.Options) *Client {
	return &Client{opts: opts, reg: registry.New(opts)}
}

// remotes opens repositories; one per operation, so the auth cache and the
// host the explicit credentials are for live as long as it does.
type remotes struct {
	opts   registry.Options
	client *auth.Client
}

func (c *Client) remotes(primaryHost string) *remotes {
	hc := c.opts.HTTPClient
	if hc == nil {
		hc = retry.NewClient()
	}
	r := &remotes{opts: c.opts}
	r.client = &auth.Client{
		Client: hc,
		Cache:  auth.NewCache(),
		Credential: func(ctx context.Context, hostport string) (auth.Credential, error) {
			if c.opts.Username != "" && strings.EqualFold(hostport, primaryHost) {
				return auth.Credential{Username: c.opts.Username, Password: c.opts.Password}, nil
			}
			if c.opts.CredentialStore == nil {
				return auth.EmptyCredential, nil
			}
			cred, err := credentials.Credential(c.opts.CredentialStore)(ctx, hostport)
			if err != nil {
				return auth.EmptyCredential, fmt.Errorf("reading credentials for %s: %w", hostport, err)
			}
			return cred, nil
		},
	}
	if c.opts.UserAgent != "" {
		r.client.SetUserAgent(c.opts.UserAgent)
	}
	return r
}

// repository opens host/repo.
func (r *remotes) repository(ref registry.Reference) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Repo())
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", registry.ErrInvalidReference, ref.Repo(), err)
	}
	repo.Client = r.client
	repo.PlainHTTP = r.opts.PlainHTTP
	return repo, nil
}

func (c *Client) progress(p registry.Progress) {
	if c.opts.Progress != nil {
		c.opts.Progress(p)
	}
}

// progressReader reports the bytes read through it, every MiB and at the
// end.
type progressReader struct {
	r      io.Reader
	report func(registry.Progress)
	p      registry.Progress
	last   int64
}

func (c *Client) progressReader(r io.Reader, p registry.Progress) io.Reader {
	if c.opts.Progress == nil {
		return r
	}
	c.opts.Progress(p)
	return &progressReader{r: r, report: c.opts.Progress, p: p}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.p.Done += int64(n)
	if p.p.Done-p.last >= 1<<20 || (err != nil || p.p.Done == p.p.Size) && p.last != p.p.Done {
		p.last = p.p.Done
		p.report(p.p)
	}
	return n, err
}
