package sign_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/galley-dev/galley/bundles/sign"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestPasswordFromEnv(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"galley", map[string]string{"GALLEY_KEY_PASSWORD": "g"}, "g"},
		{"cosign", map[string]string{"COSIGN_PASSWORD": "c"}, "c"},
		{"galley first", map[string]string{"GALLEY_KEY_PASSWORD": "g", "COSIGN_PASSWORD": "c"}, "g"},
		{"empty is a password", map[string]string{"GALLEY_KEY_PASSWORD": "", "COSIGN_PASSWORD": "c"}, ""},
		{"empty cosign", map[string]string{"COSIGN_PASSWORD": ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, confirm := range []bool{false, true} {
				got, err := sign.PasswordFromEnv(env(tt.vars))(confirm)
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || string(got) != tt.want {
					t.Errorf("password = %q (nil %v), want %q", got, got == nil, tt.want)
				}
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		_, err := sign.PasswordFromEnv(env(map[string]string{"OTHER": "x"}))(false)
		if !errors.Is(err, sign.ErrNoPassword) {
			t.Fatalf("err = %v, want ErrNoPassword", err)
		}
		if want := "no password: set COSIGN_PASSWORD or GALLEY_KEY_PASSWORD"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	})
}

func pass(pw string) sign.PassFunc {
	return func(bool) ([]byte, error) { return []byte(pw), nil }
}

