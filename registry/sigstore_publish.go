package registry

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
)

// signedBundle is a Sigstore bundle signed before anything is pushed, to be
// attached as a referrer after the push.
type signedBundle struct {
	bundle        []byte
	predicateType string
	statement     []byte
}

// signBundles signs, without sending anything, the Sigstore bundles a
// publish attaches to d: the signature itself when signature is true, then
// one per in-toto statement in attestations (each must name d). A bad key
// or a statement about another manifest fails here, before the push.
func signBundles(ctx context.Context, s signature.SignerVerifier, d digest.Digest, signature bool, attestations [][]byte) ([]signedBundle, error) {
	var sts [][]byte
	if signature {
		st, err := sign.SignatureStatement(d)
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
	}
	sts = append(sts, attestations...)
	out := make([]signedBundle, 0, len(sts))
	for i, st := range sts {
		b, err := sign.SignStatement(ctx, s, st)
		if err != nil {
			return nil, err
		}
		vb, err := sign.VerifyBundle(ctx, s, b, d, "")
		if err != nil {
			if signature {
				i--
			}
			return nil, fmt.Errorf("attestation %d: %w", i+1, err)
		}
		out = append(out, signedBundle{bundle: b, predicateType: vb.PredicateType, statement: vb.Statement})
	}
	return out, nil
}

// pushBundles attaches bs to d as referrers, in order, leaving out those
// whose statement a bundle already attached and verified by v holds: as
// cosign does for .sig signatures, publishing again adds nothing (an ECDSA
// signature differs every time, so comparing bytes would not do).
func (c *Client) pushBundles(ctx context.Context, ref Reference, d digest.Digest, v signature.Verifier, bs []signedBundle) ([]BundleSignResult, error) {
	existing, err := c.SigstoreBundles(ctx, ref, d)
	if err != nil {
		return nil, err
	}
	var out []BundleSignResult
	for _, b := range bs {
		if i := slices.IndexFunc(existing, func(e SigstoreBundle) bool {
			vb, err := sign.VerifyBundle(ctx, v, e.Bundle, d, b.predicateType)
			return err == nil && bytes.Equal(vb.Statement, b.statement)
		}); i >= 0 {
			out = append(out, BundleSignResult{Digest: d, Referrer: existing[i].Referrer, PredicateType: b.predicateType, AlreadySigned: true})
			continue
		}
		r, err := c.PushSigstoreBundle(ctx, ref, d, b.bundle, b.predicateType)
		if err != nil {
			return out, err
		}
		out = append(out, *r)
	}
	return out, nil
}
