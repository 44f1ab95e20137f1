package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	intotov1 "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// The Sigstore bundle format cosign v3 signs with by default, and how it
// stores a bundle in a registry (cosign v3.1.3 cmd/cosign/cli/sign/sign.go:
// signDigestBundle; pkg/oci/remote/write.go: WriteAttestationNewBundleFormat,
// WriteReferrer; pkg/types/predicate.go).
const (
	// BundleMediaType is a Sigstore bundle v0.3: the artifactType of the
	// referrer manifest and the media type of its one layer.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// InTotoPayloadType is the DSSE payload type of an in-toto statement.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// CosignSignPredicateType is the predicate of the statement `cosign
	// sign` signs in the bundle format: an empty predicate whose subject is
	// the signed manifest.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// AnnotationBundleContent and AnnotationBundlePredicateType annotate a
	// bundle referrer manifest; cosign writes content "dsse-envelope".
	AnnotationBundleContent       = "dev.sigstore.bundle.content"
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	BundleContentDSSE             = "dsse-envelope"
)

// maxBundleSize bounds a Sigstore bundle galley reads. A key-mode bundle of a
// signature is about 1 KiB and a provenance a few KiB; a keyless one with a
// certificate chain and log entries stays well under 64 KiB.
const maxBundleSize = 4 << 20

// MaxBundleSize is the largest Sigstore bundle VerifyBundle reads.
const MaxBundleSize = maxBundleSize

var (
	// ErrInvalidBundle: the bytes are not a Sigstore bundle galley can
	// check (not JSON, truncated, no DSSE envelope, not an in-toto
	// statement).
	ErrInvalidBundle = errors.New("not a valid Sigstore bundle")
	// ErrPredicateType: the bundle verifies and names the digest, but
	// attests something else than what was asked for.
	ErrPredicateType = errors.New("bundle has another predicate type")
)

// Keypair adapts a signature.SignerVerifier (a cosign key file or a KMS key)
// to sigstore-go's sign.Keypair, as cosign v3 does (cosign
// internal/key/svkeypair.go): the hint is base64(sha256(PKIX public key)),
// the algorithm sigstore's default for the key.
type Keypair struct {
	sv     signature.SignerVerifier
	pub    crypto.PublicKey
	hint   []byte
	keyAlg string
	alg    signature.AlgorithmDetails
}

var _ sgsign.Keypair = (*Keypair)(nil)

// NewKeypair returns the Keypair of sv.
func NewKeypair(sv signature.SignerVerifier) (*Keypair, error) {
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	var keyAlg string
	switch pub.(type) {
	case *ecdsa.PublicKey:
		keyAlg = "ECDSA"
	case *rsa.PublicKey:
		keyAlg = "RSA"
	case ed25519.PublicKey:
		keyAlg = "ED25519"
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	alg, err := signature.GetDefaultAlgorithmDetails(pub)
	if err != nil {
		return nil, fmt.Errorf("key algorithm: %w", err)
	}
	return &Keypair{sv: sv, pub: pub, hint: []byte(base64.StdEncoding.EncodeToString(sum[:])), keyAlg: keyAlg, alg: alg}, nil
}

// GetHashAlgorithm implements sign.Keypair.
func (k *Keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }

// GetSigningAlgorithm implements sign.Keypair.
func (k *Keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}

// GetHint implements sign.Keypair.
func (k *Keypair) GetHint() []byte { return k.hint }

// GetKeyAlgorithm implements sign.Keypair.
func (k *Keypair) GetKeyAlgorithm() string { return k.keyAlg }

// GetPublicKey implements sign.Keypair.
func (k *Keypair) GetPublicKey() crypto.PublicKey { return k.pub }

// GetPublicKeyPem implements sign.Keypair.
func (k *Keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	return string(b), err
}

// SignData implements sign.Keypair. The digest is passed along so that a KMS
// signs it rather than being sent the message.
func (k *Keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	opts := []signature.SignOption{options.WithContext(ctx)}
	var sum []byte
	if h := k.alg.GetHashType(); h != 0 {
		hh := h.New()
		hh.Write(data)
		sum = hh.Sum(nil)
		opts = append(opts, options.WithDigest(sum))
	}
	sig, err := k.sv.SignMessage(bytes.NewReader(data), opts...)
	if err != nil {
		return nil, nil, err
	}
	return sig, sum, nil
}

// SignatureStatement returns the in-toto statement `cosign sign` (v3,
// bundle format) signs for the manifest d: subject {digest: {alg: hex},
// annotations: {}},
// predicate type CosignSignPredicateType, an empty predicate, in
// protojson's encoding as cosign writes it.
func SignatureStatement(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("signature statement: digest %q: %w", d, err)
	}
	st := &intotov1.Statement{
		Type: intotov1.StatementTypeUri,
		// cosign passes its (here empty) annotations through, so the
		// subject carries "annotations":{}.
		Subject:       []*intotov1.ResourceDescriptor{{Digest: map[string]string{d.Algorithm().String(): d.Encoded()}, Annotations: &structpb.Struct{}}},
		PredicateType: CosignSignPredicateType,
		Predicate:     &structpb.Struct{},
	}
	b, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("signature statement: %w", err)
	}
	return b, nil
}

