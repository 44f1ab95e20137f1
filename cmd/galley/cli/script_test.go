package cli_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/cmd/galley/cli"
	"github.com/galley-dev/galley/internal/golden"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testsigstore"
	"github.com/galley-dev/galley/internal/testtools"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"galley": func() { os.Exit(cli.Main()) },
	})
}

// TestScript runs the end-to-end CLI scenarios in testdata/script. Set
// GALLEY_UPDATE=1 (make update) to rewrite the expected outputs in place.
func TestScript(t *testing.T) {
	root := repoRoot(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       golden.Update(),
		RequireExplicitExec: true,
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"registry": testregistry.TestscriptCmd, "sigstore": testsigstore.TestscriptCmd},
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", filepath.Join(root, "examples"))
			env.Setenv("TESTDATA", filepath.Join(root, "testdata"))
			env.Setenv("SHARED_CHARTS", filepath.Join(filepath.Dir(root), "shared", "charts"))
			env.Setenv("HOME", env.WorkDir)
			return testtools.Setup("cosign-v2", "cosign-v3")(env)
		},
	})
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
