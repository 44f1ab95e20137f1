package registry

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/opencontainers/go-digest"
)

// Options configure a Client. The zero value talks HTTPS, anonymously.
type Options struct {
	// PlainHTTP talks HTTP instead of HTTPS. It is never switched on
	// automatically, not even for localhost.
	PlainHTTP bool
	// Username and Password, when Username is set, are sent to every
	// registry this client talks to (only to CredentialHost when that is
	// set), and override CredentialStore there.
	Username, Password string
	// CredentialHost, when set, is the one registry (host[:port]) that
	// Username and Password are for; the others get credentials from
	// CredentialStore. A client that also talks to image registries
	// (air-gap export and import) sets it, so a login for one registry
	// is never offered to Docker Hub.
	CredentialHost string
	// CredentialStore supplies credentials per registry, e.g.
	// DockerCredentials. nil means anonymous unless Username is set.
	CredentialStore credentials.Store
	// UserAgent is sent with every request; empty means oras-go's.
	UserAgent string
	// HTTPClient carries the requests; nil means one with the
	// RetryOptions.ResponseTimeout. It should not retry on its own: the
	// Client retries whole steps (see RetryOptions).
	HTTPClient *http.Client
	// Retry says how failures that may pass are retried, and bounds the
	// time of every operation; the zero value is DefaultRetryOptions.
	Retry RetryOptions
	// MaxLayerSize is the largest layer Pull downloads, checked against
	// the manifest before any byte of the layer is read; 0 means
	// bundles.MaxLayerSize.
	MaxLayerSize int64
	// Progress, when set, is told how transfers of blobs advance.
	Progress func(Progress)
}

// Progress reports the transfer of one blob or manifest.
type Progress struct {
	Op     string // "push" or "pull"
	What   string // "config", "layer", "manifest", "signature"
	Digest digest.Digest
	Size   int64
	Done   int64 // bytes transferred so far; Done == Size at the end
	// Skipped: the registry already had it, nothing was sent.
	Skipped bool
}

// Client pushes and pulls galley bundles and their signatures. It is safe
// for concurrent use.
type Client struct {
	opts      Options
	retryOpts RetryOptions
	client    *auth.Client
	// sentCredentials records whether a credential was ever offered, so a
	// 401 can say "rejected" rather than "wants credentials".
	sentCredentials atomic.Bool
	// seen holds the forms of every credential offered, to remove them
	// from errors (see redact).
	mu   sync.Mutex
	seen []string
}

// New returns a Client.
func New(opts Options) *Client {
	c := &Client{opts: opts, retryOpts: opts.Retry.withDefaults()}
	c.client = &auth.Client{
		Client: httpClient(opts.HTTPClient, c.retryOpts),
		Cache:  auth.NewCache(),
		Credential: func(ctx context.Context, hostport string) (auth.Credential, error) {
			cred, err := c.credential(ctx, hostport)
			if err == nil && cred != auth.EmptyCredential {
				c.sentCredentials.Store(true)
				c.remember(cred)
			}
			return cred, err
		},
	}
	if opts.UserAgent != "" {
		c.client.SetUserAgent(opts.UserAgent)
	}
	return c
}

func (c *Client) remember(cred auth.Credential) {
	forms := append(secretForms(cred.Username, cred.Password), cred.RefreshToken, cred.AccessToken)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range forms {
		if f != "" && !slices.Contains(c.seen, f) {
			c.seen = append(c.seen, f)
		}
	}
	// Longest first, so no secret is left half-replaced by a shorter one
	// it contains.
	slices.SortStableFunc(c.seen, func(a, b string) int { return len(b) - len(a) })
}

// secrets returns the credentials to keep out of errors.
func (c *Client) secrets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(secretForms(c.opts.Username, c.opts.Password), c.seen...)
}

func (c *Client) credential(ctx context.Context, hostport string) (auth.Credential, error) {
	if c.opts.Username != "" && (c.opts.CredentialHost == "" || strings.EqualFold(hostport, c.opts.CredentialHost)) {
		return auth.Credential{Username: c.opts.Username, Password: c.opts.Password}, nil
	}
	if c.opts.CredentialStore == nil {
		return auth.EmptyCredential, nil
	}
	cred, err := credentials.Credential(c.opts.CredentialStore)(ctx, hostport)
	if err != nil {
		// A credential helper's error may quote its own output; keep it
		// out of the message beyond saying which registry.
		return auth.EmptyCredential, fmt.Errorf("reading credentials for %s: %w", hostport, err)
	}
	return cred, nil
}

// repository opens the repository ref names.
func (c *Client) repository(ref Reference) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Repo())
	if err != nil {
		return nil, invalidRef(ref.String(), err.Error())
	}
	repo.Client = c.client
	repo.PlainHTTP = c.opts.PlainHTTP
	// Bound tag listing: a hostile registry must not page forever.
	repo.TagListMaxPages = 1000
	return repo, nil
}

// fail wraps err as an *Error of op on ref, with secrets removed.
func (c *Client) fail(op string, ref Reference, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Ref: ref.Name(), Err: redact(err, c.secrets())}
}

func (c *Client) progress(p Progress) {
	if c.opts.Progress != nil {
		c.opts.Progress(p)
	}
}

// DockerCredentials returns the credential store docker and oras use: the
// Docker config file ($DOCKER_CONFIG/config.json, else
// $HOME/.docker/config.json), its "auths" and the credential helpers it
// names (credsStore, credHelpers). A missing file is an empty store. getenv
// reads DOCKER_CONFIG and HOME; pass os.Getenv.
func DockerCredentials(getenv func(string) string) (credentials.Store, error) {
	dir := getenv("DOCKER_CONFIG")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return nil, fmt.Errorf("finding the docker config: neither DOCKER_CONFIG nor HOME is set")
		}
		dir = filepath.Join(home, ".docker")
	}
	store, err := credentials.NewStore(filepath.Join(dir, "config.json"), credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading docker config %s: %w", filepath.Join(dir, "config.json"), err)
	}
	return store, nil
}
