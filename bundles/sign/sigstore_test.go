package sign_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
)

// A bundle galley signs verifies with the key, names the digest and the
// cosign predicate, and carries the key's hint as cosign v3 writes it.
func TestSignStatementRoundTrip(t *testing.T) {
	ctx := t.Context()
	sv := newKey(t)
	st, err := sign.SignatureStatement(digestA)
	if err != nil {
		t.Fatal(err)
	}
	wantSt := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + digestA.Encoded() + `"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`
	if compact(t, st) != compact(t, []byte(wantSt)) {
		t.Errorf("statement\n got %s\nwant %s", st, wantSt)
	}
	b, err := sign.SignStatement(ctx, sv, st)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		MediaType            string `json:"mediaType"`
		VerificationMaterial struct {
			PublicKey struct {
				Hint string `json:"hint"`
			} `json:"publicKey"`
			TlogEntries []any `json:"tlogEntries"`
		} `json:"verificationMaterial"`
		DsseEnvelope struct {
			PayloadType string `json:"payloadType"`
			Signatures  []any  `json:"signatures"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	kp, err := sign.NewKeypair(sv)
	if err != nil {
		t.Fatal(err)
	}
	if raw.MediaType != sign.BundleMediaType || raw.VerificationMaterial.PublicKey.Hint != string(kp.GetHint()) ||
		raw.DsseEnvelope.PayloadType != sign.InTotoPayloadType || len(raw.DsseEnvelope.Signatures) != 1 || len(raw.VerificationMaterial.TlogEntries) != 0 {
		t.Errorf("bundle is not a key-mode DSSE bundle v0.3: %s", b)
	}
	vb, err := sign.VerifyBundle(ctx, sv, b, digestA, sign.CosignSignPredicateType)
	if err != nil {
		t.Fatal(err)
	}
	if vb.PredicateType != sign.CosignSignPredicateType || string(vb.Statement) != string(st) {
		t.Errorf("verified %+v", vb)
	}
}

// Bad bundles are refused, each with the error saying which check failed.
func TestVerifyBundleRefuses(t *testing.T) {
	ctx := t.Context()
	sv, other := newKey(t), newKey(t)
	good := signBundle(t, sv, digestA)
	prov := mustSign(t, sv, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"`+digestA.Encoded()+`"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{}}}`))
	tampered := strings.Replace(string(good), `"payload":"`, `"payload":"ICAg`, 1) // three spaces before the statement

	for _, tc := range []struct {
		name   string
		bundle []byte
		key    signature.Verifier
		digest digest.Digest
		pred   string
		want   error
		msg    string
	}{
		{"another digest", good, sv, digestB, sign.CosignSignPredicateType, sign.ErrDigestMismatch, "statement subject " + digestA.String() + ", want " + digestB.String()},
		{"another key", good, other, digestA, sign.CosignSignPredicateType, sign.ErrSignatureMismatch, "no signature verifies with the key"},
		{"truncated", good[:len(good)/2], sv, digestA, sign.CosignSignPredicateType, sign.ErrInvalidBundle, "not a valid Sigstore bundle"},
		{"empty", nil, sv, digestA, "", sign.ErrInvalidBundle, "not a valid Sigstore bundle"},
		{"tampered payload", []byte(tampered), sv, digestA, "", sign.ErrSignatureMismatch, "no signature verifies"},
		{"provenance asked as signature", prov, sv, digestA, sign.CosignSignPredicateType, sign.ErrPredicateType, `"https://slsa.dev/provenance/v1", want "https://sigstore.dev/cosign/sign/v1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sign.VerifyBundle(ctx, tc.key, tc.bundle, tc.digest, tc.pred)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	// Any predicate when none is asked for.
	if _, err := sign.VerifyBundle(ctx, sv, prov, digestA, ""); err != nil {
		t.Errorf("provenance with no predicate asked: %v", err)
	}
}

func TestSignStatementRefusesNonStatements(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"_type":"https://in-toto.io/Statement/v1","predicateType":"x"}`, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"00"}}]}`} {
		if _, err := sign.SignStatement(t.Context(), newKey(t), []byte(in)); err == nil {
			t.Errorf("signed %q", in)
		}
	}
}

func signBundle(t *testing.T, sv signature.SignerVerifier, d digest.Digest) []byte {
	t.Helper()
	st, err := sign.SignatureStatement(d)
	if err != nil {
		t.Fatal(err)
	}
	return mustSign(t, sv, st)
}

func mustSign(t *testing.T, sv signature.SignerVerifier, st []byte) []byte {
	t.Helper()
	b, err := sign.SignStatement(t.Context(), sv, st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
