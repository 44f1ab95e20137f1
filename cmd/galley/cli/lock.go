package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/registry"
)

// chartFlags are the flags of commands that read remote charts.
type chartFlags struct {
	plainHTTP bool
}

func (f *chartFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.plainHTTP, "plain-http", false, "talk plain HTTP to chart registries (local test registries only)")
}

// chartOptions are the charts.Options every command uses: the chart cache
// in galley's cache directory, and the credentials `bundle push` uses
// (the Docker config and its credential helpers), for OCI registries and
// for HTTP repositories alike, looked up by host.
//
// Without a cache directory (no $GALLEY_CACHE_DIR and no user cache
// directory) charts are downloaded for each command and not kept.
func chartOptions(env *Env, plainHTTP bool) charts.Options {
	cacheDir, _ := compiler.DefaultCacheDir(env.Getenv)
	o := charts.Options{
		CacheDir:   cacheDir,
		PlainHTTP:  plainHTTP,
		Credential: dockerCredential(env),
		UserAgent:  "galley/" + Version(),
	}
	if env.Interactive {
		o.Progress = func(msg string) { fmt.Fprintf(env.Stderr, "  %s\n", msg) }
	}
	return o
}

// dockerCredential reads the Docker config on first use only: a stack
// whose charts are all cached or public never needs it.
func dockerCredential(env *Env) auth.CredentialFunc {
	var (
		once  sync.Once
		creds auth.CredentialFunc
		err   error
	)
	return func(ctx context.Context, host string) (auth.Credential, error) {
		once.Do(func() {
			var store credentials.Store
			if store, err = registry.DockerCredentials(env.Getenv); err == nil {
				creds = credentials.Credential(store)
			}
		})
		if err != nil {
			return auth.EmptyCredential, err
		}
		return creds(ctx, host)
	}
}

type lockOptions struct {
	chartFlags
	output outputFlag
}

// lockEntry is one line of `galley lock --output json`.
type lockEntry struct {
	charts.Entry
	// Change is "new", "updated", "unchanged" or "removed".
	Change   string `json:"change"`
	Previous string `json:"previousVersion,omitempty"`
}

func newLockCmd(env *Env) *cobra.Command {
	o := &lockOptions{output: "text"}
	c := &cobra.Command{
		Use:   "lock <stack-dir>",
		Short: "Pin every remote chart of a stack to a version and digest in galley.lock",
		Long: `lock resolves every chart the stack takes from an OCI registry (chart: oci:)
or a Helm repository (chart: repository:), in the stack and in each of its
environments: a version range picks the newest version that satisfies it.
Each chart is downloaded into the chart cache, its signature checked when
the stack asks for one (verify: key: for cosign, verify: keyring: for Helm
provenance files), and its exact version and sha256 digest written to
galley.lock beside the stack. Commit the lock: builds read it and never
resolve again, so they stay the same until the next lock.

A version galley.lock already pins that the registry now serves with other
content is an error: published charts must not change.

Credentials come from the Docker config and its credential helpers, by
host, for registries and HTTP repositories alike (docker login <host>).`,
		Args: exactArgs(1, "a stack directory"),
		RunE: func(c *cobra.Command, args []string) error {
			res, err := charts.LockStack(c.Context(), args[0], chartOptions(env, o.plainHTTP))
			if err != nil {
				return err
			}
			var out []lockEntry
			for _, ch := range res.Changes {
				le := lockEntry{Entry: ch.Entry, Change: "new"}
				switch {
				case ch.Removed:
					le.Change = "removed"
				case ch.Previous == nil:
				case ch.Previous.Version == ch.Entry.Version && ch.Previous.Digest == ch.Entry.Digest:
					le.Change = "unchanged"
				default:
					le.Change, le.Previous = "updated", ch.Previous.Version
				}
				out = append(out, le)
			}
			if o.output == "json" {
				if out == nil {
					out = []lockEntry{}
				}
				return writeJSON(env.Stdout, out)
			}
			if res.Path == "" {
				fmt.Fprintln(env.Stderr, "no remote charts: nothing to lock")
				return nil
			}
			for _, e := range out {
				what := e.Change
				if e.Previous != "" {
					what += " from " + e.Previous
				}
				src := e.OCI
				if src == "" {
					src = e.Repository
				}
				fmt.Fprintf(env.Stdout, "%-24s %-12s %s  %s  (%s)\n", e.Name, e.Version, shortDigest(e.Digest), src, what)
			}
			fmt.Fprintf(env.Stderr, "locked %s in %s\n", plural(len(res.Lock.Charts), "chart"), displayPath(env.Cwd, res.Path))
			return nil
		},
	}
	o.register(c.Flags())
	registerOutput(c.Flags(), &o.output)
	return c
}

// displayPath shows name relative to cwd when it is below it.
func displayPath(cwd, name string) string {
	if cwd == "" {
		return name
	}
	if rel, err := filepath.Rel(cwd, name); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return name
}
