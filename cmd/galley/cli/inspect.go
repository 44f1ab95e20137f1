package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/provenance"
	"github.com/galley-dev/galley/bundles/sign"
)

type inspectOptions struct {
	registryFlags
	limitFlags
	output outputFlag
	// externalRefs and allowed: see checkExternalRefs.
	externalRefs bool
	allowed      []string
}

// inspectResult is `bundle inspect --output json`.
type inspectResult struct {
	Reference    string              `json:"reference"`
	Digest       string              `json:"digest"`
	MediaType    string              `json:"mediaType"`
	ArtifactType string              `json:"artifactType"`
	Size         int64               `json:"size"`
	Annotations  map[string]string   `json:"annotations"`
	Layer        inspectLayer        `json:"layer"`
	Stack        *bundles.IndexStack `json:"stack,omitempty"`
	Galley       string              `json:"galley,omitempty"`
	Apps         []bundles.IndexApp  `json:"apps"`
	Charts       []inspectChart      `json:"charts"`
	Images       []string            `json:"images"`
	// Root says the stack was built with its root widened or turned off
	// (bundle.json's root); absent for the default.
	Root *bundles.IndexRoot `json:"root,omitempty"`
	// Signatures counts the cosign signatures stored for the digest; null
	// for a layout directory, which holds none.
	Signatures *int `json:"signatures"`
	// SigstoreBundles counts the Sigstore bundle referrers that sign the
	// digest (cosign v3's format); null for a layout directory.
	SigstoreBundles *int `json:"sigstoreBundles"`
	// Provenance is the SLSA provenance attached to the digest, as it
	// claims to be: not verified here (bundle verify --provenance does).
	Provenance *provenance.Provenance `json:"provenance,omitempty"`
}

type inspectLayer struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
}

type inspectChart struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	AppVersion string   `json:"appVersion,omitempty"`
	Digest     string   `json:"digest"`
	Apps       []string `json:"apps"`
}

func newInspectCmd(env *Env) *cobra.Command {
	o := &inspectOptions{output: "text"}
	c := &cobra.Command{
		Use:   "inspect oci://<registry>/<repo>:<tag>|@<digest> | <layout-dir>",
		Short: "Show a bundle's metadata, apps, charts, images and signatures",
		Long: `inspect reads a bundle from a registry or from an OCI layout directory (as
bundle build writes it), checks it as pull does, and shows its manifest
annotations, the apps, charts and images listed in its bundle.json, and
how many signatures the registry stores for it in each format (cosign .sig
and Sigstore bundle referrers) and the SLSA provenance attached to it, all
unchecked (bundle verify --key [--provenance] checks them). Nothing is
written.

` + limitsHelp,
		Args: exactArgs(1, "a reference or a layout directory"),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			var (
				b    *bundles.Bundle
				r    inspectResult
				err  error
				home string // the registry b was read from
			)
			if isRef(args[0]) {
				ref, err := parseTaggedRef(args[0])
				if err != nil {
					return err
				}
				o.registryFlags.maxLayerSize = int64(o.maxLayer)
				client, err := o.client(env)
				if err != nil {
					return err
				}
				if b, err = client.Pull(ctx, ref); err != nil {
					return err
				}
				n, err := client.Signatures(ctx, ref, b.Digest())
				if err != nil {
					return err
				}
				r.Signatures = &n
				bs, err := client.SigstoreBundles(ctx, ref, b.Digest())
				if err != nil {
					return err
				}
				nb := 0
				for _, sb := range bs {
					st, pt, err := sign.UnverifiedStatement(sb.Bundle)
					switch {
					case err != nil:
						fmt.Fprintf(env.Stderr, "galley: warning: Sigstore bundle referrer %s: %v\n", sb.Referrer.Digest, err)
					case pt == sign.CosignSignPredicateType:
						nb++
					case pt == provenance.PredicateType && r.Provenance == nil:
						if r.Provenance, err = provenance.Parse(st, b.Digest()); err != nil {
							fmt.Fprintf(env.Stderr, "galley: warning: provenance referrer %s: %v\n", sb.Referrer.Digest, err)
						}
					}
				}
				r.SigstoreBundles = &nb
				r.Reference = ref.WithDigest(b.Digest()).String()
				home = ref.Registry
			} else {
				if b, err = bundles.ReadLayout(args[0], ""); err != nil {
					return err
				}
				if err := o.checkLayer(b); err != nil {
					return err
				}
				r.Reference = args[0]
			}
			m, err := bundles.Validate(b.Manifest)
			if err != nil {
				return err
			}
			tree, err := b.Tree(o.limits())
			if err != nil {
				return fmt.Errorf("reading the layer of %s: %w", b.Digest(), err)
			}
			if o.externalRefs {
				return checkExternalRefs(env, b, tree, o.allowed, home, string(o.output))
			}
			r.Digest = b.Digest().String()
			r.MediaType = b.Descriptor.MediaType
			r.ArtifactType = b.Descriptor.ArtifactType
			r.Size = b.Descriptor.Size
			r.Annotations = m.Annotations
			r.Layer = inspectLayer{Digest: b.LayerDescriptor.Digest.String(), Size: b.LayerDescriptor.Size, Files: tree.Len(), Bytes: tree.Size()}
			r.Apps, r.Charts, r.Images = []bundles.IndexApp{}, []inspectChart{}, []string{}
			if idx, err := bundles.ReadIndex(tree); err != nil {
				fmt.Fprintf(env.Stderr, "galley: warning: %s has no usable %s: %v\n", r.Digest, bundles.IndexPath, err)
			} else {
				r.Stack, r.Galley = &idx.Stack, idx.Galley
				r.Apps = append(r.Apps, idx.Apps...)
				r.Images = append(r.Images, idx.Images...)
				r.Charts = chartsOf(idx.Apps)
				r.Root = idx.Root
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			return printInspect(env.Stdout, r)
		},
	}
	o.registryFlags.register(c.Flags())
	o.limitFlags.register(c.Flags())
	registerOutput(c.Flags(), &o.output)
	c.Flags().BoolVar(&o.externalRefs, "external-refs", false, "list the image references and Argo CD/Flux sources that point outside the bundle's registry (or --allowed-registry), and exit 1 if there is any")
	c.Flags().StringSliceVar(&o.allowed, "allowed-registry", nil, "with --external-refs: the registries (host[:port]) references may point at (default: the registry the bundle is read from)")
	return c
}

