package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles/sign"
)

func newKeyCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Manage signing keys",
		Args:  noArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(newKeyGenerateCmd(env))
	return c
}

func newKeyGenerateCmd(env *Env) *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:   "generate",
		Short: "Create a cosign-compatible key pair",
		Long: `generate writes an ECDSA P-256 key pair in the files cosign generate-key-pair
writes: <prefix>.key, the private key encrypted with the password in
GALLEY_KEY_PASSWORD or COSIGN_PASSWORD (the variable must be set; it may
be empty), and <prefix>.pub, the public key for bundle verify, cosign
verify and Flux's OCIRepository verification. Existing files are never
overwritten.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			keyPath, pubPath := prefix+".key", prefix+".pub"
			for _, p := range []string{keyPath, pubPath} {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s exists: refusing to overwrite it", p)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			priv, pub, err := sign.GenerateKeyPair(passFunc(env))
			if err != nil {
				return fmt.Errorf("generating key pair: %w", err)
			}
			if err := writeNew(keyPath, priv, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubPath, pub, 0o644); err != nil {
				os.Remove(keyPath)
				return err
			}
			fmt.Fprintf(env.Stderr, "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		},
	}
	c.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "write <prefix>.key and <prefix>.pub")
	return c
}

// writeNew writes data to a temporary file beside path and links it into
// place, so path appears complete or not at all, and is never replaced if
// someone created it meanwhile.
func writeNew(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: refusing to overwrite it", path)
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
