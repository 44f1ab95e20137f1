package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// Keyless signing (a short-lived Fulcio certificate for an OIDC identity, the
// signature logged in Rekor) and its verification against a trusted root, as
// `cosign sign` and `cosign verify --certificate-identity
// --certificate-oidc-issuer --trusted-root` do in v3 (cosign
// pkg/cosign/verify.go: VerifyNewBundle).
//
// A keyless signer and verifier are a signature.SignerVerifier and a
// signature.Verifier, so that they travel every path a key travels (publish,
// verify, pull, promote, import); SignStatement and VerifyBundle recognise
// them. The legacy ".sig" format carries no certificate the way galley
// writes it, so they refuse it with ErrKeylessLegacy rather than produce or
// accept a signature nobody can tie to an identity.

// Public-good Sigstore, the default of --fulcio-url and --rekor-url.
const (
	PublicFulcioURL = "https://fulcio.sigstore.dev"
	PublicRekorURL  = "https://rekor.sigstore.dev"
)

var (
	// ErrKeylessLegacy: keyless signatures exist only in the Sigstore
	// bundle format here.
	ErrKeylessLegacy = errors.New("keyless signing and verification use the Sigstore bundle format only: a cosign .sig signature is made and checked with a key (--signature-format legacy needs --key)")
	// ErrIdentityMismatch: the bundle verifies against the trusted root,
	// but its certificate names another identity or OIDC issuer.
	ErrIdentityMismatch = errors.New("certificate identity does not match")
	// ErrNotKeyless: a keyless verification met a bundle signed with a key.
	ErrNotKeyless = errors.New("bundle is signed with a key, not keyless")
	// ErrNoTransparencyLog: a keyless bundle without a transparency-log
	// entry, so nothing proves it was signed while its certificate was
	// valid.
	ErrNoTransparencyLog = errors.New("no transparency-log entry")
	// ErrTrustedRoot: a trusted_root.json that cannot be used.
	ErrTrustedRoot = errors.New("invalid trusted root")
)

// Identity is who a keyless signature must come from: the certificate's
// subject alternative name (an e-mail or a URI such as a GitHub workflow
// ref) and the OIDC issuer that vouched for it, each exact or as a regular
// expression (Go syntax, matched unanchored, as cosign does). Both are
// required: a keyless verification that accepts any identity or any issuer
// accepts anyone's signature.
type Identity struct {
	Subject       string `json:"subject,omitempty"`
	SubjectRegexp string `json:"subjectRegexp,omitempty"`
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegexp  string `json:"issuerRegexp,omitempty"`
}

// String names the identity as the flags spell it.
func (id Identity) String() string {
	var parts []string
	if id.Subject != "" {
		parts = append(parts, "identity "+id.Subject)
	}
	if id.SubjectRegexp != "" {
		parts = append(parts, "identity matching "+id.SubjectRegexp)
	}
	if id.Issuer != "" {
		parts = append(parts, "issuer "+id.Issuer)
	}
	if id.IssuerRegexp != "" {
		parts = append(parts, "issuer matching "+id.IssuerRegexp)
	}
	return strings.Join(parts, ", ")
}

func (id Identity) certificateIdentity() (verify.CertificateIdentity, error) {
	if id.Subject == "" && id.SubjectRegexp == "" {
		return verify.CertificateIdentity{}, errors.New("keyless verification needs the signer's identity: set --certificate-identity or --certificate-identity-regexp")
	}
	if id.Issuer == "" && id.IssuerRegexp == "" {
		return verify.CertificateIdentity{}, errors.New("keyless verification needs the OIDC issuer: set --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")
	}
	ci, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegexp, id.Subject, id.SubjectRegexp)
	if err != nil {
		return verify.CertificateIdentity{}, fmt.Errorf("certificate identity: %w", err)
	}
	return ci, nil
}

// LoadTrustedRoot reads a trusted_root.json, as `cosign trusted-root create`
// writes it and Sigstore's TUF repository serves it.
func LoadTrustedRoot(path string) (*root.TrustedRoot, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading trusted root: %w", err)
	}
	tr, err := ParseTrustedRoot(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tr, b, nil
}

// ParseTrustedRoot parses a trusted_root.json and checks that it can verify
// a keyless signature (a certificate authority and a transparency log).
func ParseTrustedRoot(b []byte) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (want a trusted_root.json, as `cosign trusted-root create` writes it)", ErrTrustedRoot, err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, fmt.Errorf("%w: no certificateAuthorities, so no keyless certificate can chain to it", ErrTrustedRoot)
	}
	if len(tr.RekorLogs()) == 0 {
		return nil, fmt.Errorf("%w: no tlogs, so no transparency-log entry can be checked", ErrTrustedRoot)
	}
	return tr, nil
}

