package sign_test

import (
	"testing"

	"github.com/galley-dev/galley/bundles/sign"
)

// FuzzVerifyBundle feeds arbitrary bytes as a Sigstore bundle, the registry
// input VerifyBundle parses. It may not panic, and may succeed only on a
// bundle signed by the key over a statement naming the digest.
func FuzzVerifyBundle(f *testing.F) {
	sv := newKey(f)
	st, err := sign.SignatureStatement(digestA)
	if err != nil {
		f.Fatal(err)
	}
	good, err := sign.SignStatement(f.Context(), sv, st)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		vb, err := sign.VerifyBundle(t.Context(), sv, b, digestA, "")
		if err == nil && vb.PredicateType == "" {
			t.Fatalf("verified a bundle with no predicate type: %s", b)
		}
		if _, err := sign.VerifyBundle(t.Context(), sv, b, digestB, ""); err == nil {
			t.Fatalf("a bundle verified for two digests: %s", b)
		}
		_, _, _ = sign.UnverifiedStatement(b)
	})
}
