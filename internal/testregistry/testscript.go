package testregistry

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/scriptstate"

	"github.com/galley-dev/galley/internal/testtools"
)

// TestscriptCmd is a testscript custom command (Params.Cmds["registry"]):
//
//	registry start NAME [-auth user:pass]
//	registry stop NAME
//
// start runs a registry for the rest of the script and sets $NAME to its
// host:port and $NAME_STORAGE to its storage directory (under
// $WORK/.registry/NAME); with -auth it also sets $NAME_USER and $NAME_PASS.
// stop kills it early, to test what happens when the registry is gone.
func TestscriptCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("registry does not support !")
	}
	if len(args) < 2 || !scriptstate.ValidEnvName(args[1]) {
		ts.Fatalf("%v", errUsage)
	}
	verb, name := args[0], args[1]
	regs := scripts.For(ts)
	switch verb {
	case "start":
		var cfg config
		switch rest := args[2:]; {
		case len(rest) == 0:
		case len(rest) == 2 && rest[0] == "-auth":
			user, pass, ok := strings.Cut(rest[1], ":")
			if !ok || user == "" {
				ts.Fatalf("registry start: -auth wants user:pass, got %q", rest[1])
			}
			cfg.user, cfg.pass = user, pass
		default:
			ts.Fatalf("%v", errUsage)
		}
		if regs[name] != nil {
			ts.Fatalf("registry %s already started", name)
		}
		bin, err := testtools.Lookup("registry")
		ts.Check(err)
		dir := filepath.Join(ts.Getenv("WORK"), ".registry", name)
		ts.Check(os.MkdirAll(dir, 0o755))
		r, err := start(bin, dir, cfg)
		ts.Check(err)
		regs[name] = r
		ts.Defer(r.Stop)
		ts.Setenv(name, r.Host())
		ts.Setenv(name+"_STORAGE", r.StorageDir())
		if cfg.user != "" {
			ts.Setenv(name+"_USER", cfg.user)
			ts.Setenv(name+"_PASS", cfg.pass)
		}
	case "stop":
		r := regs[name]
		if r == nil || len(args) != 2 {
			ts.Fatalf("registry stop: no registry %s started in this script", name)
		}
		r.Stop()
	default:
		ts.Fatalf("%v", errUsage)
	}
}

var scripts scriptstate.Named[*Registry]
