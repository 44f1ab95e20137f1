package registry

import (
	"context"
	"fmt"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/sign"
)

// PublishOptions configure Publish. The zero value pushes unsigned and
// refuses to move a version.
type PublishOptions struct {
	// Tags are more tags to point at the bundle (e.g. latest), besides
	// the reference's own.
	Tags []string
	// Signer, when set, signs the bundle before anything is sent; the
	// signature is pushed after the tags, in SignatureFormat.
	Signer signature.SignerVerifier
	// SignatureFormat is FormatSigstoreBundle (the default: a Sigstore
	// bundle referrer, as cosign v3 signs, read by Flux 2.8+) or
	// FormatCosignSig (the sha256-<hex>.sig tag every Flux reads).
	SignatureFormat string
	// Attestations are in-toto statements about the bundle (each must
	// name its digest), signed with Signer like the signature and
	// attached as Sigstore bundle referrers after it: the provenance.
	Attestations [][]byte
	// Force lets a version tag that already names other content move.
	// Without it Publish fails with a *VersionExistsError, before it
	// sends anything, and again if another push took the version while
	// the blobs went up.
	Force bool
}

// PublishResult says what Publish did.
type PublishResult struct {
	PushResult
	// SignatureTag is the cosign signature tag, "" when not signed in
	// that format.
	SignatureTag string
	// SignatureFormat is the format of the signature, "" when not signed.
	SignatureFormat string
	// Referrers are the Sigstore bundles attached: the signature in the
	// bundle format first, then the attestations.
	Referrers []BundleSignResult
}

// Publication is a publish that passed its checks and is signed, and has
// not sent anything yet: Prepare's result. A caller with more to push
// first (the images of an air-gap import) prepares, pushes those, then
// calls Push, so a refused version or a bad key stops it before any byte
// leaves.
type Publication struct {
	c      *Client
	b      *bundles.Bundle
	ref    Reference
	o      PublishOptions
	signed bool
	sig    sign.Signature
	// bundles are signed before the push and attached after it.
	bundles []signedBundle
}

// Publish is how a bundle is released, whatever the command: the version
// rule is checked (CheckVersions, unless o.Force), the bundle is signed
// with o.Signer, then pushed (Push: blobs, manifest, tags, each tag
// checked again just before it is written) and its signature pushed last.
// A failure before the push sends nothing; a failure of the signature
// push leaves the bundle pushed and says so.
func (c *Client) Publish(ctx context.Context, b *bundles.Bundle, ref Reference, o PublishOptions) (*PublishResult, error) {
	p, err := c.Prepare(ctx, b, ref, o)
	if err != nil {
		return nil, err
	}
	return p.Push(ctx)
}

// Prepare runs the steps of Publish that send nothing: the tags are
// validated, the version rule is checked against the registry, and the
// bundle is signed.
func (c *Client) Prepare(ctx context.Context, b *bundles.Bundle, ref Reference, o PublishOptions) (*Publication, error) {
	if ref.Digest != "" && ref.Digest != b.Digest() {
		return nil, c.fail("push", ref, fmt.Errorf("the reference names digest %s but the bundle is %s", ref.Digest, b.Digest()))
	}
	tags, err := uniqueTags(append([]string{ref.Tag}, o.Tags...))
	if err != nil {
		return nil, c.fail("push", ref, err)
	}
	if len(tags) == 0 {
		return nil, c.fail("push", ref, invalidRef(ref.String(), "no tag to publish under: name one ("+ref.String()+":<version>)"))
	}
	if !o.Force {
		if err := c.CheckVersions(ctx, ref, b.Digest(), o.Tags...); err != nil {
			return nil, err
		}
	}
	p := &Publication{c: c, b: b, ref: ref, o: o}
	switch o.SignatureFormat {
	case "", FormatSigstoreBundle, FormatCosignSig:
	default:
		return nil, c.fail("sign", ref, fmt.Errorf("signature format %q: want %s or %s", o.SignatureFormat, FormatSigstoreBundle, FormatCosignSig))
	}
	if o.Signer == nil && len(o.Attestations) > 0 {
		return nil, c.fail("sign", ref, fmt.Errorf("attestations need a key to sign them"))
	}
	if o.Signer != nil {
		legacy := o.SignatureFormat == FormatCosignSig
		if legacy {
			payload, err := sign.Payload(ref.Repo(), b.Digest())
			if err != nil {
				return nil, c.fail("sign", ref.WithDigest(b.Digest()), err)
			}
			if p.sig, err = sign.SignPayload(ctx, o.Signer, payload); err != nil {
				return nil, c.fail("sign", ref.WithDigest(b.Digest()), fmt.Errorf("signing: %w", err))
			}
		}
		var err error
		if p.bundles, err = signBundles(ctx, o.Signer, b.Digest(), !legacy, o.Attestations); err != nil {
			return nil, c.fail("sign", ref.WithDigest(b.Digest()), fmt.Errorf("signing: %w", err))
		}
		p.signed = true
	}
	return p, nil
}

// Push sends a prepared publication: the bundle, its tags, its signature.
func (p *Publication) Push(ctx context.Context) (*PublishResult, error) {
	c := p.c
	pctx, cancel := c.begin(ctx)
	res, err := c.push(pctx, p.b, p.ref, p.o.Tags, !p.o.Force)
	cancel()
	if err != nil {
		return nil, c.fail("push", p.ref, err)
	}
	out := &PublishResult{PushResult: *res}
	if !p.signed {
		return out, nil
	}
	if p.o.SignatureFormat == FormatCosignSig {
		sres, err := c.PushSignature(ctx, p.ref, p.b.Digest(), p.sig, p.o.Signer)
		if err != nil {
			return out, fmt.Errorf("bundle pushed as %s, but not signed: %w", res.Reference, err)
		}
		out.SignatureTag = sres.Tag
	}
	out.SignatureFormat = p.o.SignatureFormat
	if out.SignatureFormat == "" {
		out.SignatureFormat = FormatSigstoreBundle
	}
	refs, err := c.pushBundles(ctx, p.ref, p.b.Digest(), p.o.Signer, p.bundles)
	out.Referrers = refs
	if err != nil {
		what := "signed"
		if p.o.SignatureFormat == FormatCosignSig || len(refs) > 0 {
			what = "its attestations attached"
		}
		return out, fmt.Errorf("bundle pushed as %s, but not %s: %w", res.Reference, what, err)
	}
	return out, nil
}
