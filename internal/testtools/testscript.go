package testtools

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// Setup returns a testscript Params.Setup function that puts the named tools
// on the script's PATH, so scripts can `exec oras ...` or `exec cosign-v2 ...`
// (each tool keeps its directory name, e.g. cosign-v2, cosign-v3). A missing
// tool fails the script.
func Setup(names ...string) func(*testscript.Env) error {
	return func(env *testscript.Env) error {
		dirs := make([]string, 0, len(names)+1)
		for _, name := range names {
			p, err := Lookup(name)
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.Dir(p))
		}
		if path := env.Getenv("PATH"); path != "" {
			dirs = append(dirs, path)
		}
		env.Setenv("PATH", strings.Join(dirs, string(os.PathListSeparator)))
		return nil
	}
}
