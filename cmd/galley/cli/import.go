package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
	"github.com/galley-dev/galley/registry/airgap"
)

type importOptions struct {
	registryFlags
	to  string
	key string
	identityFlags
	signKey string
	// signatureFormat: see push --signature-format.
	signatureFormat string
	concurrency     int
	force           bool
	output          outputFlag
}

// importResult is `bundle import --output json`.
type importResult struct {
	Digest       string                 `json:"digest"`
	Reference    string                 `json:"reference"`
	Original     string                 `json:"original"`
	Tags         []tagUpdate            `json:"tags"`
	Verified     bool                   `json:"verified"`
	Signed       bool                   `json:"signed"`
	SignatureTag string                 `json:"signatureTag,omitempty"`
	Images       []airgap.ImportedImage `json:"images"`
	Missing      []string               `json:"missing"`
	Changed      []string               `json:"changed"`
	Pushed       int                    `json:"pushed"`
	Skipped      int                    `json:"skipped"`
	Bytes        int64                  `json:"bytes"`
	BytesSkipped int64                  `json:"bytesSkipped"`
	Seconds      float64                `json:"seconds"`
}

func newImportCmd(env *Env) *cobra.Command {
	o := &importOptions{output: "text"}
	c := &cobra.Command{
		Use:   "import <file.tar> --to oci://<registry>/<prefix>",
		Short: "Install an exported bundle and its images into a private registry",
		Long: `import loads a file written by bundle export into a private registry, and
rewrites the bundle so that it deploys from that registry alone.

Before anything is pushed it checks every blob of the file against its
digest (a damaged or tampered file is refused whole) and, with --key (a
cosign public key file or KMS URI), the bundle's signature.

Each repository goes under the prefix, keeping its path and dropping its
host:

  docker.io/library/postgres:16.4    -> <registry>/<prefix>/library/postgres
  ghcr.io/acme/etl@sha256:...        -> <registry>/<prefix>/acme/etl
  <bundle registry>/platform/data    -> <registry>/<prefix>/platform/data

Images keep their digests and tags; blobs the registry has already are not
sent again. The bundle's repository receives the original bundle by digest
with its signature (it still verifies with the publisher's key), and the
relocated bundle under the original tags: every image reference in its
manifests and bundle.json becomes <registry>/<prefix>/<path>@<digest>, its
Argo CD and Flux sources point at its new repository, the annotation
dev.galley.relocated-from records the original digest, and --sign-key (a
cosign private key file or KMS URI; password from GALLEY_KEY_PASSWORD or
COSIGN_PASSWORD) signs it. Flux's verify Secret must then hold the matching
public key.

As with push, a version tag of the relocated bundle that already names
other content is refused, naming both digests, before anything is pushed;
--force moves it. Importing the same file again changes nothing.

The relocated bundle's digest is printed on stdout.`,
		Args: exactArgs(1, "an export file"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			if o.to == "" {
				return &usageError{errors.New("--to oci://<registry>/<prefix> is required")}
			}
			to, err := parseDestination(o.to)
			if err != nil {
				return err
			}
			var opts airgap.ImportOptions
			opts.Concurrency = o.concurrency
			opts.Force = o.force
			if opts.Verifier, err = trustVerifier(ctx, o.key, &o.identityFlags, false); err != nil {
				return err
			}
			switch o.signatureFormat {
			case "bundle":
				opts.SignatureFormat = registry.FormatSigstoreBundle
			case "legacy":
				opts.SignatureFormat = registry.FormatCosignSig
			default:
				return &usageError{fmt.Errorf("--signature-format %q: want bundle (cosign v3, Flux 2.8+) or legacy (sha256-<hex>.sig, every Flux)", o.signatureFormat)}
			}
			if o.signKey != "" {
				if opts.Signer, err = sign.LoadSigner(ctx, o.signKey, passFunc(env)); err != nil {
					return err
				}
			}
			progress, done := totalProgress(env, "pushed")
			client, err := o.airgapClient(env, progress)
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := client.Import(ctx, args[0], to, opts)
			elapsed := time.Since(start)
			done()
			if err != nil {
				return forceHint(err)
			}
			r := importResult{
				Digest:       res.Relocated.Digest.String(),
				Reference:    res.Relocated.String(),
				Original:     res.Original.String(),
				Tags:         []tagUpdate{},
				Verified:     res.Verified,
				Signed:       res.SignatureFormat != "",
				SignatureTag: res.SignatureTag,
				Images:       res.Images,
				Missing:      res.Missing,
				Changed:      res.Changed,
				Pushed:       res.BlobsPushed,
				Skipped:      res.BlobsSkipped,
				Bytes:        res.BytesPushed,
				BytesSkipped: res.BytesSkipped,
				Seconds:      elapsed.Round(time.Millisecond).Seconds(),
			}
			for _, u := range res.Tags {
				r.Tags = append(r.Tags, tagUpdate{Tag: u.Tag, Previous: u.Previous.String(), Changed: u.Changed})
			}
			if r.Missing == nil {
				r.Missing = []string{}
			}
			if r.Changed == nil {
				r.Changed = []string{}
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			printImport(env, describeSigner(o.key, opts.Verifier), args[0], r, res)
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().StringVar(&o.to, "to", "", "the private registry and repository prefix: oci://<registry>/<prefix> (required)")
	c.Flags().StringVar(&o.key, "key", "", "refuse the file unless the bundle is signed by this cosign public key file or KMS URI")
	o.identityFlags.register(c.Flags())
	c.Flags().StringVar(&o.signKey, "sign-key", "", "sign the relocated bundle with this cosign private key file or KMS URI")
	c.Flags().StringVar(&o.signatureFormat, "signature-format", "bundle", "with --sign-key: bundle (Sigstore bundle referrer: cosign v3, Flux 2.8+) or legacy (sha256-<hex>.sig: every Flux)")
	c.Flags().IntVar(&o.concurrency, "concurrency", 0, "blobs uploaded at once (default 3)")
	deprecate(c.Flags(), "jobs", "concurrency")
	c.Flags().BoolVar(&o.force, "force", false, "move a version tag of the relocated bundle that already names other content")
	registerOutput(c.Flags(), &o.output)
	return c
}

// parseDestination parses oci://<registry>[/<prefix>], without a tag or
// digest.
func parseDestination(s string) (registry.Reference, error) {
	rest, ok := strings.CutPrefix(s, registry.Scheme)
	if ok && !strings.Contains(strings.TrimSuffix(rest, "/"), "/") {
		// No prefix: the repositories go at the registry's top level.
		ref, err := parseRef(s + "/x")
		ref.Repository = ""
		return ref, err
	}
	ref, err := parseRef(strings.TrimSuffix(s, "/"))
	if err != nil {
		return ref, err
	}
	if ref.Tag != "" || ref.Digest != "" {
		return ref, &usageError{fmt.Errorf("--to %s: give a registry and prefix, oci://<registry>/<prefix>, without a tag or digest", s)}
	}
	return ref, nil
}

func printImport(env *Env, signer string, file string, r importResult, res *airgap.ImportResult) {
	w := env.Stderr
	pushed := 0
	for _, im := range r.Images {
		if im.Pushed {
			pushed++
		}
	}
	fmt.Fprintf(w, "imported %s into %s\n", file, res.Relocated.Repo())
	fmt.Fprintf(w, "  relocated  %s, tags %s%s\n", r.Reference, describeTags(res.Tags), signedNote(pushResult{Signed: r.Signed, SignatureTag: r.SignatureTag}))
	verified := "signature not checked (no --key)"
	if r.Verified {
		verified = "signature verified with " + signer
	}
	fmt.Fprintf(w, "  original   %s, %s\n", r.Original, verified)
	fmt.Fprintf(w, "  images     %d (%d pushed, %d already there)\n", len(r.Images), pushed, len(r.Images)-pushed)
	fmt.Fprintf(w, "  blobs      %d pushed (%s), %d not sent: already there or mounted (%s)\n", r.Pushed, humanBytes(r.Bytes), r.Skipped, humanBytes(r.BytesSkipped))
	fmt.Fprintf(w, "  took       %s\n", time.Duration(r.Seconds*float64(time.Second)))
	if !r.Verified {
		fmt.Fprintln(w, "galley: warning: the bundle's signature was not checked: pass --key with the publisher's public key, or the keyless flags (--certificate-identity, --certificate-oidc-issuer, --trusted-root)")
	}
	if !r.Signed {
		fmt.Fprintln(w, "galley: warning: the relocated bundle is not signed (no --sign-key): Flux verification will refuse it")
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(w, "galley: warning: %s not in the file (export with --with-images), still pointing outside:\n", plural(len(r.Missing), "image"))
		for _, m := range r.Missing {
			fmt.Fprintln(w, "  "+m)
		}
	}
}
