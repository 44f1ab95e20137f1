package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/bundles/diff"
	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/registry"
)

// Exit codes of bundle diff, which differ from the other commands': a
// difference is not a failure, and CI needs to tell the two apart.
const (
	diffSame   = 0
	diffDiffer = 1
	diffFailed = 2
)

type diffOptions struct {
	registryFlags
	compileFlags
	output diffOutput
	color  colorFlag
	key    string
}

func newDiffCmd(env *Env) *cobra.Command {
	o := &diffOptions{output: "text", color: "auto"}
	c := &cobra.Command{
		Use:   "diff <a> <b>",
		Short: "Show what changes between two bundles",
		Long: `diff compares bundle <a> with bundle <b> and shows, per app and for the
argocd/, flux/, monitoring/ and terraform/ sections, which Kubernetes
objects are added, removed or changed, which fields of a changed object
changed (by YAML path), and which charts changed version. Objects are
matched by API group, kind, namespace and name, not by file name. Values
of Secrets are never shown: a diff says which key changed.

Each side is one of:
  a stack directory       compiled as bundle build would (not written out)
  an OCI layout directory as bundle build writes it; <dir>:<tag> or
                          <dir>@<digest> picks one of several bundles in it
  a bundle directory      the files of a bundle, as bundle pull unpacks them
  a registry reference    oci://<registry>/<repo>:<tag> or @<digest>, pulled
                          into memory and checked against its digests; with
                          --key its cosign signature must verify first

--env builds the stack directories for one of their environments.

--output text (colour when on a terminal), markdown (for a pull-request
comment) or json.

Exit status: 0 when the bundles deploy the same thing, 1 when they differ,
2 when the diff could not be made (a stack that does not compile, a
missing or unreadable bundle, a bad command line).`,
		// A usage error exits with 2 (ExitUsage), as diff's other errors.
		Args: exactArgs(2, "two bundles: <a> <b>"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkDiffFlags(o, args); err != nil {
				return err
			}
			code, err := runDiff(c.Context(), env, o, args[0], args[1])
			if err != nil {
				return &exitError{code: diffFailed, err: err}
			}
			if code != diffSame {
				return &exitError{code: code}
			}
			return nil
		},
	}
	c.Flags().VarP(&o.output, "output", "o", "output format: text, markdown or json")
	c.Flags().Var(&o.color, "color", "colour the text output: auto (on a terminal, unless NO_COLOR is set), always or never")
	c.Flags().StringVar(&o.key, "key", "", "refuse a registry side unless signed by this cosign public key file or KMS URI")
	o.registryFlags.register(c.Flags())
	o.compileFlags.register(c.Flags())
	return c
}

// checkDiffFlags refuses flags that would apply to neither side, since
// silently ignoring --key would read as a verified diff.
func checkDiffFlags(o *diffOptions, args []string) error {
	var refs, stacks int
	for _, a := range args {
		switch {
		case isRef(a):
			if _, err := parseTaggedRef(a); err != nil {
				return err
			}
			refs++
		case !isLayoutSide(a) && !isFile(filepath.Join(a, bundles.IndexPath)) && isDir(a):
			stacks++
		}
	}
	if o.key != "" && refs == 0 {
		return &usageError{errors.New("--key verifies registry references (oci://...), and neither side is one")}
	}
	if o.environment != "" && stacks == 0 {
		return &usageError{errors.New("--env builds stack directories, and neither side is one")}
	}
	return nil
}

func runDiff(ctx context.Context, env *Env, o *diffOptions, a, b string) (int, error) {
	l := &sideLoader{env: env, o: o}
	ta, err := l.load(ctx, a)
	if err != nil {
		return diffFailed, err
	}
	tb, err := l.load(ctx, b)
	if err != nil {
		return diffFailed, err
	}
	res, err := diff.Diff(ta, tb)
	if err != nil {
		return diffFailed, err
	}
	switch o.output {
	case "json":
		err = res.WriteJSON(env.Stdout)
	case "markdown":
		err = res.WriteMarkdown(env.Stdout)
	default:
		color := o.color == "always" || o.color == "auto" && env.Interactive && env.Getenv("NO_COLOR") == ""
		err = res.WriteText(env.Stdout, diff.TextOptions{Color: color})
	}
	if err != nil {
		return diffFailed, fmt.Errorf("writing the diff: %w", err)
	}
	if res.Equal() {
		return diffSame, nil
	}
	return diffDiffer, nil
}

// sideLoader reads the sides of a diff, with one registry client for both.
type sideLoader struct {
	env      *Env
	o        *diffOptions
	client   *registry.Client
	verifier signature.Verifier
}

