package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// PEM block types of cosign private keys (cosign pkg/cosign/keys.go). New
// keys are written as SIGSTORE; COSIGN is what cosign wrote before v2.
const (
	SigstorePrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	CosignPrivateKeyPEMType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// Password environment variables, in the order PasswordFromEnv reads them.
const (
	PasswordEnv       = "GALLEY_KEY_PASSWORD"
	CosignPasswordEnv = "COSIGN_PASSWORD"
)

var (
	// ErrNoPassword is returned by PasswordFromEnv's PassFunc when neither
	// password variable is set.
	ErrNoPassword = errors.New("no password: set " + CosignPasswordEnv + " or " + PasswordEnv)

	// ErrWrongPassword is returned when an encrypted private key does not
	// open with the password given. secretbox cannot tell a wrong password
	// from a damaged ciphertext, hence the question mark.
	ErrWrongPassword = errors.New("wrong password?")
)

// PassFunc returns the password of a private key. confirm is true when the
// password protects a new key, so an interactive implementation should ask
// twice. Same shape as cosign's and sigstore's PassFunc.
type PassFunc func(confirm bool) ([]byte, error)

// PasswordFromEnv reads the key password from GALLEY_KEY_PASSWORD, then
// COSIGN_PASSWORD, through lookupEnv (os.LookupEnv, or a test's environment).
// A variable set to the empty string means an empty password, as in cosign;
// only an unset variable counts as missing. It takes a lookup function rather
// than a getenv because getenv cannot tell unset from empty.
func PasswordFromEnv(lookupEnv func(string) (string, bool)) PassFunc {
	return func(bool) ([]byte, error) {
		for _, name := range []string{PasswordEnv, CosignPasswordEnv} {
			if pw, ok := lookupEnv(name); ok {
				return []byte(pw), nil
			}
		}
		return nil, ErrNoPassword
	}
}

// GenerateKeyPair makes an ECDSA P-256 key pair, cosign's default, and returns
// the private key PEM encrypted with pf(true) in cosign's format (loadable by
// `cosign sign --key`) and the public key PEM (for `cosign verify --key`).
// A nil pf means an empty password, as in cosign.
func GenerateKeyPair(pf PassFunc) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating ECDSA P-256 key: %w", err)
	}
	password := []byte{}
	if pf != nil {
		if password, err = pf(true); err != nil {
			return nil, nil, err
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding private key: %w", err)
	}
	// encrypted.Encrypt uses scrypt's "standard" parameters, as cosign does.
	box, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypting private key: %w", err)
	}
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encoding public key: %w", err)
	}
	privPEM = pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyPEMType, Bytes: box})
	return privPEM, pubPEM, nil
}

// LoadSigner returns the signer named by keyRef: a KMS URI
// (scheme://..., see SupportedKMS) or the path of a cosign encrypted private
// key file, decrypted with pf(false) (nil pf: empty password). Like cosign,
// it reads only encrypted keys; other private keys must go through
// `cosign import-key-pair` first.
func LoadSigner(ctx context.Context, keyRef string, pf PassFunc) (signature.SignerVerifier, error) {
	if isKMS(keyRef) {
		return kmsSignerVerifier(ctx, keyRef)
	}
	b, err := os.ReadFile(keyRef)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	// Check the file before asking for a password it could not use.
	block, err := decodePrivateKey(b, keyRef)
	if err != nil {
		return nil, err
	}
	password := []byte{}
	if pf != nil {
		if password, err = pf(false); err != nil {
			return nil, fmt.Errorf("password for %s: %w", keyRef, err)
		}
	}
	return decryptPrivateKey(block, password, keyRef)
}

// ParsePrivateKey decrypts a cosign encrypted private key PEM. where names
// the key's origin in errors. Errors never contain the password or key
// material.
func ParsePrivateKey(privPEM, password []byte, where string) (signature.SignerVerifier, error) {
	block, err := decodePrivateKey(privPEM, where)
	if err != nil {
		return nil, err
	}
	return decryptPrivateKey(block, password, where)
}

