// Package cli is galley's command line: a thin layer of cobra commands over
// the compiler, bundles and registry packages.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/galley-dev/galley/compiler/stack"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the command failed: bad stack, failed build, unreachable registry...
	ExitUsage = 2 // the command line itself is wrong
)

// version is set at link time (-ldflags "-X .../cli.version=v1.2.3");
// otherwise the module version from the build info is used.
var version = ""

// Version returns galley's version.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Env is what a command may read and write; tests substitute it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Cwd is the directory positions in errors are printed relative to.
	Cwd string
	// Interactive says whether stderr is a terminal: progress is shown only
	// then, so CI logs stay quiet and machine-readable.
	Interactive bool
}

// Main runs galley with the process's arguments and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal cancels ctx: the command stops and leaves what it
	// writes as it was (outputs appear by rename, or not at all). Then
	// the default handling is back, so a second Ctrl-C kills at once.
	context.AfterFunc(ctx, stop)
	cwd, _ := os.Getwd()
	return Run(ctx, os.Args[1:], Env{
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Getenv:      os.Getenv,
		Cwd:         cwd,
		Interactive: term.IsTerminal(int(os.Stderr.Fd())),
	})
}

// Run runs galley with args and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	stderr := &lineTracker{w: env.Stderr}
	env.Stderr = stderr
	root := newRootCmd(&env)
	root.PersistentPreRunE = checkDeprecated(&env, args)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	stderr.endLine()
	var ue *usageError
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(env.Stderr, "galley: "+stack.FormatError(ee.err, env.Cwd))
		}
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "galley: %v\nRun '%s --help' for usage.\n", err, commandPath(root, args))
		return ExitUsage
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(env.Stderr, "galley: interrupted")
		return ExitError
	default:
		fmt.Fprintln(env.Stderr, "galley: "+stack.FormatError(err, env.Cwd))
		return ExitError
	}
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "galley",
		Short: "Compile a data platform declared in CUE into one signed OCI artifact",
		Long: `galley compiles a data platform declared in CUE (apps, charts, patches,
delivery targets) into one deterministic OCI artifact that Argo CD or Flux
deploy from a registry.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version(),
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		newVetCmd(env),
		newBundleCmd(env),
		newSchemaCmd(env),
		newVersionCmd(env),
		newKeyCmd(env),
		newLockCmd(env), newChartsCmd(env), newDeprecatedVendorCmd(env),
	)
	typedUsageErrors(root)
	return root
}

// typedUsageErrors makes every command that only groups others refuse an
// unknown subcommand with a *usageError (exit 2), the way flag errors
// are (SetFlagErrorFunc), so that the exit code never depends on the text
// of an error. Without Args, cobra reports an unknown command with a plain
// error, or prints the help and exits 0.
func typedUsageErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		typedUsageErrors(sub)
	}
	if !c.HasSubCommands() {
		return
	}
	if c.Args == nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
			}
			return &usageError{errors.New(msg)}
		}
	}
	if c.Run == nil && c.RunE == nil {
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
}

func newBundleCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build, publish, inspect, diff and carry bundles",
		Args:  noArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(newBuildCmd(env), newPushCmd(env), newPullCmd(env), newListCmd(env), newInspectCmd(env), newVerifyCmd(env))
	c.AddCommand(newDiffCmd(env))
	c.AddCommand(newPromoteCmd(env))
	c.AddCommand(newExportCmd(env), newImportCmd(env), newImagesCmd(env))
	return c
}

func newVersionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print galley's version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(env.Stdout, Version())
			return err
		},
	}
}

// usageError marks a mistake in the command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError carries a specific exit code; err, when set, is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("expected %s, got %d argument(s)", names, len(args))}
		}
		return nil
	}
}

func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return root.Name()
	}
	return c.CommandPath()
}

// outputFlag is the --output flag shared by commands with machine-readable
// output.
type outputFlag string

func (o *outputFlag) String() string { return string(*o) }
func (o *outputFlag) Type() string   { return "text|json" }
func (o *outputFlag) Set(s string) error {
	switch s {
	case "text", "json":
		*o = outputFlag(s)
		return nil
	}
	return fmt.Errorf("must be text or json")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
