package cli

import (
	"context"
	"errors"
	"net/http"

	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/pflag"

	"github.com/galley-dev/galley/bundles/sign"
)

// identityFlags are cosign's keyless verification flags: who must have
// signed, and the trusted root that vouches for Fulcio and Rekor, offline.
type identityFlags struct {
	identity       string
	identityRegexp string
	issuer         string
	issuerRegexp   string
	trustedRoot    string
}

func (f *identityFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.identity, "certificate-identity", "", "keyless: the signer's identity (certificate SAN), e.g. https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main")
	fs.StringVar(&f.identityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the signer's identity must match")
	fs.StringVar(&f.issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer, e.g. https://token.actions.githubusercontent.com")
	fs.StringVar(&f.issuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the OIDC issuer must match")
	fs.StringVar(&f.trustedRoot, "trusted-root", "", "keyless: trusted_root.json (cosign trusted-root create, or Sigstore's TUF root) to verify against, offline")
}

// set reports whether any keyless verification flag is given.
func (f *identityFlags) set() bool {
	return f.identity != "" || f.identityRegexp != "" || f.issuer != "" || f.issuerRegexp != "" || f.trustedRoot != ""
}

func (f *identityFlags) id() sign.Identity {
	return sign.Identity{Subject: f.identity, SubjectRegexp: f.identityRegexp, Issuer: f.issuer, IssuerRegexp: f.issuerRegexp}
}

// keylessVerifier returns the keyless verifier the flags describe; each
// missing part is a usage error naming its flag.
func (f *identityFlags) keylessVerifier() (*sign.KeylessVerifier, error) {
	if f.trustedRoot == "" {
		return nil, &usageError{errors.New("keyless verification needs --trusted-root FILE (trusted_root.json: `cosign trusted-root create` writes one; public-good Sigstore's comes from its TUF repository)")}
	}
	tr, _, err := sign.LoadTrustedRoot(f.trustedRoot)
	if err != nil {
		return nil, err
	}
	v, err := sign.NewKeylessVerifier(tr, f.id())
	if err != nil {
		return nil, &usageError{err}
	}
	return v, nil
}

// trustVerifier returns the verifier of --key or of the keyless flags, nil
// when neither is given. required makes neither a usage error.
func trustVerifier(ctx context.Context, key string, f *identityFlags, required bool) (signature.Verifier, error) {
	switch {
	case key != "" && f.set():
		return nil, &usageError{errors.New("--key and the keyless flags (--certificate-identity, --certificate-oidc-issuer, --trusted-root) exclude each other")}
	case key != "":
		return sign.LoadVerifier(ctx, key)
	case f.set():
		return f.keylessVerifier()
	case required:
		return nil, &usageError{errors.New("give --key <public-key>, or for keyless signatures --certificate-identity, --certificate-oidc-issuer and --trusted-root")}
	}
	return nil, nil
}

// describeSigner names who the verifier trusts, for messages.
func describeSigner(key string, v signature.Verifier) string {
	if kv, ok := v.(*sign.KeylessVerifier); ok {
		return "keyless, " + kv.Identity().String()
	}
	return key
}

// keylessSignFlags are push's keyless signing flags.
type keylessSignFlags struct {
	keyless   bool
	fulcioURL string
	rekorURL  string
}

func (f *keylessSignFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.keyless, "keyless", false, "sign keyless: an OIDC token from SIGSTORE_ID_TOKEN or GitHub Actions, a Fulcio certificate, a Rekor entry")
	fs.StringVar(&f.fulcioURL, "fulcio-url", sign.PublicFulcioURL, "keyless: the Fulcio certificate authority")
	fs.StringVar(&f.rekorURL, "rekor-url", sign.PublicRekorURL, "keyless: the Rekor transparency log")
}

// signer returns the keyless signer, with its OIDC token from env.
func (f *keylessSignFlags) signer(env *Env) (*sign.KeylessSigner, error) {
	ts, _ := sign.EnvTokenSource(env.Getenv, http.DefaultClient)
	return sign.NewKeylessSigner(sign.KeylessSignerOptions{
		Fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: f.fulcioURL, Retries: 1}),
		Rekor:  []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: f.rekorURL, Retries: 1})},
		Token:  ts,
	})
}
