package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// trustedRootSHA256 pins the trusted root the archive carries;
	// saveTrustedRoot writes it out once verified.
	trustedRootSHA256 string
	saveTrustedRoot   string
	signKey           string
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
	// TrustedRootSHA256 is the archive's root, pinned, that the signature
	// verified against; SavedTrustedRoot where it was written.
	TrustedRootSHA256 string `json:"trustedRootSha256,omitempty"`
	SavedTrustedRoot  string `json:"savedTrustedRoot,omitempty"`
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

For a keyless signature, give the --certificate-* flags and a trusted root:
--trusted-root FILE, or --trusted-root-sha256 HEX to use the one the file
carries (export --trusted-root printed its digest). The carried root is used
only when its sha256 matches: get the digest from the publisher by another
channel than the file, since whoever can alter the file can replace both the
signatures and the root. --save-trusted-root FILE then writes it out, for
the Secret of Flux's verify.trustedRootSecretRef.

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
			if err := o.trust(ctx, &opts); err != nil {
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
			if o.saveTrustedRoot != "" {
				if err := replaceFile(o.saveTrustedRoot, res.TrustedRoot); err != nil {
					return fmt.Errorf("saving the trusted root (the import itself is done): %w", err)
				}
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
			if opts.TrustedRootSHA256 != "" {
				r.TrustedRootSHA256 = opts.TrustedRootSHA256.Encoded()
				r.SavedTrustedRoot = o.saveTrustedRoot
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
			signer := describeSigner(o.key, opts.Verifier)
			if opts.TrustedRootSHA256 != "" {
				// The verifier was made inside Import, from the pinned root.
				signer = "keyless, " + opts.Identity.String()
			}
			printImport(env, signer, args[0], r, res)
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().StringVar(&o.to, "to", "", "the private registry and repository prefix: oci://<registry>/<prefix> (required)")
	c.Flags().StringVar(&o.key, "key", "", "refuse the file unless the bundle is signed by this cosign public key file or KMS URI")
	o.identityFlags.register(c.Flags())
	c.Flags().StringVar(&o.trustedRootSHA256, "trusted-root-sha256", "", "keyless: verify against the trusted root the file carries, only if its sha256 is this (the digest export printed, received by another channel)")
	c.Flags().StringVar(&o.saveTrustedRoot, "save-trusted-root", "", "with --trusted-root-sha256: write the verified trusted root to this file (for the Secret of Flux's verify.trustedRootSecretRef)")
	c.Flags().StringVar(&o.signKey, "sign-key", "", "sign the relocated bundle with this cosign private key file or KMS URI")
	c.Flags().StringVar(&o.signatureFormat, "signature-format", "bundle", "with --sign-key: bundle (Sigstore bundle referrer: cosign v3, Flux 2.8+) or legacy (sha256-<hex>.sig: every Flux)")
	c.Flags().IntVar(&o.concurrency, "concurrency", 0, "blobs uploaded at once (default 3)")
	deprecate(c.Flags(), "jobs", "concurrency")
	c.Flags().BoolVar(&o.force, "force", false, "move a version tag of the relocated bundle that already names other content")
	registerOutput(c.Flags(), &o.output)
	return c
}

// trust sets opts' verification from the flags: --key, the keyless flags
// with --trusted-root FILE, or the keyless flags with the archive's own root
// pinned by --trusted-root-sha256. The archive's root is never used unpinned.
func (o *importOptions) trust(ctx context.Context, opts *airgap.ImportOptions) error {
	if o.saveTrustedRoot != "" && o.trustedRootSHA256 == "" {
		return &usageError{errors.New("--save-trusted-root writes the archive's trusted root once verified: it needs --trusted-root-sha256 HEX (the digest export printed)")}
	}
	if o.trustedRootSHA256 == "" {
		if o.key == "" && o.identityFlags.set() && o.identityFlags.trustedRoot == "" {
			return &usageError{errors.New("keyless verification needs a trusted root: --trusted-root FILE, or --trusted-root-sha256 HEX to use the one the archive carries (export --trusted-root prints its digest; get it from the publisher, not from the file)")}
		}
		var err error
		opts.Verifier, err = trustVerifier(ctx, o.key, &o.identityFlags, false)
		return err
	}
	switch {
	case o.key != "":
		return &usageError{errors.New("--key and --trusted-root-sha256 exclude each other: a trusted root is for keyless signatures")}
	case o.identityFlags.trustedRoot != "":
		return &usageError{errors.New("--trusted-root and --trusted-root-sha256 exclude each other: give the root as a file, or pin the one the archive carries")}
	case o.identity == "" && o.identityRegexp == "":
		return &usageError{errors.New("--trusted-root-sha256 verifies keyless: it needs the signer's identity, --certificate-identity or --certificate-identity-regexp")}
	case o.issuer == "" && o.issuerRegexp == "":
		return &usageError{errors.New("--trusted-root-sha256 verifies keyless: it needs the OIDC issuer, --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")}
	}
	if o.saveTrustedRoot != "" {
		// Fail before the import, not after it, on a path that cannot be written.
		if fi, err := os.Stat(filepath.Dir(o.saveTrustedRoot)); err != nil || !fi.IsDir() {
			return &usageError{fmt.Errorf("--save-trusted-root %s: its directory does not exist", o.saveTrustedRoot)}
		}
	}
	pin, err := airgap.ParseSHA256(o.trustedRootSHA256)
	if err != nil {
		return &usageError{fmt.Errorf("--trusted-root-sha256: %w", err)}
	}
	opts.TrustedRootSHA256 = pin
	opts.Identity = o.id()
	return nil
}

// replaceFile writes data to a temporary file beside path and renames it
// into place: path is complete or untouched, and a second import with the
// same flags writes the same file again.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
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
	if r.TrustedRootSHA256 != "" {
		verified += ", against the archive's trusted root (sha256 " + r.TrustedRootSHA256 + ", pinned)"
	}
	fmt.Fprintf(w, "  original   %s, %s\n", r.Original, verified)
	fmt.Fprintf(w, "  images     %d (%d pushed, %d already there)\n", len(r.Images), pushed, len(r.Images)-pushed)
	fmt.Fprintf(w, "  blobs      %d pushed (%s), %d not sent: already there or mounted (%s)\n", r.Pushed, humanBytes(r.Bytes), r.Skipped, humanBytes(r.BytesSkipped))
	fmt.Fprintf(w, "  took       %s\n", time.Duration(r.Seconds*float64(time.Second)))
	if !r.Verified {
		fmt.Fprintln(w, "galley: warning: the bundle's signature was not checked: pass --key with the publisher's public key, or the keyless flags (--certificate-identity, --certificate-oidc-issuer, and --trusted-root FILE or --trusted-root-sha256 HEX for the root the file carries)")
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
