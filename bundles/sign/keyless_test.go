package sign_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/internal/testsigstore"
)

const (
	ciIdentity = "https://github.com/acme/platform/.github/workflows/release.yml@refs/heads/main"
)

// keylessSigner signs through the virtual Sigstore's HTTP Fulcio and Rekor
// with sigstore-go's own clients, as galley does against public-good
// Sigstore, with a token for identity.
func keylessSigner(t *testing.T, vs *testsigstore.Sigstore, identity string, v *sign.KeylessVerifier) *sign.KeylessSigner {
	t.Helper()
	tok, err := vs.Token(identity)
	if err != nil {
		t.Fatal(err)
	}
	o := vs.SignerOptions(tok)
	o.Verifier = v
	s, err := sign.NewKeylessSigner(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func trustedRoot(t *testing.T, vs *testsigstore.Sigstore) *root.TrustedRoot {
	t.Helper()
	tr, err := vs.TrustedRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as a verifier reads it from --trusted-root.
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := sign.ParseTrustedRoot(b)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func keylessVerifier(t *testing.T, tr root.TrustedMaterial, id sign.Identity) *sign.KeylessVerifier {
	t.Helper()
	v, err := sign.NewKeylessVerifier(tr, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A keyless bundle carries a Fulcio certificate for the token's identity
// and a Rekor entry, and verifies offline against the trusted root for that
// identity and issuer, exact or by regexp; any other identity, issuer or
// root is refused, and so is a key where a keyless identity is asked for.
func TestKeylessSignVerify(t *testing.T) {
	ctx := t.Context()
	vs := testsigstore.Start(t)
	tr := trustedRoot(t, vs)
	st, err := sign.SignatureStatement(digestA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sign.SignStatement(ctx, keylessSigner(t, vs, ciIdentity, nil), st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"certificate"`) || !strings.Contains(string(b), `"tlogEntries"`) || !strings.Contains(string(b), `"inclusionPromise"`) {
		t.Fatalf("not a keyless bundle with a certificate and a log entry: %s", b)
	}

	other := testsigstore.Start(t)
	for _, tc := range []struct {
		name    string
		root    root.TrustedMaterial
		id      sign.Identity
		d       string
		wantErr error
		wantMsg string
	}{
		{name: "exact", root: tr, id: sign.Identity{Subject: ciIdentity, Issuer: testsigstore.Issuer}},
		{name: "regexp", root: tr, id: sign.Identity{SubjectRegexp: `^https://github\.com/acme/`, IssuerRegexp: `virtual-sigstore`}},
		{name: "other identity", root: tr, id: sign.Identity{Subject: "https://github.com/evil/platform/.github/workflows/release.yml@refs/heads/main", Issuer: testsigstore.Issuer},
			wantErr: sign.ErrIdentityMismatch, wantMsg: "the certificate names identity " + ciIdentity + ", issuer " + testsigstore.Issuer},
		{name: "other issuer", root: tr, id: sign.Identity{Subject: ciIdentity, Issuer: "https://token.actions.githubusercontent.com"},
			wantErr: sign.ErrIdentityMismatch, wantMsg: "want identity " + ciIdentity + ", issuer https://token.actions.githubusercontent.com"},
		{name: "other root", root: trustedRoot(t, other), id: sign.Identity{Subject: ciIdentity, Issuer: testsigstore.Issuer},
			wantErr: sign.ErrSignatureMismatch},
		{name: "other digest", root: tr, id: sign.Identity{Subject: ciIdentity, Issuer: testsigstore.Issuer}, d: string(digestB),
			wantErr: sign.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := digestA
			if tc.d != "" {
				d = digestB
			}
			_, err := sign.VerifyBundle(ctx, keylessVerifier(t, tc.root, tc.id), b, d, sign.CosignSignPredicateType)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}

	// A key cannot verify a keyless bundle, and says how to.
	_, err = sign.VerifyBundle(ctx, newKey(t), b, digestA, "")
	if !errors.Is(err, sign.ErrSignatureMismatch) || !strings.Contains(err.Error(), "--certificate-identity") {
		t.Errorf("key on a keyless bundle: %v", err)
	}
	// A keyless identity does not accept a key-mode bundle.
	kb, err := sign.SignStatement(ctx, newKey(t), st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.VerifyBundle(ctx, keylessVerifier(t, tr, sign.Identity{Subject: ciIdentity, Issuer: testsigstore.Issuer}), kb, digestA, ""); !errors.Is(err, sign.ErrNotKeyless) {
		t.Errorf("keyless verifier on a key bundle: %v", err)
	}
}

// An expired certificate with no transparency-log entry is refused: nothing
// proves the signature was made while it was valid. sign.NewKeylessSigner
// never writes such a bundle; it is made here with sigstore-go directly.
func TestKeylessExpiredWithoutLogEntry(t *testing.T) {
	ctx := t.Context()
	vs := testsigstore.Start(t)
	vs.SetCertificateWindow(time.Now().Add(-30*time.Minute).Truncate(time.Second), 10*time.Minute)
	tok, err := vs.Token(ciIdentity)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sign.SignatureStatement(digestA)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := sgsign.Bundle(&sgsign.DSSEData{Data: st, PayloadType: sign.InTotoPayloadType}, kp, sgsign.BundleOptions{
		Context:                    ctx,
		CertificateProvider:        sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: vs.FulcioURL}),
		CertificateProviderOptions: &sgsign.CertificateProviderOptions{IDToken: tok},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sign.VerifyBundle(ctx, keylessVerifier(t, trustedRoot(t, vs), sign.Identity{Subject: ciIdentity, Issuer: testsigstore.Issuer}), b, digestA, "")
	if !errors.Is(err, sign.ErrNoTransparencyLog) || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("got %v, want an expired-certificate refusal", err)
	}
}

// Keyless verification refuses to run unconstrained, and keyless signing
// refuses the legacy format and a missing log.
func TestKeylessRefusals(t *testing.T) {
	vs := testsigstore.Start(t)
	tr := trustedRoot(t, vs)
	for _, id := range []sign.Identity{
		{Issuer: testsigstore.Issuer},
		{Subject: ciIdentity},
		{SubjectRegexp: "(", Issuer: testsigstore.Issuer},
	} {
		if _, err := sign.NewKeylessVerifier(tr, id); err == nil {
			t.Errorf("%+v: accepted", id)
		}
	}
	if _, err := sign.NewKeylessVerifier(nil, sign.Identity{Subject: ciIdentity, Issuer: testsigstore.Issuer}); err == nil || !strings.Contains(err.Error(), "--trusted-root") {
		t.Errorf("no root: %v", err)
	}
	if _, err := sign.NewKeylessSigner(sign.KeylessSignerOptions{Fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: vs.FulcioURL}), Token: func(context.Context) (string, error) { return "", nil }}); err == nil {
		t.Error("a keyless signer without Rekor was made")
	}
	if _, err := keylessSigner(t, vs, ciIdentity, nil).SignMessage(strings.NewReader("x")); !errors.Is(err, sign.ErrKeylessLegacy) {
		t.Errorf("legacy signing: %v", err)
	}
	if _, err := sign.ParseTrustedRoot([]byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)); !errors.Is(err, sign.ErrTrustedRoot) {
		t.Errorf("empty root: %v", err)
	}
	if _, err := sign.ParseTrustedRoot([]byte(`{`)); !errors.Is(err, sign.ErrTrustedRoot) {
		t.Errorf("truncated root: %v", err)
	}

	// Fulcio refuses a token from an issuer it does not trust, and the
	// error reaches the caller.
	tok, err := vs.TokenFrom("https://accounts.evil.test", ciIdentity)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.NewKeylessSigner(vs.SignerOptions(tok))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sign.SignatureStatement(digestA)
	if _, err := sign.SignStatement(t.Context(), s, st); err == nil || !strings.Contains(err.Error(), "unknown issuer") {
		t.Errorf("token of another issuer: %v", err)
	}
}

// The token comes from SIGSTORE_ID_TOKEN, else from GitHub Actions' token
// request endpoint with audience sigstore, else keyless signing says what
// to set.
func TestEnvTokenSource(t *testing.T) {
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer request-token" || r.URL.Query().Get("audience") != "sigstore" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"count":1,"value":"gh.jwt.token"}`))
	}))
	defer gh.Close()
	for _, tc := range []struct {
		name       string
		env        map[string]string
		want, werr string
	}{
		{"sigstore", map[string]string{"SIGSTORE_ID_TOKEN": "a.b.c", "ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL}, "a.b.c", ""},
		{"github", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL + "/?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}, "gh.jwt.token", ""},
		{"github refuses", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL + "/?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"}, "", "HTTP 403 (does the job have `permissions: id-token: write`?)"},
		{"none", nil, "", "set SIGSTORE_ID_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, _ := sign.EnvTokenSource(func(k string) string { return tc.env[k] }, gh.Client())
			got, err := ts(t.Context())
			if tc.werr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.werr) {
					t.Fatalf("got %q, %v; want an error saying %q", got, err, tc.werr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
