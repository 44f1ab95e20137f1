package testcluster

import (
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/testtools"
)

func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: testtools.Setup("kubectl"),
		Cmds:  map[string]func(*testscript.TestScript, bool, []string){"cluster": TestscriptCmd},
	})
}

// TestFlux starts the real Flux controllers: their CRDs are served and
// both answer /readyz on loopback (StartFlux waits for it).
func TestFlux(t *testing.T) {
	c := Start(t)
	if err := c.StartFlux(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := c.Kubectl(t.Context(), "get", "crd", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ocirepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io"} {
		if !strings.Contains(out, want) {
			t.Errorf("CRD %s not installed; CRDs: %s", want, out)
		}
	}
}
