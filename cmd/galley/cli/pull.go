package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles"
)

type pullOptions struct {
	registryFlags
	limitFlags
	out string
	key string
	identityFlags
	output outputFlag
}

// pullResult is `bundle pull --output json`.
type pullResult struct {
	Digest    string `json:"digest"`
	Reference string `json:"reference"`
	Dir       string `json:"dir"`
	Verified  bool   `json:"verified"`
	LayerSize int64  `json:"layerSize"`
}

func newPullCmd(env *Env) *cobra.Command {
	o := &pullOptions{output: "text"}
	c := &cobra.Command{
		Use:   "pull oci://<registry>/<repo>:<tag>|@<digest> -d <dir>",
		Short: "Download a bundle and unpack its files",
		Long: `pull downloads a bundle, checks every digest and size and that it is a
galley bundle, and unpacks its files into <dir>: regular files and
directories only, no path leaving <dir>, no links, within size limits.
<dir> must not exist or be empty; it appears complete or not at all.

With --key (a cosign public key file or KMS URI) the signature is checked
first, in either of cosign's formats as bundle verify checks it (a Sigstore
bundle referrer, else the sha256-<hex>.sig tag), and the exact digest it
signs is what gets downloaded: an unsigned or wrongly signed bundle is
refused before anything is unpacked.

` + limitsHelp,
		Args: exactArgs(1, "a reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			ref, err := parseTaggedRef(args[0])
			if err != nil {
				return err
			}
			if o.out == "" {
				return &usageError{errors.New("--destination <dir> is required")}
			}
			if err := checkEmptyDir(o.out); err != nil {
				return err
			}
			o.registryFlags.maxLayerSize = int64(o.maxLayer)
			client, err := o.client(env)
			if err != nil {
				return err
			}
			r := pullResult{Dir: o.out}
			v, err := trustVerifier(ctx, o.key, &o.identityFlags, false)
			if err != nil {
				return err
			}
			if v != nil {
				verified, err := client.Verify(ctx, ref, v)
				if err != nil {
					return err
				}
				ref, r.Verified = verified.Reference, true
			}
			// The layer streams to a file beside <dir> (Untar's temporary
			// directory goes there too), checked as it arrives, and is
			// unpacked from it: memory stays flat in the bundle's size.
			b, err := client.PullTo(ctx, ref, filepath.Dir(filepath.Clean(o.out)))
			if err != nil {
				return err
			}
			defer b.Close()
			layer, err := b.OpenLayer()
			if err != nil {
				return err
			}
			defer layer.Close()
			if err := bundles.Untar(ctxReader{ctx, layer}, o.out, o.limits()); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("unpacking %s into %s: %w", b.Digest(), o.out, err)
			}
			r.Digest = b.Digest().String()
			r.Reference = ref.WithDigest(b.Digest()).String()
			r.LayerSize = b.LayerDescriptor.Size
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			verified := ""
			if r.Verified {
				verified = ", signature verified"
			}
			fmt.Fprintf(env.Stderr, "pulled %s into %s (layer %s%s)\n", r.Reference, o.out, humanBytes(r.LayerSize), verified)
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	o.limitFlags.register(c.Flags())
	c.Flags().StringVar(&o.key, "key", "", "refuse the bundle unless signed by this cosign public key file or KMS URI")
	o.identityFlags.register(c.Flags())
	registerDestination(c.Flags(), &o.out, &o.output, "the directory to unpack into (must not exist or be empty)")
	return c
}

// checkEmptyDir fails early, before any download, when dir exists and is
// not an empty directory.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("output directory %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("output directory %s is not empty", dir)
	}
	return nil
}
