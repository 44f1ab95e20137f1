package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/provenance"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/registry"
)

type pushOptions struct {
	registryFlags
	compileFlags
	tags []string
	key  string
	keylessSignFlags
	output outputFlag
	force  bool
	// signatureFormat is "bundle" or "legacy" (--signature-format).
	signatureFormat string
	// provenance attaches SLSA provenance when signing.
	provenance bool
}

// pushResult is `bundle push --output json`.
type pushResult struct {
	Digest       string      `json:"digest"`
	Reference    string      `json:"reference"`
	Tags         []string    `json:"tags"`
	TagUpdates   []tagUpdate `json:"tagUpdates"`
	Pushed       int         `json:"pushed"`
	Skipped      int         `json:"skipped"`
	Bytes        int64       `json:"bytes"`
	Manifest     bool        `json:"manifestPushed"`
	Signed       bool        `json:"signed"`
	SignatureTag string      `json:"signatureTag,omitempty"`
	// SignatureFormat is "sigstore-bundle" or "cosign-sig" when signed.
	SignatureFormat string `json:"signatureFormat,omitempty"`
	// Referrers are the Sigstore bundles attached (signature, provenance).
	Referrers []string `json:"referrers,omitempty"`
	// Provenance: a SLSA provenance was attached.
	Provenance bool `json:"provenance"`
	// Render is the end summary of a stack directory compiled to push
	// it; absent for a bundle already built.
	Render *renderSummary `json:"render,omitempty"`
}

type tagUpdate struct {
	Tag      string `json:"tag"`
	Previous string `json:"previous,omitempty"`
	Changed  bool   `json:"changed"`
}