// SignStatement signs an in-toto statement with sv in a DSSE envelope and
// returns the Sigstore bundle v0.3 as JSON, as `cosign sign --key` and
// `cosign attest --key` write it with no transparency log (key mode,
// --tlog-upload=false): the verification material is the key's hint.
//
// With a *KeylessSigner the bundle is signed keyless instead: its
// verification material is the Fulcio certificate and the Rekor entry.
func SignStatement(ctx context.Context, sv signature.SignerVerifier, statement []byte) ([]byte, error) {
	if _, err := parseStatement(statement); err != nil {
		return nil, fmt.Errorf("signing bundle: %w", err)
	}
	if ks, ok := sv.(*KeylessSigner); ok {
		return ks.signStatement(ctx, statement)
	}
	kp, err := NewKeypair(sv)
	if err != nil {
		return nil, fmt.Errorf("signing bundle: %w", err)
	}
	b, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: InTotoPayloadType}, kp, sgsign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("signing bundle: %w", err)
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding bundle: %w", err)
	}
	return out, nil
}

// VerifiedBundle is a Sigstore bundle that passed VerifyBundle.
type VerifiedBundle struct {
	PredicateType string
	// Statement is the signed in-toto statement, as signed (JSON).
	Statement []byte
}

// VerifyBundle checks the Sigstore bundle b with the public key v as `cosign
// verify --key --insecure-ignore-tlog` and Flux's key-mode verifier do
// (sigstore-go's verifier, key trusted material, no observer timestamp), then
// that the signed in-toto statement has d among its subjects and, when
// predicateType is not empty, that predicate type. Failures wrap
// ErrInvalidBundle, ErrSignatureMismatch, ErrDigestMismatch or
// ErrPredicateType.
//
// With a *KeylessVerifier (or a *KeylessSigner) v, the bundle is checked
// keyless instead (see KeylessVerifier), and may fail with
// ErrIdentityMismatch, ErrNotKeyless or ErrNoTransparencyLog.
func VerifyBundle(ctx context.Context, v signature.Verifier, b []byte, d digest.Digest, predicateType string) (*VerifiedBundle, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("digest %q: %w", d, err)
	}
	if len(b) > maxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, limit is %d", ErrInvalidBundle, len(b), maxBundleSize)
	}
	var bundle sgbundle.Bundle
	if err := bundle.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	env := bundle.GetDsseEnvelope()
	if env == nil {
		return nil, fmt.Errorf("%w: no DSSE envelope (a message signature bundle does not say what it signs)", ErrInvalidBundle)
	}
	if env.GetPayloadType() != InTotoPayloadType {
		return nil, fmt.Errorf("%w: DSSE payload type %q, want %q", ErrInvalidBundle, env.GetPayloadType(), InTotoPayloadType)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The signature first, the subject after: a statement is read only
	// once the key vouches for it, and a signature that holds over another
	// digest is reported as such rather than as a bad signature.
	switch kv := v.(type) {
	case *KeylessVerifier:
		if err := kv.verifyBundle(&bundle); err != nil {
			return nil, err
		}
	case *KeylessSigner:
		if err := kv.verifyBundle(&bundle); err != nil {
			return nil, err
		}
	default:
		if vc, err := bundle.VerificationContent(); err == nil && vc.Certificate() != nil {
			return nil, fmt.Errorf("%w: the bundle is signed keyless (certificate of %s): verify it with --certificate-identity, --certificate-oidc-issuer and --trusted-root", ErrSignatureMismatch, certIdentity(vc.Certificate()))
		}
		key := root.NewExpiringKey(v, time.Time{}, time.Time{})
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return key, nil })
		verifier, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
		if err != nil {
			return nil, fmt.Errorf("verifying bundle: %w", err)
		}
		if _, err := verifier.Verify(&bundle, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithKey())); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSignatureMismatch, err)
		}
	}
	st, err := parseStatement(env.GetPayload())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	if !hasSubject(st, d) {
		return nil, fmt.Errorf("%w: statement subject %s, want %s", ErrDigestMismatch, subjects(st), d)
	}
	if predicateType != "" && st.GetPredicateType() != predicateType {
		return nil, fmt.Errorf("%w: %q, want %q", ErrPredicateType, st.GetPredicateType(), predicateType)
	}
	return &VerifiedBundle{PredicateType: st.GetPredicateType(), Statement: bytes.Clone(env.GetPayload())}, nil
}

