package testsigstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/galley-dev/galley/internal/scriptstate"
)

var scripts scriptstate.Named[*Sigstore]

var errUsage = errors.New("usage: sigstore start NAME | sigstore token NAME SUBJECT")

// TestscriptCmd is the testscript command "sigstore":
//
//	sigstore start NAME          starts a VIRTUAL Sigstore (see the package
//	                             doc) and sets NAME_FULCIO, NAME_REKOR and
//	                             NAME_ISSUER to its URLs and NAME_ROOT to its
//	                             trusted_root.json in $WORK, NAME_ROOT_SHA256
//	                             to that file's sha256 (hex), as sha256sum
//	                             prints it
//	sigstore token NAME SUBJECT  sets SIGSTORE_ID_TOKEN to a token of NAME's
//	                             OIDC issuer for SUBJECT (e-mail or URI)
func TestscriptCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("sigstore does not support !")
	}
	if len(args) < 2 || !scriptstate.ValidEnvName(args[1]) {
		ts.Fatalf("%v", errUsage)
	}
	verb, name := args[0], args[1]
	all := scripts.For(ts)
	switch verb {
	case "start":
		if len(args) != 2 {
			ts.Fatalf("%v", errUsage)
		}
		if all[name] != nil {
			ts.Fatalf("sigstore %s already started", name)
		}
		s, stop, err := New()
		ts.Check(err)
		ts.Defer(stop)
		all[name] = s
		path := filepath.Join(ts.Getenv("WORK"), name+"_trusted_root.json")
		ts.Check(s.WriteTrustedRoot(path))
		ts.Setenv(name+"_FULCIO", s.FulcioURL)
		ts.Setenv(name+"_REKOR", s.RekorURL)
		ts.Setenv(name+"_ISSUER", Issuer)
		ts.Setenv(name+"_ROOT", path)
		data, err := os.ReadFile(path)
		ts.Check(err)
		ts.Setenv(name+"_ROOT_SHA256", fmt.Sprintf("%x", sha256.Sum256(data)))
	case "token":
		s := all[name]
		if s == nil || len(args) != 3 {
			ts.Fatalf("sigstore token: no sigstore %s started in this script, or no subject", name)
		}
		tok, err := s.Token(args[2])
		ts.Check(err)
		ts.Setenv("SIGSTORE_ID_TOKEN", tok)
	default:
		ts.Fatalf("%v", errUsage)
	}
}