func newPushCmd(env *Env) *cobra.Command {
	o := &pushOptions{output: "text"}
	c := &cobra.Command{
		Use:   "push <stack-dir | layout-dir> oci://<registry>/<repo>[:<version>]",
		Short: "Push a bundle to a registry, optionally signed",
		Long: `push sends a bundle to an OCI registry: a stack directory is built first,
an OCI image layout (from bundle build) is pushed as it is. Blobs the
registry already has are not sent again; then the manifest goes up by
digest, then the tags. A tag already naming the digest is left alone, so
pushing the same bundle twice changes nothing. The tag defaults to the
bundle's version; --tag adds more (e.g. latest). Tags are plain semantic
versions or simple names: "+" and "_" are refused, since Argo CD reads "_"
as "+". --env builds a stack directory for one of its environments.

A version is immutable: pushing a version tag (1.4.0, v2.0.0-rc.1) that
already names other content is refused, naming both digests, before
anything is sent; --force moves it. Pushing identical content again is a
no-op. Names such as latest move freely.

With --key (a cosign private key file, or a KMS URI such as awskms://...),
the bundle is signed as cosign v3 signs by default: a Sigstore bundle
attached as an OCI 1.1 referrer (with the sha256-<hex> referrers tag on
registries without the referrers API), which cosign v3 and Flux 2.8+ verify.
--signature-format legacy writes cosign's older tag sha256-<hex>.sig
instead, for fleets on Flux 2.7 or older. With the key, a SLSA v1
provenance (stack, version, environment, source, revision, galley version,
chart digests, images, Terraform modules) is signed and attached too as a
Sigstore bundle referrer (--provenance=false leaves it out). In the legacy
format it is attached only with --provenance given explicitly: any Sigstore
bundle referrer makes cosign and Flux 2.8+ check bundles only. The key password comes from
GALLEY_KEY_PASSWORD or COSIGN_PASSWORD. The key is loaded and everything
signed before anything is sent.

With --keyless (CI), there is no key: an OIDC identity token is read from
SIGSTORE_ID_TOKEN (GitLab CI, cosign) or requested from GitHub Actions
(ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, audience sigstore; the job needs
permissions: id-token: write), Fulcio (--fulcio-url) certifies an
ephemeral key for that identity, and every signature is logged in Rekor
(--rekor-url); both default to public-good Sigstore. The Sigstore bundle
and the provenance are signed that way; the legacy format is refused. Check
it with bundle verify --certificate-identity --certificate-oidc-issuer
--trusted-root, or cosign verify with the same flags.

With --resolve-images, a stack directory is built as bundle build
--resolve-images builds it: bundle.json pins each image to the digest its
registry gives (credentials from the Docker config only; --plain-http
applies to the image registries too).

Credentials come from the Docker config (docker login, credential helpers)
or from --username with --password-stdin. The digest is printed on stdout.`,
		Args: exactArgs(2, "a stack or layout directory and a reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			ref, err := parseRef(args[1])
			if err != nil {
				return err
			}
			if ref.Digest != "" {
				return &usageError{fmt.Errorf("push to a tag (oci://host/repo:version), not to a digest")}
			}
			if err := validateTags(append([]string{ref.Tag}, o.tags...)...); err != nil {
				return err
			}
			client, err := o.client(env)
			if err != nil {
				return err
			}
			var format string
			switch o.signatureFormat {
			case "bundle":
				format = registry.FormatSigstoreBundle
			case "legacy":
				format = registry.FormatCosignSig
			default:
				return &usageError{fmt.Errorf("--signature-format %q: want bundle (cosign v3, Flux 2.8+) or legacy (sha256-<hex>.sig, every Flux)", o.signatureFormat)}
			}
			if o.key == "" && !o.keyless && c.Flags().Changed("signature-format") {
				return &usageError{errors.New("--signature-format needs --key or --keyless")}
			}
			if !o.keyless && (c.Flags().Changed("fulcio-url") || c.Flags().Changed("rekor-url")) {
				return &usageError{errors.New("--fulcio-url and --rekor-url need --keyless")}
			}
			var signer signature.SignerVerifier
			switch {
			case o.key != "" && o.keyless:
				return &usageError{errors.New("--key and --keyless exclude each other")}
			case o.keyless && format == registry.FormatCosignSig:
				return &usageError{sign.ErrKeylessLegacy}
			case o.keyless:
				if signer, err = o.keylessSignFlags.signer(env); err != nil {
					return err
				}
			case o.key != "":
				if signer, err = sign.LoadSigner(ctx, o.key, passFunc(env)); err != nil {
					return err
				}
			}

			if o.resolveImages && isLayoutDir(args[0]) {
				return &usageError{fmt.Errorf("--resolve-images: %s is a bundle already built; it applies when building a stack directory", args[0])}
			}
			copts, err := o.compileFlags.options(env, o.plainHTTP, o.timeout)
			if err != nil {
				return err
			}
			var tally *renderTally
			if !isLayoutDir(args[0]) {
				tally = &renderTally{}
			}
			b, err := loadBundle(ctx, env, args[0], copts, tally)
			if err != nil {
				return err
			}
			if ref.Tag == "" {
				ref.Tag = versionOf(b)
				if ref.Tag == "" {
					return &usageError{fmt.Errorf("%s has no version: give one in the reference (oci://host/repo:version)", args[0])}
				}
				if err := registry.ValidateTag(ref.Tag); err != nil {
					return fmt.Errorf("the bundle's version cannot be a tag: %w", err)
				}
			}

			var attestations [][]byte
			// A Sigstore bundle referrer of any kind makes cosign and Flux
			// 2.8+ check bundles only, so the legacy format gets provenance
			// only when asked for by name.
			if signer != nil && o.provenance && (format == registry.FormatSigstoreBundle || c.Flags().Changed("provenance")) {
				p, err := provenance.Build(b, provenance.Options{GalleyVersion: Version()})
				if err != nil {
					return err
				}
				st, err := p.Statement()
				if err != nil {
					return err
				}
				attestations = append(attestations, st)
			}

			res, err := client.Publish(ctx, b, ref, registry.PublishOptions{Tags: o.tags, Signer: signer, SignatureFormat: format, Attestations: attestations, Force: o.force})
			if res == nil {
				return forceHint(err)
			}
			r := pushResult{
				Digest:          res.Digest.String(),
				Reference:       res.Reference.String(),
				Pushed:          res.BlobsPushed,
				Skipped:         res.BlobsSkipped,
				Bytes:           res.BytesPushed,
				Manifest:        res.ManifestPushed,
				Signed:          res.SignatureFormat != "",
				SignatureTag:    res.SignatureTag,
				SignatureFormat: res.SignatureFormat,
			}
			if tally != nil {
				sum := tally.result()
				r.Render = &sum
			}
			for _, rr := range res.Referrers {
				r.Referrers = append(r.Referrers, rr.Referrer.Digest.String())
				if rr.PredicateType == provenance.PredicateType {
					r.Provenance = true
				}
			}
			r.Tags, r.TagUpdates = tagUpdates(res.Tags)
			if err != nil {
				// Pushed, but the signature did not go up.
				return err
			}

			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stderr, "pushed %s: uploaded %d of %d blobs (%s); tags %s%s\n",
				r.Reference, r.Pushed, r.Pushed+r.Skipped, humanBytes(r.Bytes), describeTags(res.Tags), signedNote(r))
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().StringArrayVar(&o.tags, "tag", nil, "another tag to point at the bundle (repeatable), e.g. latest")
	c.Flags().StringVar(&o.key, "key", "", "sign with this cosign private key file or KMS URI")
	o.keylessSignFlags.register(c.Flags())
	c.Flags().StringVar(&o.signatureFormat, "signature-format", "bundle", "with --key or --keyless: bundle (Sigstore bundle referrer: cosign v3, Flux 2.8+) or legacy (sha256-<hex>.sig: every Flux)")
	c.Flags().BoolVar(&o.provenance, "provenance", true, "when signing: attach a signed SLSA v1 provenance")
	registerOutput(c.Flags(), &o.output)
	c.Flags().BoolVar(&o.force, "force", false, "move a version tag that already names other content")
	o.compileFlags.register(c.Flags())
	return c
}

// forceHint adds what to do to a refused version.
func forceHint(err error) error {
	if errors.Is(err, registry.ErrVersionExists) {
		return fmt.Errorf("%w (--force moves it)", err)
	}
	return err
}

// loadBundle reads an OCI layout directory, or compiles a stack directory
// with copts (whose Environment a layout may only confirm), counting its
// renders in t.
func loadBundle(ctx context.Context, env *Env, dir string, copts compiler.Options, t *renderTally) (*bundles.Bundle, error) {
	environ, root := copts.Environment, copts.Root
	if isLayoutDir(dir) {
		if root.Widened() {
			return nil, &usageError{fmt.Errorf("--root and --allow-outside-root: %s is a bundle already built; they apply when building a stack directory", dir)}
		}
		b, err := bundles.ReadLayout(dir, "")
		if err != nil {
			return nil, err
		}
		if t := copts.ArtifactType; t != "" && t != bundles.ArtifactType && t != b.Descriptor.ArtifactType {
			return nil, &usageError{fmt.Errorf("--artifact-type %s: %s is a bundle built with artifactType %s; --artifact-type applies when building a stack directory (bundle build --artifact-type)", t, dir, b.Descriptor.ArtifactType)}
		}
		// A layout was built for one environment already: --env may only
		// confirm it.
		if built := annotation(b, bundles.AnnotationEnvironment); environ != "" && built != environ {
			if built == "" {
				built = "no environment"
			} else {
				built = "environment " + built
			}
			return nil, &usageError{fmt.Errorf("--env %s: %s is a bundle built for %s; --env builds a stack directory", environ, dir, built)}
		}
		// A layout may come from anywhere: refuse a layer that pull would
		// refuse to unpack (links, "..", limits) before it is published.
		// Streamed: the files are checked, not kept.
		if err := b.CheckLayer(bundles.DefaultLimits); err != nil {
			return nil, fmt.Errorf("reading the layer of %s: %w", b.Digest(), err)
		}
		return b, nil
	}
	// The render cache build uses: pushing a stack just built renders
	// nothing again.
	if t == nil {
		t = &renderTally{}
	}
	copts.Progress = t.track(copts.Progress)
	res, err := compiler.Compile(ctx, dir, copts)
	if err != nil {
		return nil, err
	}
	t.summary(env)
	return res.Bundle, nil
}

// versionOf returns the org.opencontainers.image.version of a bundle.
func versionOf(b *bundles.Bundle) string { return annotation(b, ocispec.AnnotationVersion) }

// annotation returns one annotation of a bundle's manifest.
func annotation(b *bundles.Bundle, key string) string {
	m, err := bundles.Validate(b.Manifest)
	if err != nil {
		return ""
	}
	return m.Annotations[key]
}

func describeTags(us []registry.TagUpdate) string {
	var parts []string
	for _, u := range us {
		switch {
		case !u.Changed:
			parts = append(parts, u.Tag+" (unchanged)")
		case u.Previous != "":
			parts = append(parts, u.Tag+" (moved from "+shortDigest(u.Previous.String())+")")
		default:
			parts = append(parts, u.Tag+" (new)")
		}
	}
	return strings.Join(parts, ", ")
}

func signedNote(r pushResult) string {
	if !r.Signed {
		return ""
	}
	note := "; signed (" + r.SignatureTag + ")"
	if r.SignatureTag == "" {
		note = "; signed (Sigstore bundle referrer)"
	}
	if r.Provenance {
		note += "; provenance attached"
	}
	return note
}
