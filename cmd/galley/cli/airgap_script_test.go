package cli_test

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/golden"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testtools"
)

// TestAirgapScript runs the air-gap scenarios in testdata/airgap: like
// TestScript, with crane on the PATH to make the images a stack runs.
func TestAirgapScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/airgap",
		UpdateScripts:       golden.Update(),
		RequireExplicitExec: true,
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"registry": testregistry.TestscriptCmd},
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			return testtools.Setup("cosign-v2", "cosign-v3", "crane")(env)
		},
	})
}
