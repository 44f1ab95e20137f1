package testcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/scriptstate"
)

var errUsage = errors.New("usage: cluster start NAME [-flux] [-simulate-status] | cluster stop NAME")

// TestscriptCmd is a testscript custom command (Params.Cmds["cluster"]):
//
//	cluster start NAME [-flux] [-simulate-status]
//	cluster stop NAME
//
// start runs a control plane for the rest of the script (files under
// $WORK/.cluster/NAME) and sets $NAME_KUBECONFIG to its admin kubeconfig
// and $NAME_SERVER to its URL; -flux also starts the Flux controllers, and
// -simulate-status the status simulator. Scripts run kubectl with
// --kubeconfig=$NAME_KUBECONFIG (put it on PATH with testtools.Setup).
// stop stops it early.
func TestscriptCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("cluster does not support !")
	}
	if len(args) < 2 || !scriptstate.ValidEnvName(args[1]) {
		ts.Fatalf("%v", errUsage)
	}
	verb, name := args[0], args[1]
	set := scripts.For(ts)
	switch verb {
	case "start":
		flux, sim := false, false
		for _, a := range args[2:] {
			switch a {
			case "-flux":
				flux = true
			case "-simulate-status":
				sim = true
			default:
				ts.Fatalf("%v", errUsage)
			}
		}
		if set[name] != nil {
			ts.Fatalf("cluster %s already started", name)
		}
		dir := filepath.Join(ts.Getenv("WORK"), ".cluster", name)
		ts.Check(os.MkdirAll(dir, 0o755))
		c, err := New(dir)
		ts.Check(err)
		set[name] = c
		ts.Defer(c.Stop)
		if flux {
			ts.Check(c.StartFlux(context.Background()))
		}
		if sim {
			ts.Check(c.SimulateStatus())
		}
		ts.Setenv(name+"_KUBECONFIG", c.Kubeconfig())
		ts.Setenv(name+"_SERVER", c.Server())
	case "stop":
		c := set[name]
		if c == nil || len(args) != 2 {
			ts.Fatalf("cluster stop: no cluster %s started in this script", name)
		}
		c.Stop()
	default:
		ts.Fatalf("%v", errUsage)
	}
}

var scripts scriptstate.Named[*Cluster]
