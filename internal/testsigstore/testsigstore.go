// Package testsigstore runs a VIRTUAL Sigstore on 127.0.0.1 for tests: an
// OIDC issuer that mints identity tokens, a Fulcio that issues code-signing
// certificates with an embedded SCT for those tokens, and a Rekor v1 that
// logs entries, the last two speaking the HTTP APIs that sigstore-go's
// sign.NewFulcio and sign.NewRekor call (POST /api/v2/signingCert, POST
// /api/v1/log/entries), and a trusted_root.json for all of it.
//
// It is not the real Fulcio and Rekor: those servers
// (github.com/sigstore/fulcio, github.com/sigstore/rekor) are not built
// here, because a cold CI run is at its time budget and each would add a
// large build. What this leaves unexercised is named in docs/signing.md:
// the servers' own request validation, OIDC discovery and JWKS fetching,
// a CT log over HTTP, and a Merkle tree larger than one entry. Rekor's log
// key, signed entry timestamps and checkpoints come from sigstore-go's
// pkg/testing/ca VirtualSigstore; entries are canonicalised with Rekor's own
// pkg/types, as the real Rekor does; the Fulcio CA and CT log follow
// Fulcio's baseca (precertificate, SCT, final certificate).
package testsigstore

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/swag/conv"
	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/rekor/pkg/types"
	// Rekor canonicalises only the entry kinds registered by import.
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/galley-dev/galley/bundles/sign"
)

// Issuer is the OIDC issuer URL of the virtual issuer's tokens.
const Issuer = "https://oidc.virtual-sigstore.test"

// rekorOrigin is the checkpoint origin VirtualSigstore signs with.
const rekorOrigin = "https://rekor.localhost"

// Object identifiers Fulcio writes (fulcio pkg/certificate/extensions.go)
// and the CT extensions (RFC 6962).
var (
	oidIssuer   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidCTPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	oidCTSCT    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// Sigstore is a running virtual Sigstore.
type Sigstore struct {
	FulcioURL string
	RekorURL  string

	vs        *ca.VirtualSigstore
	rootCert  *x509.Certificate
	interCert *x509.Certificate
	interKey  *ecdsa.PrivateKey
	ctKey     *ecdsa.PrivateKey
	oidcKey   *ecdsa.PrivateKey
	start     time.Time

	mu sync.Mutex
	// validity is how long certificates are valid from their issuance;
	// Fulcio's is ten minutes.
	validity  time.Duration
	notBefore time.Time // when set, the start of the next certificates
	entries   int
}

// Start starts a virtual Sigstore on 127.0.0.1, stopped when t ends.
func Start(t testing.TB) *Sigstore {
	t.Helper()
	s, stop, err := New()
	if err != nil {
		t.Fatalf("virtual Sigstore: %v", err)
	}
	t.Cleanup(stop)
	return s
}

// New starts a virtual Sigstore and returns a function that stops it.
func New() (*Sigstore, func(), error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, nil, err
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		return nil, nil, err
	}
	interCert, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		return nil, nil, err
	}
	ctKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	oidcKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	s := &Sigstore{vs: vs, rootCert: rootCert, interCert: interCert, interKey: interKey, ctKey: ctKey, oidcKey: oidcKey, validity: 10 * time.Minute, start: time.Now().Add(-time.Hour)}

	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	for _, srv := range []struct {
		url     *string
		path    string
		handler http.HandlerFunc
	}{
		{&s.FulcioURL, "/api/v2/signingCert", s.serveSigningCert},
		{&s.RekorURL, "/api/v1/log/entries", s.serveLogEntries},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("POST "+srv.path, srv.handler)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		stops = append(stops, func() { _ = hs.Close() })
		*srv.url = "http://" + ln.Addr().String()
	}
	return s, stop, nil
}

// SetCertificateWindow makes the next certificates valid from notBefore for
// validity (zero notBefore: from their issuance), to make expired ones.
func (s *Sigstore) SetCertificateWindow(notBefore time.Time, validity time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notBefore, s.validity = notBefore, validity
}

// Token mints an identity token of the virtual issuer for subject, with
// audience sigstore, as a CI system's OIDC provider would: an e-mail
// subject goes in a verified email claim, anything else in sub (a URI such
// as a GitHub workflow ref).
func (s *Sigstore) Token(subject string) (string, error) {
	return s.token(Issuer, subject)
}

// TokenFrom mints a token claiming another issuer, signed with the virtual
// issuer's key, which Fulcio refuses.
func (s *Sigstore) TokenFrom(issuer, subject string) (string, error) {
	return s.token(issuer, subject)
}

func (s *Sigstore) token(issuer, subject string) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss": issuer,
		"aud": "sigstore",
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"sub": subject,
	}
	if isEmail(subject) {
		claims["email"] = subject
		claims["email_verified"] = true
	}
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64(header) + "." + b64(body)
	sum := sha256.Sum256([]byte(signing))
	r, ss, err := ecdsa.Sign(rand.Reader, s.oidcKey, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return signing + "." + b64(sig), nil
}

