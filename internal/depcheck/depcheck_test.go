// Package depcheck holds a test that keeps galley's dependencies running
// one way: cli -> compiler, bundles, registry; compiler -> bundles;
// registry -> bundles; nothing imports cmd/; registry/airgap builds no
// HTTP client of its own.
package depcheck

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/galley-dev/galley"

// forbidden maps a package prefix to the prefixes it must not import,
// directly or not.
var forbidden = map[string][]string{
	module + "/bundles":  {module + "/compiler", module + "/registry", module + "/cmd"},
	module + "/registry": {module + "/compiler", module + "/cmd"},
	module + "/compiler": {module + "/registry", module + "/cmd"},
	module + "/cue":      {module + "/compiler", module + "/bundles", module + "/registry", module + "/cmd"},
}

// ownTransport maps a package to the packages it must not import itself:
// the ones that build HTTP clients, credentials and retries. Its requests
// go through registry.Client (Repository, Step), so that they all share one
// transport with bounded retries, error classification and credential
// redaction.
var ownTransport = map[string][]string{
	module + "/registry/airgap": {
		"net/http",
		"oras.land/oras-go/v2/registry/remote/auth",
		"oras.land/oras-go/v2/registry/remote/credentials",
		"oras.land/oras-go/v2/registry/remote/retry",
		"github.com/google/go-containerregistry/pkg/v1/remote",
		"github.com/google/go-containerregistry/pkg/authn",
	},
}

func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json=ImportPath,Deps,Imports", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if bans, ok := ownTransport[p.ImportPath]; ok {
			checked++
			for _, imp := range p.Imports {
				for _, ban := range bans {
					if under(imp, ban) {
						t.Errorf("%s imports %s: it must talk to registries through registry.Client, not build its own HTTP client", p.ImportPath, imp)
					}
				}
			}
		}
		for prefix, bans := range forbidden {
			if !under(p.ImportPath, prefix) {
				continue
			}
			checked++
			for _, d := range p.Deps {
				for _, ban := range bans {
					if under(d, ban) {
						t.Errorf("%s depends on %s", p.ImportPath, d)
					}
				}
			}
		}
		if !under(p.ImportPath, module+"/cmd") {
			for _, d := range p.Deps {
				if under(d, module+"/cmd") {
					t.Errorf("%s imports %s: nothing outside cmd/ may", p.ImportPath, d)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package checked: is the module path right?")
	}
}

func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}