func decodePrivateKey(privPEM []byte, where string) (*pem.Block, error) {
	block, _ := pem.Decode(privPEM)
	if block == nil {
		return nil, fmt.Errorf("reading private key %s: no PEM block", where)
	}
	if block.Type != SigstorePrivateKeyPEMType && block.Type != CosignPrivateKeyPEMType {
		return nil, fmt.Errorf("reading private key %s: PEM type %q is not a cosign key (want %q or %q; import other keys with `cosign import-key-pair`)",
			where, block.Type, SigstorePrivateKeyPEMType, CosignPrivateKeyPEMType)
	}
	if err := checkEnvelope(block.Bytes); err != nil {
		return nil, fmt.Errorf("reading private key %s: %w", where, err)
	}
	return block, nil
}

func decryptPrivateKey(block *pem.Block, password []byte, where string) (signature.SignerVerifier, error) {
	// The envelope is well formed, so the only way left for Decrypt to fail
	// is secretbox refusing the key derived from the password.
	der, err := encrypted.Decrypt(block.Bytes, password)
	if err != nil {
		return nil, fmt.Errorf("decrypting key %s: %w", where, ErrWrongPassword)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing decrypted key %s: %w", where, err)
	}
	// ED25519ph for Ed25519 keys, as cosign's GetDefaultLoadOptions.
	sv, err := signature.LoadDefaultSignerVerifier(priv, options.WithED25519ph())
	if err != nil {
		return nil, fmt.Errorf("loading key %s: %w", where, err)
	}
	return sv, nil
}

// envelope is go-securesystemslib's encrypted JSON, checked before
// decrypting so a damaged file is not reported as a wrong password.
type envelope struct {
	KDF struct {
		Name   string `json:"name"`
		Params struct {
			N int `json:"N"`
			R int `json:"r"`
			P int `json:"p"`
		} `json:"params"`
		Salt []byte `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

func checkEnvelope(b []byte) error {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("encrypted key envelope: %w", err)
	}
	if e.KDF.Name != "scrypt" {
		return fmt.Errorf("encrypted key envelope: unsupported kdf %q, want scrypt", e.KDF.Name)
	}
	// The three parameter sets go-securesystemslib accepts (legacy,
	// standard, OWASP); anything else it rejects, and huge values would
	// exhaust memory.
	switch p := e.KDF.Params; {
	case p.R == 8 && p.P == 1 && (p.N == 1<<15 || p.N == 1<<16 || p.N == 1<<17):
	default:
		return fmt.Errorf("encrypted key envelope: unsupported scrypt parameters N=%d r=%d p=%d", p.N, p.R, p.P)
	}
	if e.Cipher.Name != "nacl/secretbox" {
		return fmt.Errorf("encrypted key envelope: unsupported cipher %q, want nacl/secretbox", e.Cipher.Name)
	}
	if len(e.Cipher.Nonce) != 24 {
		return fmt.Errorf("encrypted key envelope: nonce is %d bytes, want 24", len(e.Cipher.Nonce))
	}
	if len(e.Ciphertext) == 0 {
		return errors.New("encrypted key envelope: empty ciphertext")
	}
	return nil
}

// LoadVerifier returns the verifier named by keyRef: a KMS URI, or the path
// of a PEM public key ("PUBLIC KEY", as cosign.pub, or "RSA PUBLIC KEY").
func LoadVerifier(ctx context.Context, keyRef string) (signature.Verifier, error) {
	if isKMS(keyRef) {
		return kmsSignerVerifier(ctx, keyRef)
	}
	b, err := os.ReadFile(keyRef)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	return ParsePublicKey(b, keyRef)
}

// ParsePublicKey reads a PEM public key. where names its origin in errors.
func ParsePublicKey(pubPEM []byte, where string) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("reading public key %s: %w", where, err)
	}
	v, err := signature.LoadDefaultVerifier(pub, options.WithED25519ph())
	if err != nil {
		return nil, fmt.Errorf("loading public key %s: %w", where, err)
	}
	return v, nil
}

// PublicKeyPEM returns the PEM of a signer's or verifier's public key, e.g.
// to write cosign.pub for a KMS key.
func PublicKeyPEM(ctx context.Context, k signature.PublicKeyProvider) ([]byte, error) {
	pub, err := k.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("getting public key: %w", err)
	}
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return b, nil
}

// isKMS reports whether keyRef is a URI rather than a file path; cosign makes
// the same test before trying kms.Get (pkg/signature/keys.go).
func isKMS(keyRef string) bool {
	return strings.Contains(keyRef, "://")
}