// writeKey writes b to a fresh file and returns its path.
func writeKey(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateKeyPairRoundTrip(t *testing.T) {
	ctx := context.Background()
	const secret = "correct horse battery staple"
	var confirmed bool
	privPEM, pubPEM, err := sign.GenerateKeyPair(func(confirm bool) ([]byte, error) {
		confirmed = confirm
		return []byte(secret), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !confirmed {
		t.Error("GenerateKeyPair asked for the password without confirm")
	}

	// The encoding cosign writes: PEM type, and the go-securesystemslib
	// envelope with scrypt's standard parameters.
	block, rest := pem.Decode(privPEM)
	if block == nil || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("private key is not one PEM block:\n%s", privPEM)
	}
	if block.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Errorf("PEM type %q", block.Type)
	}
	var envelope struct {
		KDF struct {
			Name   string
			Params struct{ N, R, P int }
		}
		Cipher struct{ Name string }
	}
	if err := json.Unmarshal(block.Bytes, &envelope); err != nil {
		t.Fatal(err)
	}
	if e := envelope; e.KDF.Name != "scrypt" || e.KDF.Params.N != 65536 || e.KDF.Params.R != 8 || e.KDF.Params.P != 1 || e.Cipher.Name != "nacl/secretbox" {
		t.Errorf("envelope %+v", e)
	}
	if strings.Contains(string(privPEM), secret) {
		t.Error("private key PEM contains the password")
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	if !strings.HasPrefix(string(pubPEM), "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("public key PEM:\n%s", pubPEM)
	}

	keyPath := writeKey(t, "cosign.key", privPEM)
	pubPath := writeKey(t, "cosign.pub", pubPEM)

	t.Run("right password", func(t *testing.T) {
		s, err := sign.LoadSigner(ctx, keyPath, pass(secret))
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := cryptoutils.EqualKeys(got, pub); err != nil {
			t.Fatalf("loaded key is not the generated one: %v", err)
		}
		v, err := sign.LoadVerifier(ctx, pubPath)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := sign.SignPayload(ctx, s, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyB64(v, sig); err != nil {
			t.Fatalf("signature does not verify with the public key file: %v", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := sign.LoadSigner(ctx, keyPath, pass("Tr0ub4dor&3"))
		if !errors.Is(err, sign.ErrWrongPassword) {
			t.Fatalf("err = %v, want ErrWrongPassword", err)
		}
		if want := "decrypting key " + keyPath + ": wrong password?"; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	})
	t.Run("missing password", func(t *testing.T) {
		_, err := sign.LoadSigner(ctx, keyPath, sign.PasswordFromEnv(env(nil)))
		if !errors.Is(err, sign.ErrNoPassword) {
			t.Fatalf("err = %v, want ErrNoPassword", err)
		}
		if !strings.Contains(err.Error(), "set COSIGN_PASSWORD or GALLEY_KEY_PASSWORD") {
			t.Errorf("message %q does not say what to set", err)
		}
	})
	t.Run("password error", func(t *testing.T) {
		boom := errors.New("terminal gone")
		_, err := sign.LoadSigner(ctx, keyPath, func(bool) ([]byte, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the PassFunc's error", err)
		}
	})
}

func TestGenerateKeyPairEmptyPassword(t *testing.T) {
	// cosign accepts an empty password (COSIGN_PASSWORD=""), and so must we,
	// in both directions.
	privPEM, _, err := sign.GenerateKeyPair(sign.PasswordFromEnv(env(map[string]string{"COSIGN_PASSWORD": ""})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.ParsePrivateKey(privPEM, nil, "k"); err != nil {
		t.Fatalf("nil password: %v", err)
	}
	if _, err := sign.ParsePrivateKey(privPEM, []byte("x"), "k"); !errors.Is(err, sign.ErrWrongPassword) {
		t.Fatalf("non-empty password: err = %v, want ErrWrongPassword", err)
	}
}

// TestCosignPEMType loads a key as cosign before v2 wrote it: PEM type
// ENCRYPTED COSIGN PRIVATE KEY and scrypt's legacy N=2^15.
func TestCosignPEMType(t *testing.T) {
	ctx := context.Background()
	privPEM, pubPEM, err := sign.GenerateKeyPair(pass("pw"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(privPEM)
	der, err := encrypted.Decrypt(block.Bytes, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := encrypted.EncryptWithCustomKDFParameters(der, []byte("pw"), encrypted.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	p := writeKey(t, "old.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED COSIGN PRIVATE KEY", Bytes: legacy}))
	s, err := sign.LoadSigner(ctx, p, pass("pw"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.ParsePublicKey(pubPEM, "pub")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sign.SignPayload(ctx, s, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyB64(v, sig); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSignerBadKeys(t *testing.T) {
	ctx := context.Background()
	good, pubPEM, err := sign.GenerateKeyPair(pass("pw"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(good)
	rewrap := func(edit func(map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(block.Bytes, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: b})
	}
	tests := []struct {
		name string
		key  []byte
		want string
	}{
		{"not PEM", []byte("hello"), "no PEM block"},
		{"public key", pubPEM, `PEM type "PUBLIC KEY" is not a cosign key`},
		{"plain private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), "cosign import-key-pair"},
		{"not JSON", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: []byte("{")}), "encrypted key envelope"},
		{"huge scrypt", rewrap(func(m map[string]any) { m["kdf"].(map[string]any)["params"].(map[string]any)["N"] = 1 << 30 }), "unsupported scrypt parameters N=1073741824"},
		{"other cipher", rewrap(func(m map[string]any) { m["cipher"].(map[string]any)["name"] = "aes" }), `unsupported cipher "aes"`},
		{"short nonce", rewrap(func(m map[string]any) { m["cipher"].(map[string]any)["nonce"] = "AAAA" }), "nonce is 3 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeKey(t, "bad.key", tt.key)
			_, err := sign.LoadSigner(ctx, p, pass("pw"))
			if err == nil {
				t.Fatal("loaded")
			}
			if errors.Is(err, sign.ErrWrongPassword) {
				t.Errorf("reported as a wrong password: %v", err)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name the file and contain %q", err, tt.want)
			}
		})
	}
	t.Run("bad file before password", func(t *testing.T) {
		p := writeKey(t, "bad.key", []byte("hello"))
		_, err := sign.LoadSigner(ctx, p, sign.PasswordFromEnv(env(nil)))
		if err == nil || errors.Is(err, sign.ErrNoPassword) || !strings.Contains(err.Error(), "no PEM block") {
			t.Fatalf("err = %v, want the file's problem, not the password's", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope.key")
		_, err := sign.LoadSigner(ctx, p, pass("pw"))
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLoadVerifierBadKeys(t *testing.T) {
	ctx := context.Background()
	priv, _, err := sign.GenerateKeyPair(pass("pw"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"empty": nil, "private key": priv} {
		t.Run(name, func(t *testing.T) {
			p := writeKey(t, "bad.pub", b)
			if _, err := sign.LoadVerifier(ctx, p); err == nil || !strings.Contains(err.Error(), p) {
				t.Fatalf("err = %v, want one naming %s", err, p)
			}
		})
	}
}

func TestKMS(t *testing.T) {
	ctx := context.Background()
	got := strings.Join(sign.SupportedKMS(), " ")
	if got != "awskms:// azurekms://" {
		t.Errorf("SupportedKMS() = %q", got)
	}
	// No plugin can be found on an empty PATH, so an unknown scheme must
	// give our message, not an exec error.
	t.Setenv("PATH", t.TempDir())
	for _, ref := range []string{"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "hashivault://galley"} {
		scheme, _, _ := strings.Cut(ref, "://")
		_, err := sign.LoadSigner(ctx, ref, nil)
		if err == nil || !strings.Contains(err.Error(), "no KMS provider for "+scheme+"://") || !strings.Contains(err.Error(), "sigstore-kms-"+scheme) {
			t.Errorf("LoadSigner(%s) err = %v", ref, err)
		}
		_, err = sign.LoadVerifier(ctx, ref)
		if err == nil || !strings.Contains(err.Error(), "no KMS provider") {
			t.Errorf("LoadVerifier(%s) err = %v", ref, err)
		}
	}
	// A malformed reference for a built-in provider fails in the provider,
	// before any network call.
	_, err := sign.LoadSigner(ctx, "awskms://", nil)
	if err == nil || !strings.Contains(err.Error(), "awskms://") {
		t.Errorf("awskms:// err = %v", err)
	}
}