// isEmail tells an e-mail subject from a URI one (a GitHub workflow ref has
// an "@" too).
func isEmail(subject string) bool {
	return strings.Contains(subject, "@") && !strings.Contains(subject, "://")
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type tokenClaims struct {
	Issuer        string `json:"iss"`
	Audience      any    `json:"aud"`
	Expiry        int64  `json:"exp"`
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
}

// verifyToken checks a token as Fulcio does: the issuer's signature, the
// issuer, the audience sigstore, the expiry.
func (s *Sigstore) verifyToken(tok string) (*tokenClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("bad JWT signature encoding")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&s.oidcKey.PublicKey, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("JWT signature does not verify")
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var c tokenClaims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, err
	}
	if c.Issuer != Issuer {
		return nil, fmt.Errorf("unknown issuer %q", c.Issuer)
	}
	if aud, _ := c.Audience.(string); aud != "sigstore" {
		return nil, fmt.Errorf("audience %v, want sigstore", c.Audience)
	}
	if time.Now().Unix() > c.Expiry {
		return nil, errors.New("token expired")
	}
	return &c, nil
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": err.Error()})
}

// serveSigningCert answers Fulcio's v2 signingCert request.
func (s *Sigstore) serveSigningCert(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		httpError(w, http.StatusUnauthorized, errors.New("no bearer token"))
		return
	}
	claims, err := s.verifyToken(tok)
	if err != nil {
		httpError(w, http.StatusUnauthorized, fmt.Errorf("identity token: %w", err))
		return
	}
	var req struct {
		PublicKeyRequest struct {
			PublicKey struct {
				Algorithm string `json:"algorithm"`
				Content   string `json:"content"`
			} `json:"publicKey"`
			ProofOfPossession string `json:"proofOfPossession"`
		} `json:"publicKeyRequest"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("public key: %w", err))
		return
	}
	subject := claims.Subject
	if claims.Email != "" {
		if !claims.EmailVerified {
			httpError(w, http.StatusBadRequest, errors.New("email not verified"))
			return
		}
		subject = claims.Email
	}
	pop, err := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	if err := v.VerifySignature(bytes.NewReader(pop), strings.NewReader(subject)); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("proof of possession: %w", err))
		return
	}
	chain, err := s.issue(pub, subject, claims.Email != "", claims.Issuer)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	var pems []string
	for _, c := range chain {
		pems = append(pems, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	w.Header().Set("Content-Type", "application/json")
	// The real Fulcio answers 200 (grpc-gateway), which sigstore-go checks.
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": pems}}})
}

// issue makes the certificate chain for pub as Fulcio's baseca does: a
// precertificate with the CT poison, an SCT for it from the CT log, and the
// final certificate with the SCT in place of the poison.
func (s *Sigstore) issue(pub crypto.PublicKey, subject string, email bool, issuer string) ([]*x509.Certificate, error) {
	s.mu.Lock()
	notBefore, validity := s.notBefore, s.validity
	s.mu.Unlock()
	if notBefore.IsZero() {
		notBefore = time.Now().Truncate(time.Second)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, err
	}
	issuerV2, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidIssuer, Value: []byte(issuer)},
			{Id: oidIssuerV2, Value: issuerV2},
			{Id: oidCTPoison, Critical: true, Value: asn1.NullBytes},
		},
	}
	if email {
		tmpl.EmailAddresses = []string{subject}
	} else {
		u, err := url.Parse(subject)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("subject %q is neither an e-mail nor a URI", subject)
		}
		tmpl.URIs = []*url.URL{u}
	}
	preDER, err := x509.CreateCertificate(rand.Reader, tmpl, s.interCert, pub, s.interKey)
	if err != nil {
		return nil, fmt.Errorf("precertificate: %w", err)
	}
	pre, err := x509.ParseCertificate(preDER)
	if err != nil {
		return nil, err
	}
	sct, err := s.sct(preDER)
	if err != nil {
		return nil, fmt.Errorf("SCT: %w", err)
	}
	var exts []pkix.Extension
	for _, e := range pre.Extensions {
		if !e.Id.Equal(oidCTPoison) {
			exts = append(exts, e)
		}
	}
	exts = append(exts, sct)
	final := *pre
	final.ExtraExtensions = exts
	der, err := x509.CreateCertificate(rand.Reader, &final, s.interCert, pub, s.interKey)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, s.interCert, s.rootCert}, nil
}

// sct returns the SCT list extension of the CT log for the precertificate.
func (s *Sigstore) sct(preDER []byte) (pkix.Extension, error) {
	pre, err := ctx509.ParseCertificate(preDER)
	if err != nil {
		return pkix.Extension{}, err
	}
	issuer, err := ctx509.ParseCertificate(s.interCert.Raw)
	if err != nil {
		return pkix.Extension{}, err
	}
	ts := uint64(time.Now().UnixMilli())
	leaf, err := ct.MerkleTreeLeafFromChain([]*ctx509.Certificate{pre, issuer}, ct.PrecertLogEntryType, ts)
	if err != nil {
		return pkix.Extension{}, err
	}
	keyID, err := logID(&s.ctKey.PublicKey)
	if err != nil {
		return pkix.Extension{}, err
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, Timestamp: ts}
	copy(sct.LogID.KeyID[:], keyID)
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
	if err != nil {
		return pkix.Extension{}, err
	}
	sum := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, sum[:])
	if err != nil {
		return pkix.Extension{}, err
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	sctBytes, err := cttls.Marshal(sct)
	if err != nil {
		return pkix.Extension{}, err
	}
	list, err := cttls.Marshal(ctx509.SignedCertificateTimestampList{SCTList: []ctx509.SerializedSCT{{Val: sctBytes}}})
	if err != nil {
		return pkix.Extension{}, err
	}
	val, err := asn1.Marshal(list)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidCTSCT, Value: val}, nil
}

// logID is a log's key ID: the SHA-256 of its PKIX public key (RFC 6962,
// and Rekor's log ID).
func logID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// serveLogEntries answers Rekor v1's createLogEntry: the proposed entry
// canonicalised by Rekor's own types, a signed entry timestamp and an
// inclusion proof with a signed checkpoint.
func (s *Sigstore) serveLogEntries(w http.ResponseWriter, r *http.Request) {
	pe, err := models.UnmarshalProposedEntry(http.MaxBytesReader(w, r.Body, 4<<20), runtime.JSONConsumer())
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	ctx := context.Background()
	entry, err := types.CreateVersionedEntry(pe)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	body, err := types.CanonicalizeEntry(ctx, entry)
	if err != nil {
		httpError(w, http.StatusBadRequest, err)
		return
	}
	id, err := s.vs.RekorLogID()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	s.mu.Lock()
	index := int64(s.entries)
	s.entries++
	s.mu.Unlock()
	now := time.Now().Unix()
	b64body := base64.StdEncoding.EncodeToString(body)
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{Body: b64body, IntegratedTime: now, LogIndex: index, LogID: id})
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	proof, err := s.vs.GetInclusionProof(body)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	leafHash := sha256.Sum256(append([]byte{0}, body...))
	uuid := hex.EncodeToString(leafHash[:])
	anon := models.LogEntryAnon{
		Body:           b64body,
		IntegratedTime: conv.Pointer(now),
		LogID:          conv.Pointer(id),
		LogIndex:       conv.Pointer(index),
		Verification:   &models.LogEntryAnonVerification{InclusionProof: proof, SignedEntryTimestamp: set},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", uuid)
	w.Header().Set("Location", "/api/v1/log/entries/"+uuid)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]models.LogEntryAnon{uuid: anon})
}

// TrustedRoot returns the virtual Sigstore's trusted root: the Fulcio CA,
// the CT log and the Rekor log.
func (s *Sigstore) TrustedRoot() (*root.TrustedRoot, error) {
	ctID, err := logID(&s.ctKey.PublicKey)
	if err != nil {
		return nil, err
	}
	rekorLogs := map[string]*root.TransparencyLog{}
	for _, l := range s.vs.RekorLogs() {
		id, err := logID(l.PublicKey)
		if err != nil {
			return nil, err
		}
		rekorLogs[hex.EncodeToString(id)] = &root.TransparencyLog{
			BaseURL: rekorOrigin, ID: id, HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256,
			PublicKey: l.PublicKey, ValidityPeriodStart: s.start,
		}
	}
	return root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: s.rootCert, Intermediates: []*x509.Certificate{s.interCert},
			ValidityPeriodStart: s.start, URI: s.FulcioURL,
		}},
		map[string]*root.TransparencyLog{hex.EncodeToString(ctID): {
			BaseURL: "https://ctfe.virtual-sigstore.test", ID: ctID, HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256,
			PublicKey: &s.ctKey.PublicKey, ValidityPeriodStart: s.start,
		}},
		nil, rekorLogs)
}

// WriteTrustedRoot writes the trusted root as trusted_root.json to path.
func (s *Sigstore) WriteTrustedRoot(path string) error {
	tr, err := s.TrustedRoot()
	if err != nil {
		return err
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// SignerOptions are the options of a keyless signer that gets its
// certificate and log entry from this Sigstore, through the same
// sigstore-go clients galley uses against public-good Sigstore, with token
// as the OIDC identity token.
func (s *Sigstore) SignerOptions(token string) sign.KeylessSignerOptions {
	return sign.KeylessSignerOptions{
		Fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: s.FulcioURL}),
		Rekor:  []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{BaseURL: s.RekorURL})},
		Token:  func(context.Context) (string, error) { return token, nil },
	}
}
