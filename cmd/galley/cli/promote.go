package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/registry"
)

type promoteOptions struct {
	registryFlags
	tags []string
	key  string
	identityFlags
	force  bool
	output outputFlag
}

// promoteResult is `bundle promote --output json`.
type promoteResult struct {
	Digest       string      `json:"digest"`
	Source       string      `json:"source"`
	Reference    string      `json:"reference"`
	Tags         []string    `json:"tags"`
	TagUpdates   []tagUpdate `json:"tagUpdates"`
	Copied       int         `json:"copied"`
	Mounted      int         `json:"mounted"`
	Skipped      int         `json:"skipped"`
	Bytes        int64       `json:"bytes"`
	Manifest     bool        `json:"manifestCopied"`
	Verified     bool        `json:"verified"`
	SignatureTag string      `json:"signatureTag,omitempty"`
	Signatures   int         `json:"signatures"`
	Referrers    int         `json:"referrers"`
}

func newPromoteCmd(env *Env) *cobra.Command {
	o := &promoteOptions{output: "text"}
	c := &cobra.Command{
		Use:   "promote oci://<registry>/<repo>:<tag>|@<digest> oci://<registry>/<repo>[:<tag>]",
		Short: "Copy a release, with its signatures, to another registry or repository",
		Long: `promote copies a released bundle from one repository to another, on the same
registry or another one (a dev registry to a prod registry), with its
cosign signatures (the sha256-<hex>.sig tag) and any OCI 1.1 referrers
(Sigstore bundles, SBOMs). The manifest is copied byte for byte, so the
digest stays the same and the signatures stay valid: cosign verify and
Flux check the digest a signature names, not the repository.

With --key (a cosign public key file or KMS URI) a signature of the source
must verify over its exact digest before anything is written to the
destination; the signatures copied are the ones checked.

The tag at the destination is the one given, else the source's, else the
bundle's version; --tag adds more (e.g. stable). As with push, a version
tag that already names other content at the destination is refused,
naming both digests, unless --force; promoting the same release again
changes nothing. Blobs the destination has are not sent again, and on one
registry they are mounted rather than copied. The tags are written last:
a failed promote leaves no tag behind.

Credentials for both registries come from the Docker config; --username
is sent to both. The digest is printed on stdout.`,
		Args: exactArgs(2, "a source and a destination reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			src, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if src.Tag == "" && src.Digest == "" {
				return &usageError{fmt.Errorf("name the release to promote: %s:<tag> or %s@<digest>", src, src)}
			}
			dst, err := parseRef(args[1])
			if err != nil {
				return err
			}
			if dst.Digest != "" {
				return &usageError{fmt.Errorf("promote to a repository or a tag (oci://host/repo[:version]), not to a digest")}
			}
			if err := validateTags(append([]string{dst.Tag}, o.tags...)...); err != nil {
				return err
			}
			opts := registry.CopyOptions{Tags: o.tags, Force: o.force}
			if opts.Verifier, err = trustVerifier(ctx, o.key, &o.identityFlags, false); err != nil {
				return err
			}
			client, err := o.client(env)
			if err != nil {
				return err
			}
			res, err := client.Copy(ctx, src, dst, opts)
			if err != nil {
				return forceHint(err)
			}

			r := promoteResult{
				Digest:       res.Digest.String(),
				Source:       res.Source.String(),
				Reference:    res.Reference.String(),
				Copied:       res.BlobsCopied,
				Mounted:      res.BlobsMounted,
				Skipped:      res.BlobsSkipped,
				Bytes:        res.BytesCopied,
				Manifest:     res.ManifestCopied,
				Verified:     res.Verified != nil || res.VerifiedBundle != nil,
				SignatureTag: res.SignatureTag,
				Signatures:   res.Signatures,
				Referrers:    res.Referrers,
			}
			r.Tags, r.TagUpdates = tagUpdates(res.Tags)
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stderr, "promoted %s to %s: %s; tags %s; %s\n",
				r.Source, r.Reference, describeCopy(r), describeTags(res.Tags), describeTrust(r, describeSigner(o.key, opts.Verifier)))
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().StringArrayVar(&o.tags, "tag", nil, "another tag to point at the copy (repeatable), e.g. stable")
	c.Flags().StringVar(&o.key, "key", "", "refuse to copy unless the source is signed by this cosign public key file or KMS URI")
	o.identityFlags.register(c.Flags())
	c.Flags().BoolVar(&o.force, "force", false, "move a version tag at the destination that already names other content")
	registerOutput(c.Flags(), &o.output)
	return c
}

// describeCopy says how the blobs got there, e.g. "copied 4 of 4 blobs
// (1.2 MiB)".
func describeCopy(r promoteResult) string {
	total := r.Copied + r.Mounted + r.Skipped
	s := fmt.Sprintf("copied %d of %d blobs (%s)", r.Copied, total, humanBytes(r.Bytes))
	if r.Mounted > 0 {
		s += fmt.Sprintf(", mounted %d", r.Mounted)
	}
	return s
}

// describeTrust says what was checked and what came along.
func describeTrust(r promoteResult, key string) string {
	var parts []string
	switch {
	case r.Verified:
		parts = append(parts, "signature verified with "+key)
	case r.Signatures > 0:
		parts = append(parts, "signature not verified (no --key)")
	case r.Referrers > 0:
		// Perhaps signed in cosign v3's format, which travels as a referrer.
		parts = append(parts, "no cosign .sig signature")
	default:
		parts = append(parts, "unsigned")
	}
	if r.Signatures > 0 {
		parts = append(parts, plural(r.Signatures, "signature")+" ("+r.SignatureTag+")")
	}
	if r.Referrers > 0 {
		parts = append(parts, plural(r.Referrers, "referrer"))
	}
	return strings.Join(parts, "; ")
}
