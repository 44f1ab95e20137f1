package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

type listOptions struct {
	registryFlags
	output outputFlag
}

// listResult is `bundle list --output json`.
type listResult struct {
	Repository string        `json:"repository"`
	Versions   []listVersion `json:"versions"`
}

type listVersion struct {
	Tag     string `json:"tag"`
	Digest  string `json:"digest"`
	Created string `json:"created,omitempty"`
	Semver  bool   `json:"semver"`
	Bundle  bool   `json:"bundle"`
	Signed  bool   `json:"signed"`
}

func newListCmd(env *Env) *cobra.Command {
	o := &listOptions{output: "text"}
	c := &cobra.Command{
		Use:   "list oci://<registry>/<repo>",
		Short: "List the versions of a bundle in a registry",
		Long: `list shows the tags of a repository: semantic versions first, lowest
first, then the other tags (latest, ...), each with its digest, created
time, and whether a cosign signature is stored for it (not whether it is
valid: use bundle verify). Signature tags are not listed.`,
		Args: exactArgs(1, "a repository reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ref, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if ref.Tag != "" || ref.Digest != "" {
				return &usageError{errors.New("list takes a repository, without a tag or digest: " + ref.WithTag("").String())}
			}
			client, err := o.client(env)
			if err != nil {
				return err
			}
			vs, err := client.ListVersions(c.Context(), ref)
			if err != nil {
				return err
			}
			r := listResult{Repository: ref.String(), Versions: []listVersion{}}
			for _, v := range vs {
				r.Versions = append(r.Versions, listVersion{
					Tag: v.Tag, Digest: v.Digest.String(), Created: v.Created,
					Semver: v.Semver, Bundle: v.Bundle, Signed: v.Signed,
				})
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			if len(r.Versions) == 0 {
				fmt.Fprintf(env.Stderr, "%s has no tags\n", ref)
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TAG\tDIGEST\tCREATED\tSIGNED")
			for _, v := range r.Versions {
				created := v.Created
				if !v.Bundle {
					created = "(not a galley bundle)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Tag, v.Digest, created, yesNo(v.Signed))
			}
			return tw.Flush()
		},
	}
	o.registryFlags.register(c.Flags())
	registerOutput(c.Flags(), &o.output)
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
