package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/compiler/charts"
)

// newChartsCmd groups the commands on a stack's charts. Vendoring charts
// (charts vendor) and vendoring the schema (schema vendor) are named by
// what they copy: galley vendor alone read as either.
func newChartsCmd(env *Env) *cobra.Command {
	c := &cobra.Command{
		Use:   "charts",
		Short: "Work with the charts a stack uses",
	}
	c.AddCommand(newVendorCmd(env))
	return c
}

// newDeprecatedVendorCmd is `galley vendor`, kept for one release.
func newDeprecatedVendorCmd(env *Env) *cobra.Command {
	c := newVendorCmd(env)
	c.Hidden = true
	run := c.RunE
	c.RunE = func(c *cobra.Command, args []string) error {
		fmt.Fprintln(env.Stderr, "galley: warning: galley vendor is deprecated and goes away in the next release: use galley charts vendor")
		return run(c, args)
	}
	return c
}

func newVendorCmd(env *Env) *cobra.Command {
	o := &chartFlags{}
	c := &cobra.Command{
		Use:   "vendor <stack-dir>",
		Short: "Copy the charts galley.lock pins into the stack's vendor/charts",
		Long: `charts vendor copies every chart galley.lock pins into vendor/charts/ of the stack
(<name>-<version>.tgz), checked against its digest, from the chart cache or,
when it is not there, from its registry or repository. Builds prefer a
vendored chart, checked against the lock too, so a stack with its vendored
charts builds with no cache and no network. Charts in vendor/charts that the
lock no longer pins are removed. The lock must be up to date (galley lock).`,
		Args: exactArgs(1, "a stack directory"),
		RunE: func(c *cobra.Command, args []string) error {
			res, err := charts.VendorStack(c.Context(), args[0], chartOptions(env, o.plainHTTP))
			if err != nil {
				return err
			}
			written := map[string]bool{}
			for _, f := range res.Written {
				written[f] = true
			}
			for _, f := range res.Files {
				what := "unchanged"
				if written[f] {
					what = "copied"
				}
				fmt.Fprintf(env.Stdout, "%s (%s)\n", f, what)
			}
			for _, f := range res.Removed {
				fmt.Fprintf(env.Stdout, "%s (removed)\n", f)
			}
			fmt.Fprintf(env.Stderr, "vendored %s into %s\n", plural(len(res.Files), "chart"), displayPath(env.Cwd, res.Dir))
			return nil
		},
	}
	o.register(c.Flags())
	return c
}
