package cli_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/golden"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/internal/testtools"
)

// TestChartScripts runs the remote chart scenarios in testdata/charts:
// charts pushed with the real helm CLI to a real registry, and a classic
// repository indexed by `helm repo index` and served over HTTP. Set
// GALLEY_UPDATE=1 (make update) to rewrite expectations.
func TestChartScripts(t *testing.T) {
	root := repoRoot(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/charts",
		UpdateScripts:       golden.Update(),
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"registry":  testregistry.TestscriptCmd,
			"httpserve": httpserveCmd,
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("SHARED_CHARTS", filepath.Join(filepath.Dir(root), "shared", "charts"))
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("GALLEY_CACHE_DIR", filepath.Join(env.WorkDir, "cache"))
			return testtools.Setup("helm")(env)
		},
	})
}

// httpserveCmd serves a directory over HTTP on 127.0.0.1, as a static
// Helm repository is served:
//
//	httpserve start NAME DIR [-auth user:pass]
//	httpserve stop NAME
//
// start sets $NAME to the server's URL (http://127.0.0.1:<port>).
func httpserveCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("httpserve does not support !")
	}
	const usage = "usage: httpserve start NAME DIR [-auth user:pass] | httpserve stop NAME"
	if len(args) < 2 {
		ts.Fatalf(usage)
	}
	key := ts.Getenv("WORK") + "\x00" + args[1]
	switch args[0] {
	case "start":
		if len(args) != 3 && !(len(args) == 5 && args[3] == "-auth") {
			ts.Fatalf(usage)
		}
		user, pass := "", ""
		if len(args) == 5 {
			user, pass, _ = strings.Cut(args[4], ":")
		}
		files := http.FileServer(http.Dir(ts.MkAbs(args[2])))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); user != "" && (!ok || u != user || p != pass) {
				w.Header().Set("WWW-Authenticate", `Basic realm="charts"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			files.ServeHTTP(w, r)
		}))
		servers.Store(key, srv)
		ts.Defer(srv.Close)
		ts.Setenv(args[1], srv.URL)
	case "stop":
		srv, ok := servers.LoadAndDelete(key)
		if !ok {
			ts.Fatalf("httpserve stop: no server %s started in this script", args[1])
		}
		srv.(*httptest.Server).Close()
	default:
		ts.Fatalf(usage)
	}
}

var servers sync.Map
