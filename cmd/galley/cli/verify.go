package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles/provenance"
)

type verifyOptions struct {
	registryFlags
	key string
	identityFlags
	output     outputFlag
	provenance bool
}

// verifyResult is `bundle verify --output json`.
type verifyResult struct {
	Verified        bool   `json:"verified"`
	Digest          string `json:"digest"`
	Reference       string `json:"reference"`
	DockerReference string `json:"dockerReference,omitempty"`
	// Format is "sigstore-bundle" (cosign v3) or "cosign-sig" (legacy).
	Format string `json:"format"`
	// Provenance, with --provenance, is the verified SLSA provenance.
	Provenance *provenance.Provenance `json:"provenance,omitempty"`
}

func newVerifyCmd(env *Env) *cobra.Command {
	o := &verifyOptions{output: "text"}
	c := &cobra.Command{
		Use:   "verify oci://<registry>/<repo>:<tag>|@<digest> (--key <public-key> | --certificate-identity ... --certificate-oidc-issuer ... --trusted-root FILE)",
		Short: "Check a bundle's signature and, with --provenance, its provenance",
		Long: `verify checks that the bundle is signed with the private half of --key (a
public key file such as cosign.pub, or a KMS URI) over that exact manifest
digest, as cosign verify --key does. Both of cosign's formats are read, by
the rule cosign v3 and Flux 2.8+ follow: a Sigstore bundle attached as an
OCI 1.1 referrer when there is one (and then only those), otherwise the
legacy signature tag sha256-<hex>.sig. It exits 0 only then, and prints the
verified digest.

With --provenance it also checks the SLSA v1 provenance attached to the
bundle: signed by the same key, about this digest, and prints what it
records (stack, version, environment, source, revision, galley version,
charts, images and Terraform modules with their digests).

A keyless signature (push --keyless, cosign sign in CI) is checked instead
of --key with --certificate-identity (or -regexp), --certificate-oidc-issuer
(or -regexp) and --trusted-root trusted_root.json, offline, as cosign
verify does with the same flags: the certificate chains to a Fulcio CA of
the root, carries an SCT of one of its CT logs, the signature has a Rekor
entry of the root made while the certificate was valid, and the identity
and issuer match. Both an identity and an issuer are required.

Argo CD verifies no OCI signature: run this before promoting a bundle to
the repository Argo CD deploys from.`,
		Args: exactArgs(1, "a reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			ref, err := parseTaggedRef(args[0])
			if err != nil {
				return err
			}
			v, err := trustVerifier(ctx, o.key, &o.identityFlags, true)
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
			var prov *provenance.Provenance
			if o.provenance {
				vb, err := client.VerifyBundles(ctx, res.Reference, res.Reference.Digest, v, provenance.PredicateType)
				if err != nil {
					return err
				}
				if prov, err = provenance.Parse(vb.Statement, res.Reference.Digest); err != nil {
					return fmt.Errorf("provenance referrer %s: %w", vb.Referrer.Digest, err)
				}
			}
			r := verifyResult{
				Provenance: prov,
				Verified:   true,
				Digest:     res.Reference.Digest.String(),
				Reference:  res.Reference.String(),
				Format:     res.Format,
			}
			if res.Signature != nil {
				r.DockerReference = res.Signature.DockerReference
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stderr, "verified %s: signed with %s (%s)\n", r.Reference, describeSigner(o.key, v), r.Format)
			if prov != nil {
				printProvenance(env.Stderr, prov)
			}
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().StringVar(&o.key, "key", "", "cosign public key file or KMS URI (or the keyless flags)")
	o.identityFlags.register(c.Flags())
	registerOutput(c.Flags(), &o.output)
	c.Flags().BoolVar(&o.provenance, "provenance", false, "also verify the attached SLSA provenance and print it")
	return c
}

// printProvenance writes a verified provenance for a person.
func printProvenance(w io.Writer, p *provenance.Provenance) {
	fmt.Fprintf(w, "provenance (SLSA v1, verified): built by galley %s\n", p.GalleyVersion)
	fmt.Fprintf(w, "  stack        %s %s", p.Stack, p.Version)
	if p.Environment != "" {
		fmt.Fprintf(w, " (environment %s)", p.Environment)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  source       %s\n  revision     %s\n", orDash(p.Source), orDash(p.Revision))
	for _, g := range []struct {
		label string
		ds    []provenance.Dependency
	}{{"chart", p.Charts}, {"image", p.Images}, {"terraform", p.Modules}} {
		for _, d := range g.ds {
			name := d.Name
			if d.Version != "" {
				name += " " + d.Version
			}
			fmt.Fprintf(w, "  %-12s %s %s\n", g.label, name, orDash(d.Digest))
		}
	}
}