// KeylessVerifier checks keyless Sigstore bundles against a trusted root and
// an identity, offline, with cosign v3's default policy for certificates: the
// chain to a Fulcio CA of the root, at least one SCT from a CT log of the
// root, at least one Rekor entry of the root whose integrated time falls in
// the certificate's validity, and the certificate identity.
type KeylessVerifier struct {
	trusted  root.TrustedMaterial
	identity verify.CertificateIdentity
	id       Identity
	verifier *verify.Verifier
}

var _ signature.Verifier = (*KeylessVerifier)(nil)

// NewKeylessVerifier returns a verifier for signatures by id under trusted.
func NewKeylessVerifier(trusted root.TrustedMaterial, id Identity) (*KeylessVerifier, error) {
	if trusted == nil {
		return nil, errors.New("keyless verification needs a trusted root: set --trusted-root FILE (trusted_root.json)")
	}
	ci, err := id.certificateIdentity()
	if err != nil {
		return nil, err
	}
	v, err := verify.NewVerifier(trusted,
		verify.WithSignedCertificateTimestamps(1),
		verify.WithTransparencyLog(1),
		verify.WithIntegratedTimestamps(1))
	if err != nil {
		return nil, fmt.Errorf("keyless verifier: %w", err)
	}
	return &KeylessVerifier{trusted: trusted, identity: ci, id: id, verifier: v}, nil
}

// Identity returns the identity the verifier requires.
func (k *KeylessVerifier) Identity() Identity { return k.id }

// PublicKey implements signature.Verifier: a keyless verifier has none.
func (k *KeylessVerifier) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return nil, ErrKeylessLegacy
}

// VerifySignature implements signature.Verifier for the legacy format, which
// keyless verification does not read.
func (k *KeylessVerifier) VerifySignature(io.Reader, io.Reader, ...signature.VerifyOption) error {
	return ErrKeylessLegacy
}

// verifyBundle checks the signature of b under the trusted root and the
// identity policy; the caller checks the statement.
func (k *KeylessVerifier) verifyBundle(b *sgbundle.Bundle) error {
	vc, err := b.VerificationContent()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	cert := vc.Certificate()
	if cert == nil {
		return fmt.Errorf("%w: verify it with --key", ErrNotKeyless)
	}
	if entries, err := b.TlogEntries(); err == nil && len(entries) == 0 {
		if now := time.Now(); now.After(cert.NotAfter) {
			return fmt.Errorf("%w: the certificate of %s expired at %s and no transparency-log entry proves the signature was made before", ErrNoTransparencyLog, certIdentity(cert), cert.NotAfter.UTC().Format(time.RFC3339))
		}
		return fmt.Errorf("%w: keyless signatures must be logged in Rekor (the certificate of %s is valid only %s to %s)", ErrNoTransparencyLog, certIdentity(cert), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if _, err := k.verifier.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithCertificateIdentity(k.identity))); err != nil {
		var mismatch *verify.ErrNoMatchingCertificateIdentity
		if errors.As(err, &mismatch) {
			return fmt.Errorf("%w: the certificate names %s, want %s", ErrIdentityMismatch, certIdentity(cert), k.id)
		}
		return fmt.Errorf("%w: %v", ErrSignatureMismatch, err)
	}
	return nil
}

// certIdentity names a Fulcio certificate's subject and issuer for messages.
func certIdentity(cert *x509.Certificate) string {
	s, err := summarize(cert)
	if err != nil {
		return "an unreadable identity"
	}
	return s
}

// TokenSource returns an OIDC identity token for Fulcio.
type TokenSource func(ctx context.Context) (string, error)

// KeylessSignerOptions configures a KeylessSigner.
type KeylessSignerOptions struct {
	// Fulcio issues the certificate (sigstore-go's sign.NewFulcio).
	Fulcio sgsign.CertificateProvider
	// Rekor logs every signature (sigstore-go's sign.NewRekor); at least
	// one, since a keyless signature without a log entry stops verifying
	// when its ten-minute certificate expires.
	Rekor []sgsign.Transparency
	// Token returns the OIDC identity token (see IDToken).
	Token TokenSource
	// Verifier, when set, checks every bundle signed against a trusted root
	// and identity before it is pushed, and lets a publish recognise a
	// bundle it attached on an earlier run. Without it a bundle is checked
	// only against the certificate this signer obtained.
	Verifier *KeylessVerifier
}

