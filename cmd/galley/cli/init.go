package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/compiler/scaffold"
)

type initOptions struct {
	template, name, delivery, registry string
	output                             outputFlag
}

// initResult is `init --output json`.
type initResult struct {
	Dir      string   `json:"dir"`
	Template string   `json:"template"`
	Files    []string `json:"files"`
}

func newInitCmd(env *Env) *cobra.Command {
	o := &initOptions{output: "text"}
	c := &cobra.Command{
		Use:   "init [dir]",
		Short: "Write a new stack that builds at once",
		Long: `init writes a stack into dir (default: the current directory), which must
not hold any of the files it writes. The stack vets and builds as it is:

  minimal        one chart from the stack's own files
  data-platform  Airbyte, Airflow, a dbt job, Metabase, DataHub and
                 kube-prometheus-stack from their upstream repositories at
                 pinned versions, with production values (credentials from
                 existing Secrets, resources set, chart hooks kept and run
                 the way the delivery engine can) and alerting; run
                 galley lock before building

Both come with dev and prod environments and the delivery block for
--delivery (argocd, flux or both), commented.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			files, err := scaffold.Write(dir, scaffold.Options{Template: o.template, Name: o.name, Delivery: o.delivery, Registry: o.registry})
			if err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, initResult{Dir: dir, Template: orDefault(o.template, "minimal"), Files: files})
			}
			for _, f := range files {
				fmt.Fprintln(env.Stdout, filepath.Join(dir, f))
			}
			fmt.Fprintf(env.Stderr, "wrote the %s stack in %s: next, galley vet %s\n", orDefault(o.template, "minimal"), dir, dir)
			return nil
		},
	}
	c.Flags().StringVar(&o.template, "template", "minimal", "template: "+strings.Join(scaffold.Templates(), ", "))
	c.Flags().StringVar(&o.name, "name", "", "stack name (default: the directory's name)")
	c.Flags().StringVar(&o.delivery, "delivery", "argocd", "GitOps engine that deploys the bundle: argocd, flux or both")
	c.Flags().StringVar(&o.registry, "registry", "", "registry and path the bundle is pushed to (default registry.example.com/platform)")
	c.Flags().Var(&o.output, "output", "output format: text or json")
	return c
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
