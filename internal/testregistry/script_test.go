package testregistry

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/testtools"
)

// The scripts drive the real oras, crane and Flux clients against registries
// started with the registry command, as galley's CLI scripts will.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: testtools.Setup("oras", "crane", "fluxpull"),
		Cmds:  map[string]func(*testscript.TestScript, bool, []string){"registry": TestscriptCmd},
	})
}