// parseStatement decodes an in-toto v1 statement (the v0.1 type is read too,
// as cosign does) and checks its shape.
func parseStatement(b []byte) (*intotov1.Statement, error) {
	var st intotov1.Statement
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	switch st.GetType() {
	case intotov1.StatementTypeUri, "https://in-toto.io/Statement/v0.1":
	default:
		return nil, fmt.Errorf("in-toto statement: _type %q, want %q", st.GetType(), intotov1.StatementTypeUri)
	}
	if len(st.GetSubject()) == 0 {
		return nil, errors.New("in-toto statement: no subject")
	}
	if st.GetPredicateType() == "" {
		return nil, errors.New("in-toto statement: no predicateType")
	}
	return &st, nil
}

func hasSubject(st *intotov1.Statement, d digest.Digest) bool {
	for _, s := range st.GetSubject() {
		if h, ok := s.GetDigest()[d.Algorithm().String()]; ok {
			if got, err := hex.DecodeString(h); err == nil && hex.EncodeToString(got) == d.Encoded() {
				return true
			}
		}
	}
	return false
}

func subjects(st *intotov1.Statement) string {
	var b bytes.Buffer
	for i, s := range st.GetSubject() {
		if i > 0 {
			b.WriteString(", ")
		}
		for alg, h := range s.GetDigest() {
			fmt.Fprintf(&b, "%s:%s", alg, h)
			break
		}
	}
	return b.String()
}

// UnverifiedStatement returns the in-toto statement inside the Sigstore
// bundle b and its predicate type WITHOUT checking any signature: for
// showing what a referrer claims (inspect), never for trusting it.
func UnverifiedStatement(b []byte) (statement []byte, predicateType string, err error) {
	if len(b) > maxBundleSize {
		return nil, "", fmt.Errorf("%w: %d bytes, limit is %d", ErrInvalidBundle, len(b), maxBundleSize)
	}
	var bundle sgbundle.Bundle
	if err := bundle.UnmarshalJSON(b); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	env := bundle.GetDsseEnvelope()
	if env == nil || env.GetPayloadType() != InTotoPayloadType {
		return nil, "", fmt.Errorf("%w: no in-toto DSSE envelope", ErrInvalidBundle)
	}
	st, err := parseStatement(env.GetPayload())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	return bytes.Clone(env.GetPayload()), st.GetPredicateType(), nil
}
