package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// A Sigstore bundle signature is pushed, found and verified through the
// referrers tag schema on CNCF Distribution, which has no referrers API.
// (go-containerregistry's registry is no help for the API path: it sends no
// OCI-Subject header, so oras falls back to the tag there too.)
func TestSignBundleVerify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ref     func(t *testing.T, repo string) registry.Reference
		wantTag bool
	}{
		{"distribution", func(t *testing.T, repo string) registry.Reference {
			return distRef(t, testregistry.Start(t), repo)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			c := plainClient()
			b := testBundle(t, "1.4.0", 1)
			ref := tc.ref(t, "shop:1.4.0")
			if _, err := c.Push(ctx, b, ref); err != nil {
				t.Fatal(err)
			}
			alice, eve := fastSigner(t), fastSigner(t)
			res, err := c.SignBundle(ctx, ref, b.Digest(), alice)
			if err != nil {
				t.Fatal(err)
			}
			if (res.ReferrersTag != "") != tc.wantTag || res.Referrer.ArtifactType != sign.BundleMediaType || res.PredicateType != sign.CosignSignPredicateType {
				t.Errorf("sign result %+v, want a referrers tag: %v", res, tc.wantTag)
			}
			if tc.wantTag && res.ReferrersTag != "sha256-"+b.Digest().Encoded() {
				t.Errorf("referrers tag %q", res.ReferrersTag)
			}

			vs, err := c.ListVersions(ctx, ref)
			if err != nil || len(vs) != 1 || !vs[0].Signed {
				t.Errorf("list after a bundle signature: %+v, %v; want 1.4.0 signed (and no referrers tag listed)", vs, err)
			}

			v, err := c.Verify(ctx, ref, alice)
			if err != nil {
				t.Fatal(err)
			}
			if v.Format != registry.FormatSigstoreBundle || v.Bundle == nil || v.Signature != nil || v.Reference.Digest != b.Digest() {
				t.Errorf("verified %+v", v)
			}
			_, err = c.Verify(ctx, ref, eve)
			if !errors.Is(err, sign.ErrSignatureMismatch) || !strings.Contains(err.Error(), "Sigstore bundle referrer "+res.Referrer.Digest.String()) {
				t.Errorf("verify with another key: %v", err)
			}

			bs, err := c.SigstoreBundles(ctx, ref, b.Digest())
			if err != nil || len(bs) != 1 || bs[0].Referrer.Digest != res.Referrer.Digest {
				t.Fatalf("bundles %+v, %v", bs, err)
			}

			// The legacy .sig by another key is not consulted once a bundle
			// exists, as with cosign v3 and Flux 2.8+.
			if _, err := c.Sign(ctx, ref, b.Digest(), eve); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Verify(ctx, ref, eve); !errors.Is(err, sign.ErrSignatureMismatch) || !strings.Contains(err.Error(), "a .sig signature is not looked at") {
				t.Errorf("verify with the .sig key while a bundle exists: %v", err)
			}
		})
	}
}

// A bundle for another digest attached to this manifest, or an attestation
// of another type, is refused with one line naming the referrer.
func TestVerifyBundlesRefusesBadBundles(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b, other := testBundle(t, "1.4.0", 1), testBundle(t, "1.5.0", 2)
	ref := m.ref(t, "shop:1.4.0")
	if _, err := c.Push(ctx, b, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, other, m.ref(t, "shop:1.5.0")); err != nil {
		t.Fatal(err)
	}
	alice := fastSigner(t)

	// Another manifest's signature statement, attached to this one.
	st, err := sign.SignatureStatement(other.Digest())
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := sign.SignStatement(ctx, alice, st)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.PushSigstoreBundle(ctx, ref, b.Digest(), bundle, sign.CosignSignPredicateType)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Verify(ctx, ref, alice)
	if !errors.Is(err, sign.ErrDigestMismatch) || !strings.Contains(err.Error(), rs.Referrer.Digest.String()) || strings.Contains(err.Error(), "\n") {
		t.Errorf("verify a bundle for another digest: %v", err)
	}

	// Attest refuses, before pushing, a statement about another manifest.
	if _, err := c.Attest(ctx, m.ref(t, "shop:1.5.0"), other.Digest(), mustStatement(t, b.Digest()), alice); !errors.Is(err, sign.ErrDigestMismatch) {
		t.Errorf("attest a statement about another digest: %v", err)
	}

	// A truncated bundle.
	ref2 := m.ref(t, "shop:1.5.0")
	good, err := sign.SignStatement(ctx, alice, mustStatement(t, other.Digest()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushSigstoreBundle(ctx, ref2, other.Digest(), good[:len(good)-40], sign.CosignSignPredicateType); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, ref2, alice); !errors.Is(err, sign.ErrInvalidBundle) {
		t.Errorf("verify a truncated bundle: %v", err)
	}

	// Asking for an attestation type nobody attached.
	_, err = c.VerifyBundles(ctx, ref, b.Digest(), alice, "https://slsa.dev/provenance/v1")
	if !errors.Is(err, registry.ErrNotSigned) || !strings.Contains(err.Error(), "no attestation of type https://slsa.dev/provenance/v1") {
		t.Errorf("verify a missing provenance: %v", err)
	}
}

func mustStatement(t *testing.T, d digest.Digest) []byte {
	t.Helper()
	st, err := sign.SignatureStatement(d)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fastSigner is an ECDSA P-256 key without the scrypt-encrypted file
// newSigner goes through (seconds on a busy machine): these tests are about
// bundles, not key files.
func fastSigner(t *testing.T) signature.SignerVerifier {
	t.Helper()
	sv, _, err := signature.NewDefaultECDSASignerVerifier()
	if err != nil {
		t.Fatal(err)
	}
	return sv
}
