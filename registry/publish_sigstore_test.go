package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// Publish signs in the Sigstore bundle format by default and attaches the
// attestations after it; the legacy format stays available. Each is
// verifiable with the key, and a statement about another digest stops the
// publish before anything is sent.
func TestPublishSigstoreBundle(t *testing.T) {
	ctx := t.Context()
	r := testregistry.Start(t)
	c := plainClient()
	key := fastSigner(t)
	b := testBundle(t, "2.0.0", 7)
	ref := distRef(t, r, "shop:2.0.0")
	other := testBundle(t, "2.0.1", 8)

	_, err := c.Publish(ctx, b, ref, registry.PublishOptions{Signer: key, Attestations: [][]byte{mustStatement(t, other.Digest())}})
	if !errors.Is(err, sign.ErrDigestMismatch) {
		t.Fatalf("publish with an attestation about another digest: %v", err)
	}
	if _, err := c.Resolve(ctx, ref); !errors.Is(err, registry.ErrNotFound) && !errors.Is(err, registry.ErrRepositoryNotFound) {
		t.Fatalf("the refused publish sent the bundle: %v", err)
	}

	prov := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"shop","digest":{"sha256":"` + b.Digest().Encoded() + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"x","externalParameters":{}},"runDetails":{"builder":{"id":"x"}}}}`)
	res, err := c.Publish(ctx, b, ref, registry.PublishOptions{Signer: key, Attestations: [][]byte{prov}})
	if err != nil {
		t.Fatal(err)
	}
	if res.SignatureFormat != registry.FormatSigstoreBundle || res.SignatureTag != "" || len(res.Referrers) != 2 ||
		res.Referrers[0].PredicateType != sign.CosignSignPredicateType || res.Referrers[1].PredicateType != "https://slsa.dev/provenance/v1" {
		t.Fatalf("publish: %+v", res)
	}
	v, err := c.Verify(ctx, ref, key)
	if err != nil || v.Format != registry.FormatSigstoreBundle {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	if _, err := c.VerifyBundles(ctx, ref, b.Digest(), key, "https://slsa.dev/provenance/v1"); err != nil {
		t.Errorf("verify the provenance: %v", err)
	}

	// Publishing again attaches nothing new.
	again, err := c.Publish(ctx, b, ref, registry.PublishOptions{Signer: key, Attestations: [][]byte{prov}})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Referrers) != 2 || !again.Referrers[0].AlreadySigned || !again.Referrers[1].AlreadySigned {
		t.Errorf("publishing again: %+v", again.Referrers)
	}
	if bs, err := c.SigstoreBundles(ctx, ref, b.Digest()); err != nil || len(bs) != 2 {
		t.Errorf("bundles after publishing twice: %d, %v", len(bs), err)
	}

	// The legacy format, for Flux 2.7 and older.
	ref2 := distRef(t, r, "legacy:2.0.1")
	res, err = c.Publish(ctx, other, ref2, registry.PublishOptions{Signer: key, SignatureFormat: registry.FormatCosignSig})
	if err != nil {
		t.Fatal(err)
	}
	if res.SignatureTag != sign.SignatureTag(other.Digest()) || len(res.Referrers) != 0 {
		t.Errorf("legacy publish: %+v", res)
	}
	if v, err := c.Verify(ctx, ref2, key); err != nil || v.Format != registry.FormatCosignSig {
		t.Errorf("verify legacy: %+v, %v", v, err)
	}

	if _, err := c.Publish(ctx, other, ref2, registry.PublishOptions{Signer: key, SignatureFormat: "v4"}); err == nil || !strings.Contains(err.Error(), `signature format "v4"`) {
		t.Errorf("unknown format: %v", err)
	}
}
