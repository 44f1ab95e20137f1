package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/registry"
)

type buildOptions struct {
	chartFlags
	compileFlags
	out    string
	output outputFlag
}

// buildResult is `bundle build --output json`.
type buildResult struct {
	Digest       string   `json:"digest"`
	MediaType    string   `json:"mediaType"`
	ArtifactType string   `json:"artifactType"`
	Size         int64    `json:"size"`
	Layout       string   `json:"layout"`
	Tag          string   `json:"tag"`
	Stack        string   `json:"stack"`
	Environment  string   `json:"environment,omitempty"`
	Version      string   `json:"version"`
	Apps         []string `json:"apps"`
	Images       []string `json:"images"`
	Files        int      `json:"files"`
	LayerSize    int64    `json:"layerSize"`
	// Render is the end summary: which apps were rendered, which came
	// from the cache.
	Render renderSummary `json:"render"`
}

func newBuildCmd(env *Env) *cobra.Command {
	o := &buildOptions{output: "text"}
	c := &cobra.Command{
		Use:   "build <stack-dir>",
		Short: "Compile a stack into a bundle on disk (an OCI image layout)",
		Long: `build compiles the stack in <stack-dir>: it renders every chart in-process,
applies the patches, generates the Argo CD objects and packs the result as
an OCI artifact in an OCI image layout directory, tagged with the stack
version. The same stack always gives the same digest.

The created time is SOURCE_DATE_EPOCH when set, else a fixed date, never
the current time. A failed build leaves the output directory as it was.

bundle.json lists every image the manifests run. With --resolve-images,
each one is looked up on its registry (HEAD of the manifest, credentials
from the Docker config; postgres:16 is Docker Hub's library/postgres)
and recorded pinned, repo:tag@sha256:..., while the manifests keep the
tags as rendered: bundle import pins them to the same digests. An image
that cannot be resolved fails the build, naming it and its registry; the
digests come from the registries, so the bundle's digest then depends on
what the tags name when it is built.

Every file the stack names (charts, values files, keys, Terraform sources,
CUE files and embeds) must resolve, links followed, inside its root: the
Git repository holding the stack, else the stack directory. --root DIR
sets another root and --allow-outside-root lifts the rule, for stacks you
trust; bundle.json records either.`,
		Args: exactArgs(1, "a stack directory"),
		RunE: func(c *cobra.Command, args []string) error {
			copts, err := o.compileFlags.options(env, o.plainHTTP, registry.DefaultRetryOptions.MaxTime)
			if err != nil {
				return err
			}
			var t renderTally
			copts.Progress = t.track(copts.Progress)
			res, err := compiler.Compile(c.Context(), args[0], copts)
			if err != nil {
				return err
			}
			t.summary(env)
			out := o.out
			if out == "" {
				out = filepath.Join("build", res.Stack.Name)
				if o.environment != "" {
					out += "-" + o.environment
				}
			}
			// Interrupted once the build is done: write nothing either.
			if err := c.Context().Err(); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return fmt.Errorf("writing bundle: %w", err)
			}
			if err := bundles.WriteLayout(out, res.Bundle, res.Stack.Version); err != nil {
				return fmt.Errorf("writing bundle: %w", err)
			}
			r := buildResult{
				Digest:       res.Bundle.Digest().String(),
				MediaType:    res.Bundle.Descriptor.MediaType,
				ArtifactType: res.Bundle.Descriptor.ArtifactType,
				Size:         res.Bundle.Descriptor.Size,
				Layout:       out,
				Tag:          res.Stack.Version,
				Stack:        res.Stack.Name,
				Environment:  res.Stack.Environment,
				Version:      res.Stack.Version,
				Images:       res.Index.Images,
				Files:        res.Tree.Len(),
				LayerSize:    res.Bundle.LayerDescriptor.Size,
				Render:       t.result(),
			}
			for _, a := range res.Index.Apps {
				r.Apps = append(r.Apps, a.Name)
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stderr, "built %s %s: %s, %d files, layer %s -> %s\n",
				r.Stack, r.Version, contents(res.Index), r.Files, humanBytes(r.LayerSize), out)
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	registerDestination(c.Flags(), &o.out, &o.output, "the OCI layout directory to write (default build/<stack-name>[-<env>])")
	o.compileFlags.register(c.Flags())
	o.chartFlags.register(c.Flags())
	c.Flags().Lookup("plain-http").Usage = "talk plain HTTP to chart registries, and to image registries with --resolve-images (local test registries only)"
	return c
}

func progressPrinter(env *Env) func(compiler.Event) {
	if !env.Interactive {
		return nil
	}
	return func(e compiler.Event) {
		if e.Err != nil {
			fmt.Fprintf(env.Stderr, "  %-24s failed\n", e.App)
			return
		}
		cached := ""
		if e.Cached {
			cached = "  (cached render)"
		}
		fmt.Fprintf(env.Stderr, "  %-24s %4d objects  %s%s\n", e.App, e.Objects, e.Duration.Round(1e6), cached)
	}
}

// renderTally counts, for the end summary, the apps rendered and those
// that came from the cache.
type renderTally struct {
	rendered, cached []string
	renderTime       time.Duration
}

// renderSummary is the end summary in --output json.
type renderSummary struct {
	Rendered []string `json:"rendered"`
	Cached   []string `json:"cached"`
	// RenderSeconds adds up the render time of the apps rendered, which
	// run several at a time: it can exceed the wall time.
	RenderSeconds float64 `json:"renderSeconds"`
}

// track counts each event, then hands it to next (nil when progress is
// not shown). The compiler calls it under a lock.
func (t *renderTally) track(next func(compiler.Event)) func(compiler.Event) {
	return func(e compiler.Event) {
		if e.Err == nil {
			if e.Cached {
				t.cached = append(t.cached, e.App)
			} else {
				t.rendered = append(t.rendered, e.App)
				t.renderTime += e.Duration
			}
		}
		if next != nil {
			next(e)
		}
	}
}

// summary says what was rendered and what came from the cache, on every
// build: it is one line, in CI too.
func (t *renderTally) summary(env *Env) {
	if len(t.rendered)+len(t.cached) == 0 {
		return
	}
	fmt.Fprintf(env.Stderr, "apps: %d rendered (%s), %d from the cache\n", len(t.rendered), t.renderTime.Round(time.Millisecond), len(t.cached))
}

// result is the summary for --output json, the names sorted: apps render
// several at a time and finish in any order.
func (t *renderTally) result() renderSummary {
	r := renderSummary{
		Rendered:      append([]string{}, t.rendered...),
		Cached:        append([]string{}, t.cached...),
		RenderSeconds: t.renderTime.Round(time.Millisecond).Seconds(),
	}
	sort.Strings(r.Rendered)
	sort.Strings(r.Cached)
	return r
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// contents summarises what a bundle holds, e.g. "3 apps, 1 job".
func contents(x *bundles.Index) string {
	parts := []string{plural(len(x.Apps), "app")}
	if n := len(x.Jobs); n > 0 {
		parts = append(parts, plural(n, "job"))
	}
	if n := len(x.Terraform); n > 0 {
		parts = append(parts, plural(n, "Terraform module"))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
