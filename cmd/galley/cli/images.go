package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/registry/airgap"
)

type imagesOptions struct {
	registryFlags
	output outputFlag
}

// imagesResult is `bundle images --output json`.
type imagesResult struct {
	Digest string        `json:"digest"`
	Images []string      `json:"images"`
	Apps   []imagesOfApp `json:"apps"`
	Jobs   []imagesOfApp `json:"jobs"`
}

type imagesOfApp struct {
	Name   string   `json:"name"`
	Images []string `json:"images"`
}

func newImagesCmd(env *Env) *cobra.Command {
	o := &imagesOptions{output: "text"}
	c := &cobra.Command{
		Use:   "images oci://<registry>/<repo>:<tag>|@<digest> | <layout-dir>",
		Short: "List the container images a bundle runs",
		Long: `images lists the container images the bundle's manifests reference, as
recorded in its bundle.json at build time: one per line, sorted, for review
and for other mirroring tools. --output json also gives them per app and
job.`,
		Args: exactArgs(1, "a reference or a layout directory"),
		RunE: func(c *cobra.Command, args []string) error {
			b, _, err := o.load(c, env, args[0])
			if err != nil {
				return err
			}
			tree, err := b.Tree(bundles.DefaultLimits)
			if err != nil {
				return fmt.Errorf("reading the layer of %s: %w", b.Digest(), err)
			}
			idx, err := bundles.ReadIndex(tree)
			if err != nil {
				return err
			}
			r := imagesResult{Digest: b.Digest().String(), Images: nonNil(idx.Images), Apps: []imagesOfApp{}, Jobs: []imagesOfApp{}}
			for _, a := range idx.Apps {
				r.Apps = append(r.Apps, imagesOfApp{Name: a.Name, Images: nonNil(a.Images)})
			}
			for _, j := range idx.Jobs {
				r.Jobs = append(r.Jobs, imagesOfApp{Name: j.Name, Images: nonNil(j.Images)})
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			for _, im := range r.Images {
				if _, err := fmt.Fprintln(env.Stdout, im); err != nil {
					return err
				}
			}
			return nil
		},
	}
	o.registryFlags.register(c.Flags())
	registerOutput(c.Flags(), &o.output)
	return c
}

// load reads a bundle from a registry (checked as pull does) or an OCI
// layout directory, and returns the registry host it came from ("" for a
// directory).
func (o *imagesOptions) load(c *cobra.Command, env *Env, arg string) (*bundles.Bundle, string, error) {
	if !isRef(arg) {
		b, err := bundles.ReadLayout(arg, "")
		return b, "", err
	}
	ref, err := parseTaggedRef(arg)
	if err != nil {
		return nil, "", err
	}
	client, err := o.client(env)
	if err != nil {
		return nil, "", err
	}
	b, err := client.Pull(c.Context(), ref)
	return b, ref.Registry, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// externalRefsResult is `bundle inspect --external-refs --output json`.
type externalRefsResult struct {
	Digest   string               `json:"digest"`
	Allowed  []string             `json:"allowed"`
	External []airgap.ExternalRef `json:"external"`
}

// checkExternalRefs is `bundle inspect --external-refs`: it lists every
// image reference and Argo CD or Flux source of the bundle that points at
// another registry than allowed (by default home, the registry the bundle
// was read from), and fails (exit 1) when there is any.
func checkExternalRefs(env *Env, b *bundles.Bundle, tree *bundles.Tree, allowed []string, home, output string) error {
	if len(allowed) == 0 {
		if home == "" {
			return &usageError{errors.New("--external-refs on a layout directory needs --allowed-registry <host[:port]>")}
		}
		allowed = []string{home}
	}
	refs, err := airgap.ExternalRefs(tree, allowed)
	if err != nil {
		return err
	}
	r := externalRefsResult{Digest: b.Digest().String(), Allowed: allowed, External: refs}
	if r.External == nil {
		r.External = []airgap.ExternalRef{}
	}
	if output == "json" {
		if err := writeJSON(env.Stdout, r); err != nil {
			return err
		}
	} else if len(refs) > 0 {
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FILE\tFIELD\tKIND\tREFERENCE")
		for _, x := range refs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.File, x.Field, x.Kind, x.Ref)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(refs) > 0 {
		var hosts []string
		for _, x := range refs {
			h := x.Host
			if h == "" {
				h = "(unparseable)"
			}
			if !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
		return &exitError{code: ExitError, err: fmt.Errorf("%s point outside %s: %s", plural(len(refs), "reference"), strings.Join(allowed, ", "), strings.Join(hosts, ", "))}
	}
	if output != "json" {
		fmt.Fprintf(env.Stderr, "%s: every image and source is on %s\n", r.Digest, strings.Join(allowed, ", "))
	}
	return nil
}