// chartsOf lists each chart once, with the apps rendered from it.
func chartsOf(apps []bundles.IndexApp) []inspectChart {
	var charts []inspectChart
	for _, a := range apps {
		if a.Chart.Name == "" {
			continue
		}
		i := slices.IndexFunc(charts, func(c inspectChart) bool {
			return c.Name == a.Chart.Name && c.Version == a.Chart.Version && c.Digest == a.Chart.Digest
		})
		if i < 0 {
			charts = append(charts, inspectChart{Name: a.Chart.Name, Version: a.Chart.Version, AppVersion: a.Chart.AppVersion, Digest: a.Chart.Digest})
			i = len(charts) - 1
		}
		charts[i].Apps = append(charts[i].Apps, a.Name)
	}
	slices.SortFunc(charts, func(a, b inspectChart) int { return strings.Compare(a.Name+"@"+a.Version, b.Name+"@"+b.Version) })
	if charts == nil {
		charts = []inspectChart{}
	}
	return charts
}

func printInspect(w io.Writer, r inspectResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	a := r.Annotations
	row("Reference", r.Reference)
	row("Digest", r.Digest)
	if r.Stack != nil {
		row("Stack", r.Stack.Name+" "+r.Stack.Version)
		row("Kubernetes", r.Stack.Kubernetes)
	} else {
		row("Title", a[ocispec.AnnotationTitle])
		row("Version", a[ocispec.AnnotationVersion])
	}
	shown := []string{ocispec.AnnotationTitle, ocispec.AnnotationVersion}
	for _, k := range []struct{ label, key string }{
		{"Description", ocispec.AnnotationDescription},
		{"Created", ocispec.AnnotationCreated},
		{"Source", ocispec.AnnotationSource},
		{"Revision", ocispec.AnnotationRevision},
	} {
		row(k.label, a[k.key])
		shown = append(shown, k.key)
	}
	row("Galley", r.Galley)
	if x := r.Root; x != nil {
		if x.AllowOutside {
			row("Root", "none: built with --allow-outside-root, the stack could read any file")
		} else {
			row("Root", "built with --root "+x.Dir+" (relative to the stack directory)")
		}
	}
	row("Layer", fmt.Sprintf("%s, %d files, %s unpacked", humanBytes(r.Layer.Size), r.Layer.Files, humanBytes(r.Layer.Bytes)))
	if r.Signatures != nil {
		row("Signatures", fmt.Sprintf("%d .sig, %d Sigstore bundle (not verified here: use galley bundle verify --key)", *r.Signatures, *r.SigstoreBundles))
	}
	if p := r.Provenance; p != nil {
		row("Provenance", fmt.Sprintf("SLSA v1 by galley %s: %s %s from %s %s; %d charts, %d images, %d Terraform modules (not verified here: use galley bundle verify --provenance)",
			p.GalleyVersion, p.Stack, p.Version, orDash(p.Source), orDash(p.Revision), len(p.Charts), len(p.Images), len(p.Modules)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var other []string
	for k := range a {
		if !slices.Contains(shown, k) {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	if len(other) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "ANNOTATIONS")
		for _, k := range other {
			fmt.Fprintf(w, "  %s=%s\n", k, a[k])
		}
	}
	if len(r.Apps) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "APP\tNAMESPACE\tCHART\tOBJECTS\tWAVE\tDEPENDS ON")
		for _, app := range r.Apps {
			chart := "-"
			if app.Chart.Name != "" {
				chart = app.Chart.Name + " " + app.Chart.Version
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", app.Name, app.Namespace, chart, app.Objects, app.SyncWave, strings.Join(app.DependsOn, ","))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Charts) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "CHART\tVERSION\tAPP VERSION\tDIGEST")
		for _, c := range r.Charts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Version, c.AppVersion, c.Digest)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Images) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "IMAGES")
		for _, img := range r.Images {
			fmt.Fprintln(w, "  "+img)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
