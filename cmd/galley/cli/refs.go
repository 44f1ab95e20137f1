package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
)

// registryFlags are the connection flags of every command that talks to a
// registry.
type registryFlags struct {
	plainHTTP     bool
	username      string
	passwordStdin bool
	timeout       time.Duration
	// maxLayerSize is the --max-layer-size of the commands with
	// limitFlags, which set it before calling client; 0 means the default.
	maxLayerSize int64
}

func (f *registryFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.plainHTTP, "plain-http", false, "talk plain HTTP instead of HTTPS (local test registries only)")
	fs.StringVar(&f.username, "username", "", "registry username (default: the Docker config and its credential helpers)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from stdin")
	fs.DurationVar(&f.timeout, "timeout", registry.DefaultRetryOptions.MaxTime, "give up on each registry operation after this long, retries included (failures that may pass, such as 5xx answers and dropped connections, are retried until then)")
}

// maxPasswordSize bounds what --password-stdin reads: tokens are long, not
// that long.
const maxPasswordSize = 64 << 10

// client returns a registry client for the flags: --username with a password
// from stdin, or else the Docker config's credentials.
func (f *registryFlags) client(env *Env) (*registry.Client, error) {
	opts, err := f.options(env, transferProgress(env))
	if err != nil {
		return nil, err
	}
	return registry.New(opts), nil
}

// options are the registry.Options the flags ask for, with the
// credentials resolved once for every kind of client.
func (f *registryFlags) options(env *Env, progress func(registry.Progress)) (registry.Options, error) {
	opts := registry.Options{
		PlainHTTP:    f.plainHTTP,
		UserAgent:    "galley/" + Version(),
		Progress:     progress,
		Retry:        registry.RetryOptions{MaxTime: f.timeout},
		MaxLayerSize: f.maxLayerSize,
	}
	switch {
	case f.passwordStdin && f.username == "":
		return opts, &usageError{errors.New("--password-stdin needs --username")}
	case f.username != "" && !f.passwordStdin:
		return opts, &usageError{errors.New("--username needs --password-stdin (passwords are never taken as arguments)")}
	case f.username != "":
		b, err := io.ReadAll(io.LimitReader(env.Stdin, maxPasswordSize+1))
		if err != nil {
			return opts, fmt.Errorf("reading the password from stdin: %w", err)
		}
		if len(b) > maxPasswordSize {
			return opts, errors.New("reading the password from stdin: more than 64 KiB")
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return opts, errors.New("reading the password from stdin: it is empty")
		}
		opts.Username, opts.Password = f.username, pw
	default:
		store, err := registry.DockerCredentials(env.Getenv)
		if err != nil {
			return opts, err
		}
		opts.CredentialStore = store
	}
	return opts, nil
}

// parseRef parses a reference argument; a malformed one is a usage error.
func parseRef(s string) (registry.Reference, error) {
	ref, err := registry.ParseReference(s)
	if err != nil {
		return ref, &usageError{err}
	}
	return ref, nil
}

// parseTaggedRef parses a reference argument that must name a tag or a
// digest.
func parseTaggedRef(s string) (registry.Reference, error) {
	ref, err := parseRef(s)
	if err != nil {
		return ref, err
	}
	if ref.Tag == "" && ref.Digest == "" {
		return ref, &usageError{fmt.Errorf("name a tag or digest: %s:<tag> or %s@<digest>", ref, ref)}
	}
	return ref, nil
}

// validateTags checks the tags given on the command line, skipping empty
// ones; a bad one is a usage error.
func validateTags(tags ...string) error {
	for _, t := range tags {
		if t == "" {
			continue
		}
		if err := registry.ValidateTag(t); err != nil {
			return &usageError{err}
		}
	}
	return nil
}

// tagUpdates splits what a push or copy did to the tags into the tag names
// and their JSON updates.
func tagUpdates(us []registry.TagUpdate) ([]string, []tagUpdate) {
	var (
		tags    []string
		updates []tagUpdate
	)
	for _, u := range us {
		tags = append(tags, u.Tag)
		updates = append(updates, tagUpdate{Tag: u.Tag, Previous: u.Previous.String(), Changed: u.Changed})
	}
	return tags, updates
}

// isRef says whether an argument names a registry rather than a directory.
func isRef(s string) bool { return strings.HasPrefix(s, registry.Scheme) }

// lookupEnv adapts Env.Getenv to the lookup sign.PasswordFromEnv wants. A
// getenv cannot tell an unset variable from an empty one, so an empty value
// counts as set only when the process environment has it set: cosign keys
// may have an empty password.
func lookupEnv(env *Env) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v := env.Getenv(k); v != "" {
			return v, true
		}
		_, set := os.LookupEnv(k)
		return "", set
	}
}

// passFunc reads a key password from GALLEY_KEY_PASSWORD or COSIGN_PASSWORD.
func passFunc(env *Env) sign.PassFunc { return sign.PasswordFromEnv(lookupEnv(env)) }

// transferProgress draws one line per blob on an interactive terminal and
// nothing otherwise.
func transferProgress(env *Env) func(registry.Progress) {
	if !env.Interactive {
		return nil
	}
	return func(p registry.Progress) {
		name := p.What + " " + shortDigest(p.Digest.String())
		switch {
		case p.Skipped:
			fmt.Fprintf(env.Stderr, "\r  %-34s already there\n", name)
		case p.Done >= p.Size:
			fmt.Fprintf(env.Stderr, "\r  %-34s %s  done\n", name, humanBytes(p.Size))
		default:
			fmt.Fprintf(env.Stderr, "\r  %-34s %s / %s", name, humanBytes(p.Done), humanBytes(p.Size))
		}
	}
}

// shortDigest keeps "sha256:" and 12 hex digits, as docker does.
func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

// isLayoutDir tells an OCI layout directory from a stack directory: a
// layout has an oci-layout file.
func isLayoutDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil
}
