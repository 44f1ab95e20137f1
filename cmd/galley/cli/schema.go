package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	galleycue "github.com/galley-dev/galley/cue"
)

func newSchemaCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "schema",
		Short: "Print or vendor the stack schema",
		Args:  noArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the stack schema (" + galleycue.ModulePath + ")",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return fs.WalkDir(galleycue.Schema(), ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				b, err := fs.ReadFile(galleycue.Schema(), p)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "// %s/%s\n%s\n", galleycue.ModulePath, p, b)
				return nil
			})
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "vendor <stack-dir>",
		Short: "Copy the schema into the stack's cue.mod so that cue vet and editors see it",
		Long: `vendor writes the schema galley embeds into <stack-dir>/cue.mod/pkg/` + galleycue.ModulePath + `
(and a cue.mod/module.cue when there is none), so that the stack's
import of "` + galleycue.ModulePath + `" resolves for the cue command and
editors. galley itself always uses its embedded copy.`,
		Args: exactArgs(1, "a stack directory"),
		RunE: func(_ *cobra.Command, args []string) error {
			return vendorSchema(args[0])
		},
	})
	return c
}

func vendorSchema(dir string) error {
	mod := filepath.Join(dir, "cue.mod")
	if _, err := os.Stat(filepath.Join(mod, "module.cue")); os.IsNotExist(err) {
		if err := os.MkdirAll(mod, 0o755); err != nil {
			return fmt.Errorf("vendoring schema: %w", err)
		}
		modFile := "module: \"galley.local/stack\"\nlanguage: version: \"v0.17.0\"\n"
		if err := os.WriteFile(filepath.Join(mod, "module.cue"), []byte(modFile), 0o644); err != nil {
			return fmt.Errorf("vendoring schema: %w", err)
		}
	}
	dst := filepath.Join(mod, "pkg", filepath.FromSlash(galleycue.ModulePath))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("vendoring schema: %w", err)
	}
	return fs.WalkDir(galleycue.Schema(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(galleycue.Schema(), p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, filepath.FromSlash(p)), b, 0o644)
	})
}
