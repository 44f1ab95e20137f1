package airgap

import (
	"github.com/galley-dev/galley/registry"
)

// Client exports and imports bundles with their images. Every request,
// the images' included, goes through a registry.Client (its HTTP stack,
// credentials, retries, time limit, error classification and credential
// redaction): this package builds no HTTP client of its own.
type Client struct {
	opts registry.Options
}

// New returns a Client. opts apply to every registry it talks to, except
// Username and Password: they go only to the registry of the reference an
// operation names (the bundle's for Export, the destination for Import),
// so a login for one registry is never offered to Docker Hub. The others
// get credentials from opts.CredentialStore. opts.Retry.MaxTime
// (--timeout) bounds the bundle's transfers and each image's.
func New(opts registry.Options) *Client {
	return &Client{opts: opts}
}

// registry returns the registry.Client of one operation whose own
// registry is host.
func (c *Client) registry(host string) *registry.Client {
	o := c.opts
	o.CredentialHost = host
	return registry.New(o)
}