// load reads one side of a diff into a bundle tree.
func (l *sideLoader) load(ctx context.Context, arg string) (*bundles.Tree, error) {
	env := l.env
	switch {
	case isRef(arg):
		return l.pull(ctx, arg)
	case isLayoutSide(arg):
		dir, ref := splitLayoutRef(arg)
		b, err := bundles.ReadLayout(dir, ref)
		if err != nil {
			return nil, err
		}
		t, err := b.Tree(bundles.DefaultLimits)
		if err != nil {
			return nil, fmt.Errorf("reading the layer of %s in %s: %w", b.Digest(), dir, err)
		}
		return t, nil
	case isFile(filepath.Join(arg, bundles.IndexPath)):
		return readBundleDir(arg)
	case isDir(arg):
		// The same chart lock, chart cache and render cache as build, so a
		// stack side gives the bundle build would.
		copts, err := l.o.compileFlags.options(env, l.o.plainHTTP, l.o.timeout)
		if err != nil {
			return nil, err
		}
		// The diff is the output: no progress lines between its hunks.
		copts.Progress = nil
		res, err := compiler.Compile(ctx, arg, copts)
		if err != nil {
			return nil, err
		}
		return res.Tree, nil
	}
	return nil, fmt.Errorf("%s: not a stack directory, an OCI layout or a bundle directory", arg)
}

// pull reads a registry side: verified first with --key, then pulled by
// the digest verified, every blob checked, into memory.
func (l *sideLoader) pull(ctx context.Context, arg string) (*bundles.Tree, error) {
	ref, err := parseRef(arg) // checked by checkDiffFlags
	if err != nil {
		return nil, err
	}
	if l.client == nil {
		if l.client, err = l.o.client(l.env); err != nil {
			return nil, err
		}
		if l.o.key != "" {
			if l.verifier, err = sign.LoadVerifier(ctx, l.o.key); err != nil {
				return nil, err
			}
		}
	}
	if l.verifier != nil {
		verified, err := l.client.Verify(ctx, ref, l.verifier)
		if err != nil {
			return nil, err
		}
		ref = verified.Reference
		fmt.Fprintf(l.env.Stderr, "verified %s: signed with %s\n", ref, l.o.key)
	}
	b, err := l.client.Pull(ctx, ref)
	if err != nil {
		return nil, err
	}
	t, err := b.Tree(bundles.DefaultLimits)
	if err != nil {
		return nil, fmt.Errorf("reading the layer of %s: %w", ref.WithDigest(b.Digest()), err)
	}
	return t, nil
}

// isLayoutSide says whether arg names an OCI layout, possibly with a tag
// or digest after the directory.
func isLayoutSide(arg string) bool {
	dir, _ := splitLayoutRef(arg)
	return isFile(filepath.Join(dir, "oci-layout"))
}

// splitLayoutRef splits <dir>@<digest> and <dir>:<tag>; a directory that
// exists as written wins, so a colon in a path still works.
func splitLayoutRef(arg string) (dir, ref string) {
	if isDir(arg) {
		return arg, ""
	}
	if i := strings.LastIndex(arg, "@"); i > 0 {
		return arg[:i], arg[i+1:]
	}
	if i := strings.LastIndex(arg, ":"); i > 0 && !strings.ContainsAny(arg[i+1:], `/\`) {
		return arg[:i], arg[i+1:]
	}
	return arg, ""
}

// readBundleDir reads an unpacked bundle: regular files only, within the
// limits a bundle's layer is read with.
func readBundleDir(dir string) (*bundles.Tree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("reading bundle directory: %w", err)
	}
	defer root.Close()
	lim := bundles.DefaultLimits
	t := bundles.NewTree()
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%s: not a regular file (bundles hold none)", p)
		case t.Len() >= lim.MaxFiles:
			return fmt.Errorf("more than %d files", lim.MaxFiles)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Size() > lim.MaxFileSize {
			return fmt.Errorf("%s: %d bytes, limit is %d", p, fi.Size(), lim.MaxFileSize)
		}
		if total += fi.Size(); total > lim.MaxTotalSize {
			return fmt.Errorf("more than %d bytes in all", lim.MaxTotalSize)
		}
		data, err := fs.ReadFile(root.FS(), p)
		if err != nil {
			return err
		}
		return t.Add(p, data)
	})
	if err != nil {
		return nil, fmt.Errorf("reading bundle directory %s: %w", dir, err)
	}
	return t, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// diffOutput is diff's --output flag.
type diffOutput string

func (o *diffOutput) String() string { return string(*o) }
func (o *diffOutput) Type() string   { return "text|markdown|json" }
func (o *diffOutput) Set(s string) error {
	switch s {
	case "text", "markdown", "json":
		*o = diffOutput(s)
		return nil
	}
	return errors.New("must be text, markdown or json")
}

// colorFlag is diff's --color flag.
type colorFlag string

func (f *colorFlag) String() string { return string(*f) }
func (f *colorFlag) Type() string   { return "auto|always|never" }
func (f *colorFlag) Set(s string) error {
	switch s {
	case "auto", "always", "never":
		*f = colorFlag(s)
		return nil
	}
	return errors.New("must be auto, always or never")
}