// KeylessSigner signs Sigstore bundles keyless: an ephemeral key, a Fulcio
// certificate for the OIDC identity of the token, a Rekor entry.
type KeylessSigner struct {
	o KeylessSignerOptions

	mu    sync.Mutex
	token string
	certs [][]byte // DER of each certificate this signer obtained
}

var _ signature.SignerVerifier = (*KeylessSigner)(nil)

// NewKeylessSigner returns a keyless signer.
func NewKeylessSigner(o KeylessSignerOptions) (*KeylessSigner, error) {
	if o.Fulcio == nil {
		return nil, errors.New("keyless signing needs a Fulcio certificate authority")
	}
	if len(o.Rekor) == 0 {
		return nil, errors.New("keyless signing needs a Rekor transparency log: without an entry the signature stops verifying when its certificate expires")
	}
	if o.Token == nil {
		return nil, errors.New("keyless signing needs an OIDC identity token source")
	}
	return &KeylessSigner{o: o}, nil
}

// SignMessage implements signature.Signer for the legacy format, which
// keyless signing does not write.
func (s *KeylessSigner) SignMessage(io.Reader, ...signature.SignOption) ([]byte, error) {
	return nil, ErrKeylessLegacy
}

// PublicKey implements signature.Verifier: the key is made per signature.
func (s *KeylessSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return nil, ErrKeylessLegacy
}

// VerifySignature implements signature.Verifier for the legacy format.
func (s *KeylessSigner) VerifySignature(io.Reader, io.Reader, ...signature.VerifyOption) error {
	return ErrKeylessLegacy
}

func (s *KeylessSigner) idToken(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" {
		return s.token, nil
	}
	t, err := s.o.Token(ctx)
	if err != nil {
		return "", err
	}
	s.token = t
	return t, nil
}

// signStatement signs statement keyless and returns the bundle as JSON.
func (s *KeylessSigner) signStatement(ctx context.Context, statement []byte) ([]byte, error) {
	token, err := s.idToken(ctx)
	if err != nil {
		return nil, err
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	b, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: InTotoPayloadType}, kp, sgsign.BundleOptions{
		Context:                    ctx,
		CertificateProvider:        s.o.Fulcio,
		CertificateProviderOptions: &sgsign.CertificateProviderOptions{IDToken: token},
		TransparencyLogs:           s.o.Rekor,
	})
	if err != nil {
		return nil, fmt.Errorf("keyless signing (Fulcio certificate, Rekor entry): %w", err)
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding bundle: %w", err)
	}
	if c := b.GetVerificationMaterial().GetCertificate().GetRawBytes(); len(c) > 0 {
		s.mu.Lock()
		s.certs = append(s.certs, bytes.Clone(c))
		s.mu.Unlock()
	}
	return out, nil
}

// verifyBundle checks a bundle with the signer's verifier, or, without
// one, that the bundle carries a certificate this signer obtained and that
// the DSSE signature holds with its key: enough to catch a statement that
// went wrong, never enough to trust a bundle found in a registry.
func (s *KeylessSigner) verifyBundle(b *sgbundle.Bundle) error {
	if s.o.Verifier != nil {
		return s.o.Verifier.verifyBundle(b)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	cert := vc.Certificate()
	if cert == nil {
		return fmt.Errorf("%w: not signed by this keyless signer", ErrSignatureMismatch)
	}
	s.mu.Lock()
	ours := false
	for _, c := range s.certs {
		if bytes.Equal(c, cert.Raw) {
			ours = true
		}
	}
	s.mu.Unlock()
	if !ours {
		return fmt.Errorf("%w: certificate not obtained by this keyless signer (set a trusted root to recognise earlier signatures)", ErrSignatureMismatch)
	}
	env := b.GetDsseEnvelope()
	sigs := env.GetSignatures()
	if len(sigs) != 1 {
		return fmt.Errorf("%w: %d DSSE signatures, want 1", ErrInvalidBundle, len(sigs))
	}
	v, err := signature.LoadDefaultVerifier(cert.PublicKey)
	if err != nil {
		return fmt.Errorf("%w: certificate key: %v", ErrSignatureMismatch, err)
	}
	if err := v.VerifySignature(bytes.NewReader(sigs[0].GetSig()), bytes.NewReader(dsse.PAE(env.GetPayloadType(), env.GetPayload()))); err != nil {
		return fmt.Errorf("%w: %v", ErrSignatureMismatch, err)
	}
	return nil
}

func summarize(cert *x509.Certificate) (string, error) {
	s, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("identity %s, issuer %s", s.SubjectAlternativeName, s.Issuer), nil
}
