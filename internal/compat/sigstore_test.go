package compat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/galley-dev/galley/bundles/provenance"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// Flags of an offline cosign v3 signature in its default format (a Sigstore
// bundle referrer) with a key: no transparency log, and no TUF signing
// config to fetch (cosign cmd/cosign/cli/options/sign.go).
var cosignV3KeyMode = []string{"--tlog-upload=false", "--use-signing-config=false"}

func password(bool) ([]byte, error) { return []byte(keyPassword), nil }

// cosign v3 verifies galley's Sigstore bundle signature, found through the
// referrers tag schema of CNCF Distribution, and only with the right key.
func TestCosignV3VerifiesGalleyBundle(t *testing.T) {
	ctx := t.Context()
	p := push(t, testBundle(t, "5.0.0"), "shop", "5.0.0")
	key, wrong := galleyKeyPair(t, "galley"), galleyKeyPair(t, "wrong")
	signer, err := sign.LoadSigner(ctx, key.priv, password)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client().SignBundle(ctx, p.ref, p.bundle.Digest(), signer)
	if err != nil {
		t.Fatal(err)
	}
	if res.ReferrersTag == "" {
		t.Errorf("Distribution has no referrers API, yet no referrers tag: %+v", res)
	}
	for _, ref := range []registry.Reference{p.pinned, p.ref} {
		out := run(t, "", "cosign-v3", verifyArgs(key.pub, ref)...)
		if !strings.Contains(out, p.bundle.Digest().Encoded()) {
			t.Errorf("cosign verify output does not name the digest:\n%s", out)
		}
	}
	if out, err := tool(t, "", "cosign-v3", verifyArgs(wrong.pub, p.pinned)...); err == nil {
		t.Errorf("cosign verify with the wrong key succeeded:\n%s", out)
	}
}

// galley verifies what cosign v3 signs with its defaults in key mode (a
// Sigstore bundle referrer), and refuses it with another key.
func TestGalleyVerifiesCosignV3Bundle(t *testing.T) {
	ctx := t.Context()
	p := push(t, testBundle(t, "4.0.0"), "shop", "4.0.0")
	key, wrong := cosignKeyPair(t, "cosign-v3"), galleyKeyPair(t, "wrong")
	run(t, "", "cosign-v3", signArgs(cosignV3KeyMode, key.priv, p.pinned)...)

	v, err := sign.LoadVerifier(ctx, key.pub)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client().Verify(ctx, p.ref, v)
	if err != nil {
		t.Fatalf("galley verify of cosign v3's bundle: %v", err)
	}
	if res.Format != registry.FormatSigstoreBundle || res.Reference.Digest != p.bundle.Digest() {
		t.Errorf("verified %+v", res)
	}
	wv, err := sign.LoadVerifier(ctx, wrong.pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client().Verify(ctx, p.ref, wv); !errors.Is(err, sign.ErrSignatureMismatch) {
		t.Errorf("galley verify with another key: %v", err)
	}

	// The bundle cosign wrote reads as galley writes its own: same
	// statement, same key hint.
	bs, err := client().SigstoreBundles(ctx, p.ref, p.bundle.Digest())
	if err != nil || len(bs) != 1 {
		t.Fatalf("bundles: %+v, %v", bs, err)
	}
	var cb struct {
		VerificationMaterial struct {
			PublicKey struct{ Hint string } `json:"publicKey"`
		} `json:"verificationMaterial"`
		DsseEnvelope struct {
			Payload string `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(bs[0].Bundle, &cb); err != nil {
		t.Fatal(err)
	}
	stmt, err := base64.StdEncoding.DecodeString(cb.DsseEnvelope.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want, err := sign.SignatureStatement(p.bundle.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if compactJSON(t, stmt) != compactJSON(t, want) {
		t.Errorf("cosign's statement\n%s\ngalley's\n%s", stmt, want)
	}
	signer, err := sign.LoadSigner(ctx, key.priv, password)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sign.NewKeypair(signer)
	if err != nil {
		t.Fatal(err)
	}
	if cb.VerificationMaterial.PublicKey.Hint != string(kp.GetHint()) {
		t.Errorf("key hint: cosign %q, galley %q", cb.VerificationMaterial.PublicKey.Hint, kp.GetHint())
	}
}

// cosign v3 verify-attestation accepts galley's SLSA v1 provenance, and
// galley reads it back.
func TestCosignV3VerifiesGalleyProvenance(t *testing.T) {
	ctx := t.Context()
	res := exampleBundle(t)
	p := push(t, res.Bundle, "platform/data", "1.4.0")
	key := galleyKeyPair(t, "galley")
	signer, err := sign.LoadSigner(ctx, key.priv, password)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provenance.Build(p.bundle, provenance.Options{GalleyVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := prov.Statement()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client().Attest(ctx, p.ref, p.bundle.Digest(), st, signer); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", "cosign-v3", "verify-attestation", "--type", "slsaprovenance1", "--key", key.pub,
		"--insecure-ignore-tlog=true", "--allow-http-registry", p.pinned.Name())
	// cosign prints each verified DSSE envelope as JSON on a line.
	var env struct{ Payload string }
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), &env); err != nil {
				t.Fatal(err)
			}
		}
	}
	stmt, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil || !strings.Contains(string(stmt), `"predicateType":"https://slsa.dev/provenance/v1"`) {
		t.Errorf("cosign verify-attestation output:\n%s", out)
	}
	if out, err := tool(t, "", "cosign-v3", "verify-attestation", "--type", "spdxjson", "--key", key.pub,
		"--insecure-ignore-tlog=true", "--allow-http-registry", p.pinned.Name()); err == nil {
		t.Errorf("cosign verify-attestation of a type never attached succeeded:\n%s", out)
	}

	vb, err := client().VerifyBundles(ctx, p.ref, p.bundle.Digest(), signer, provenance.PredicateType)
	if err != nil {
		t.Fatal(err)
	}
	got, err := provenance.Parse(vb.Statement, p.bundle.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if got.Stack == "" || got.GalleyVersion == "" || len(got.Charts) == 0 {
		t.Errorf("provenance read back: %+v", got)
	}
}

// Promotion carries the Sigstore bundle and the provenance: cosign v3
// verifies both at the destination, and galley promotes verifying the
// bundle signature.
func TestPromoteCarriesSigstoreBundles(t *testing.T) {
	ctx := t.Context()
	p := push(t, testBundle(t, "6.0.0"), "shop", "6.0.0")
	key := galleyKeyPair(t, "galley")
	signer, err := sign.LoadSigner(ctx, key.priv, password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client().SignBundle(ctx, p.ref, p.bundle.Digest(), signer); err != nil {
		t.Fatal(err)
	}
	prod := push(t, testBundle(t, "0.0.1"), "other", "0.0.1").reg
	dst, err := registry.ParseReference("oci://" + prod.Ref("prod/shop"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client().Copy(ctx, p.ref, dst, registry.CopyOptions{Verifier: signer})
	if err != nil {
		t.Fatal(err)
	}
	if res.VerifiedBundle == nil || res.Referrers < 1 {
		t.Errorf("copy result: %+v", res)
	}
	run(t, "", "cosign-v3", verifyArgs(key.pub, res.Reference)...)
	if _, err := client().Verify(ctx, res.Reference, signer); err != nil {
		t.Errorf("galley verify at the destination: %v", err)
	}
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
