// Command fluxpull pulls an OCI artifact with Flux's own pull code
// (github.com/fluxcd/pkg/oci, the library behind `flux pull artifact`) and
// prints the pulled metadata as JSON, so galley's tests can check that Flux
// extracts a bundle to the same tree galley wrote.
//
// Usage:
//
//	fluxpull [-insecure] [-creds user:pass] [-layer-type tarball|static] oci://host/repo:tag|@digest outdir
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"

	"github.com/fluxcd/pkg/oci"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fluxpull:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fluxpull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	insecure := fs.Bool("insecure", false, "allow plain HTTP and unverified TLS, like OCIRepository spec.insecure")
	creds := fs.String("creds", "", "basic auth credentials as user:password, like `flux pull artifact --creds`")
	layerType := fs.String("layer-type", "", "extract the layer as \"tarball\" or \"static\" (default: detect gzip)")
	version := fs.Bool("version", false, "print the version of Flux's oci module and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: fluxpull [flags] oci://host/repo:tag|@digest outdir")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version {
		return printVersion(stdout)
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("want 2 arguments (url, outdir), got %d", fs.NArg())
	}
	// ParseArtifactURL is what the flux CLI uses: it insists on oci://.
	url, err := oci.ParseArtifactURL(fs.Arg(0))
	if err != nil {
		return err
	}
	// Flux's untar creates outDir; a static (non-gzip) layer is written to
	// the file outDir.
	outDir := fs.Arg(1)

	opts := oci.DefaultOptions()
	if *insecure {
		opts = append(opts, crane.Insecure)
	}
	if *creds != "" {
		user, pass, ok := strings.Cut(*creds, ":")
		if !ok {
			return fmt.Errorf("parsing -creds: want user:password")
		}
		opts = append(opts, crane.WithAuth(&authn.Basic{Username: user, Password: pass}))
	}
	var pullOpts []oci.PullOption
	switch lt := oci.LayerType(*layerType); lt {
	case "":
	case oci.LayerTypeTarball, oci.LayerTypeStatic:
		pullOpts = append(pullOpts, oci.WithPullLayerType(lt))
	default:
		return fmt.Errorf("unknown -layer-type %q: want %q or %q", lt, oci.LayerTypeTarball, oci.LayerTypeStatic)
	}

	meta, err := oci.NewClient(opts).Pull(ctx, url, outDir, pullOpts...)
	if err != nil {
		return fmt.Errorf("pulling %s: %w", url, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(meta)
}

// printVersion names the Flux module doing the work, so tests can check the
// pin they run against.
func printVersion(w io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build information in this binary")
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/fluxcd/pkg/oci" {
			_, err := fmt.Fprintf(w, "fluxpull %s %s\n", dep.Path, dep.Version)
			return err
		}
	}
	return errors.New("github.com/fluxcd/pkg/oci is not in the build information")
}
