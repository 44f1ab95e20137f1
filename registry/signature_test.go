package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

func newSigner(t testing.TB) signature.SignerVerifier {
	t.Helper()
	pw := func(bool) ([]byte, error) { return []byte("pw"), nil }
	priv, _, err := sign.GenerateKeyPair(pw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.ParsePrivateKey(priv, []byte("pw"), "test key")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	ctx := t.Context()
	m := startMem(t, nil)
	c := plainClient()
	b := testBundle(t, "1.4.0", 1)
	ref := m.ref(t, "shop:1.4.0")
	if _, err := c.Push(ctx, b, ref); err != nil {
		t.Fatal(err)
	}
	alice, bob, eve := newSigner(t), newSigner(t), newSigner(t)

	if _, err := c.Verify(ctx, ref, alice); !errors.Is(err, registry.ErrNotSigned) {
		t.Fatalf("verify unsigned: %v, want ErrNotSigned", err)
	}
	if n, err := c.Signatures(ctx, ref, b.Digest()); err != nil || n != 0 {
		t.Fatalf("signatures of unsigned = %d, %v", n, err)
	}

	res, err := c.Sign(ctx, ref, b.Digest(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadySigned || res.Signatures != 1 || res.Tag != sign.SignatureTag(b.Digest()) {
		t.Errorf("first signature: %+v", res)
	}
	v, err := c.Verify(ctx, ref, alice)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if v.Reference.Digest != b.Digest() || v.Reference.Tag != "" {
		t.Errorf("verified %s, want it pinned to %s", v.Reference, b.Digest())
	}
	if v.Signature.DockerReference != ref.Repo() {
		t.Errorf("docker-reference = %q, want %q", v.Signature.DockerReference, ref.Repo())
	}

	// Signing again with the same key changes nothing, as with cosign.
	m.log.take()
	res, err = c.Sign(ctx, ref, b.Digest(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if !res.AlreadySigned || res.Signatures != 1 {
		t.Errorf("second signature by the same key: %+v", res)
	}
	if w := writes(m.log.take()); len(w) != 0 {
		t.Errorf("re-signing wrote %v", w)
	}

	// Another key appends.
	res, err = c.Sign(ctx, ref, b.Digest(), bob)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadySigned || res.Signatures != 2 {
		t.Errorf("signature by a second key: %+v", res)
	}
	for name, k := range map[string]signature.Verifier{"alice": alice, "bob": bob} {
		if _, err := c.Verify(ctx, m.ref(t, "shop@"+b.Digest().String()), k); err != nil {
			t.Errorf("verify with %s after append: %v", name, err)
		}
	}
	_, err = c.Verify(ctx, ref, eve)
	if !errors.Is(err, sign.ErrSignatureMismatch) {
		t.Errorf("verify with another key: %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), b.Digest().String()) {
		t.Errorf("err = %q, want the digest in it", err)
	}

	// A signature of another manifest, copied under this one's tag, is
	// refused: the payload names the other digest.
	other := testBundle(t, "1.5.0", 2)
	if _, err := c.Push(ctx, other, m.ref(t, "shop:1.5.0")); err != nil {
		t.Fatal(err)
	}
	payload, err := sign.Payload(ref.Repo(), b.Digest())
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sign.SignPayload(ctx, eve, payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PushSignature(ctx, ref, other.Digest(), sig, eve); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, m.ref(t, "shop:1.5.0"), eve); !errors.Is(err, sign.ErrDigestMismatch) {
		t.Errorf("verify a signature copied from another digest: %v, want sign.ErrDigestMismatch", err)
	}
}
