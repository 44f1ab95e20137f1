package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles/sign"
)

type verifyOptions struct {
	registryFlags
	key    string
	output outputFlag
}

// verifyResult is `bundle verify --output json`.
type verifyResult struct {
	Verified        bool   `json:"verified"`
	Digest          string `json:"digest"`
	Reference       string `json:"reference"`
	DockerReference string `json:"dockerReference,omitempty"`
	// Format is "sigstore-bundle" (cosign v3) or "cosign-sig" (legacy).
	Format string `json:"format"`
}

func newVerifyCmd(env *Env) *cobra.Command {
	o := &verifyOptions{output: "text"}
	c := &cobra.Command{
		Use:   "verify oci://<registry>/<repo>:<tag>|@<digest> --key <public-key>",
		Short: "Check a bundle's cosign signature",
		Long: `verify checks that the bundle has a cosign signature (tag sha256-<hex>.sig)
made with the private half of --key (a public key file such as cosign.pub,
or a KMS URI) over that exact manifest digest, as cosign verify --key does.
It exits 0 only then, and prints the verified digest.`,
		Args: exactArgs(1, "a reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			ref, err := parseTaggedRef(args[0])
			if err != nil {
				return err
			}
			if o.key == "" {
				return &usageError{errors.New("--key <public-key> is required")}
			}
			v, err := sign.LoadVerifier(ctx, o.key)
			if err != nil {
				return err
			}
			client, err := o.client(env)
			if err != nil {
				return err
			}
			res, err := client.Verify(ctx, ref, v)
			if err != nil {
				return err
			}
			r := verifyResult{
				Verified:  true,
				Digest:    res.Reference.Digest.String(),
				Reference: res.Reference.String(),
				Format:    res.Format,
			}
			if res.Signature != nil {
				r.DockerReference = res.Signature.DockerReference
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stderr, "verified %s: signed with %s\n", r.Reference, o.key)
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().StringVar(&o.key, "key", "", "cosign public key file or KMS URI (required)")
	c.Flags().Var(&o.output, "output", "output format: text or json")
	return c
}
