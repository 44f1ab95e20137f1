package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
)

// galley's command-line dialect, the one kubectl and flux speak:
//
//	-o, --output text|json    the output format, on every command
//	-d, --destination PATH    where a command writes a directory or file
//	    --concurrency N       how much runs at once
//
// Spellings replaced in this release still work for one release, with a
// warning on stderr: --out, -o <path>, --jobs.

// deprecatedAnnotation marks a flag kept for one release; its value is
// the flag to use instead.
const deprecatedAnnotation = "galley-deprecated"

// deprecate registers name as a hidden, deprecated spelling of the flag
// instead, sharing its value.
func deprecate(fs *pflag.FlagSet, name, instead string) {
	f := fs.Lookup(instead)
	fs.AddFlag(&pflag.Flag{
		Name:        name,
		Usage:       "deprecated: use --" + instead,
		Value:       f.Value,
		DefValue:    f.DefValue,
		NoOptDefVal: f.NoOptDefVal,
		Hidden:      true,
		Annotations: map[string][]string{deprecatedAnnotation: {"--" + instead}},
	})
}

// checkDeprecated prints one line per deprecated spelling the command
// line used. It runs before every command (the root's PersistentPreRunE).
// args are the command line: only -o may still be a path, --output is a
// format.
func checkDeprecated(env *Env, args []string) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, _ []string) error {
		c.Flags().Visit(func(f *pflag.Flag) {
			if instead, ok := f.Annotations[deprecatedAnnotation]; ok {
				fmt.Fprintf(env.Stderr, "galley: warning: --%s is deprecated and goes away in the next release: use %s\n", f.Name, instead[0])
			}
		})
		f := c.Flags().Lookup("output")
		if f == nil {
			return nil
		}
		if v, ok := f.Value.(*formatOrPath); ok && v.pathGiven {
			for _, a := range args {
				if a == "--" {
					break
				}
				if a == "--output" || strings.HasPrefix(a, "--output=") {
					return &usageError{fmt.Errorf("invalid argument for --output: must be text or json (the path is --destination)")}
				}
			}
			fmt.Fprintf(env.Stderr, "galley: warning: -o %s as a path is deprecated and goes away in the next release: use --destination (-o now picks the output format)\n", *v.path)
		}
		return nil
	}
}

// registerOutput registers -o/--output, the output format.
func registerOutput(fs *pflag.FlagSet, format *outputFlag) {
	fs.VarP(format, "output", "o", "output format: text or json")
}

// registerDestination registers -d/--destination (usage says what it
// is), and -o/--output as the output format that, for one release, also
// takes a path as -o did.
func registerDestination(fs *pflag.FlagSet, path *string, format *outputFlag, usage string) {
	fs.StringVarP(path, "destination", "d", "", usage)
	deprecate(fs, "out", "destination")
	fs.VarP(&formatOrPath{format: format, path: path}, "output", "o", "output format: text or json")
}

// formatOrPath is -o/--output on commands that write to a path: a format
// (text, json), or, deprecated, the path itself.
type formatOrPath struct {
	format    *outputFlag
	path      *string
	pathGiven bool
}

func (v *formatOrPath) String() string { return v.format.String() }
func (v *formatOrPath) Type() string   { return "text|json" }
func (v *formatOrPath) Set(s string) error {
	if err := v.format.Set(s); err == nil {
		return nil
	}
	*v.path, v.pathGiven = s, true
	return nil
}

// compileFlags are the flags of every command that compiles a stack
// directory (bundle build, push and diff).
type compileFlags struct {
	rootFlags
	environment   string
	concurrency   int
	updateLock    bool
	offline       bool
	noCache       bool
	resolveImages bool
	artifactType  string
}

func (f *compileFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.environment, "env", "", "compile a stack directory for this environment (its overlay is unified into the stack)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "apps rendered at once when compiling (default: the number of CPUs)")
	deprecate(fs, "jobs", "concurrency")
	fs.BoolVar(&f.updateLock, "update-lock", false, "resolve remote charts galley.lock lacks or has stale entries for, and update it, instead of failing")
	fs.BoolVar(&f.offline, "offline", false, "never use the network for charts: every remote chart must be vendored or in the chart cache")
	fs.BoolVar(&f.noCache, "no-cache", false, "render every chart, ignoring and not filling the render cache ($GALLEY_CACHE_DIR, default in the user cache directory)")
	fs.BoolVar(&f.resolveImages, "resolve-images", false, "record each image in bundle.json pinned to the digest its registry gives for its tag (repo:tag@sha256:...)")
	fs.StringVar(&f.artifactType, "artifact-type", bundles.ArtifactType, "the bundle manifest's artifactType: another media type for a registry whose allow-list refuses galley's (GitLab, Quay)")
	f.rootFlags.register(fs)
}

// options are the compiler.Options the flags ask for. plainHTTP applies
// to chart registries and, with --resolve-images, to image registries,
// which are given timeout.
func (f *compileFlags) options(env *Env, plainHTTP bool, timeout time.Duration) (compiler.Options, error) {
	cacheDir := ""
	if !f.noCache {
		d, err := compiler.DefaultCacheDir(env.Getenv)
		if err != nil {
			return compiler.Options{}, err
		}
		cacheDir = d
	}
	root, err := f.root()
	if err != nil {
		return compiler.Options{}, err
	}
	chartOpts := chartOptions(env, plainHTTP)
	chartOpts.UpdateLock, chartOpts.Offline = f.updateLock, f.offline
	o := compiler.Options{
		Root:          root,
		Charts:        chartOpts,
		CacheDir:      cacheDir,
		GalleyVersion: Version(),
		Environment:   f.environment,
		Getenv:        env.Getenv,
		Jobs:          f.concurrency,
		Progress:      progressPrinter(env),
		ArtifactType:  f.artifactType,
	}
	if err := bundles.ValidateArtifactType(f.artifactType); err != nil {
		return compiler.Options{}, &usageError{fmt.Errorf("--artifact-type: %w", err)}
	}
	if f.resolveImages {
		o.ResolveImages = imageResolver(env, plainHTTP, timeout)
	}
	return o, nil
}
