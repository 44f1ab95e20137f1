package cli

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/galley-dev/galley/bundles/sign"
	"github.com/galley-dev/galley/registry"
	"github.com/galley-dev/galley/registry/airgap"
)

type exportOptions struct {
	registryFlags
	out        string
	withImages bool
	platforms  []string
	// trustedRoot: a trusted_root.json to carry in the archive.
	trustedRoot string
	output      outputFlag
}

// exportResult is `bundle export --output json`.
type exportResult struct {
	Digest    string                 `json:"digest"`
	Reference string                 `json:"reference"`
	File      string                 `json:"file"`
	Tags      []string               `json:"tags"`
	Signed    int                    `json:"signatures"`
	Referrers int                    `json:"referrers"`
	Images    []airgap.ExportedImage `json:"images"`
	Blobs     int                    `json:"blobs"`
	Bytes     int64                  `json:"bytes"`
	// Shared counts the blobs met again (a layer several images have in
	// common), written once; SharedBytes what writing them again would
	// have cost.
	Shared      int     `json:"shared"`
	SharedBytes int64   `json:"sharedBytes"`
	Seconds     float64 `json:"seconds"`
	// TrustedRootSHA256 is the sha256 (hex) of the trusted root carried,
	// the pin import --trusted-root-sha256 takes; absent without one.
	TrustedRootSHA256 string `json:"trustedRootSha256,omitempty"`
}

func newExportCmd(env *Env) *cobra.Command {
	o := &exportOptions{output: "text"}
	c := &cobra.Command{
		Use:   "export oci://<registry>/<repo>:<tag>|@<digest> -d <file.tar>",
		Short: "Write a bundle, its signatures and its images to one file for an air-gapped install",
		Long: `export writes the bundle, its cosign signatures (the sha256-<hex>.sig
manifest) and OCI referrers, and with --with-images every container image its
bundle.json lists, into one tar of an OCI image layout, ready to carry across
an air gap and load with bundle import. Blobs shared by several images are
stored once; every blob is checked against its digest on the way.

Multi-arch images are kept whole; --platform keeps only the platforms named
(the index is cut down to them, under a new digest).

--trusted-root FILE carries a Sigstore trusted_root.json (for keyless
signatures) in the file as trusted_root.json, and prints its sha256. Import
uses it only when given that digest (--trusted-root-sha256): send the digest
by another channel than the file, since whoever can alter the file can
replace both the signatures and the root.

The file is written under a temporary name and renamed at the end: a failed
or interrupted export leaves nothing behind, and running it again starts
over. Memory use does not grow with the size of the images.

Credentials for the bundle's registry come from --username and
--password-stdin or the Docker config; for the images' registries, from the
Docker config. The bundle digest is printed on stdout.`,
		Args: exactArgs(1, "a reference"),
		RunE: func(c *cobra.Command, args []string) error {
			ref, err := parseTaggedRef(args[0])
			if err != nil {
				return err
			}
			if o.out == "" {
				return &usageError{errors.New("--destination <file.tar> is required")}
			}
			var opts airgap.ExportOptions
			opts.WithImages = o.withImages
			for _, p := range o.platforms {
				pl, err := airgap.ParsePlatform(p)
				if err != nil {
					return &usageError{err}
				}
				opts.Platforms = append(opts.Platforms, pl)
			}
			if len(opts.Platforms) > 0 && !o.withImages {
				return &usageError{errors.New("--platform selects images: it needs --with-images")}
			}
			if o.trustedRoot != "" {
				if _, opts.TrustedRoot, err = sign.LoadTrustedRoot(o.trustedRoot); err != nil {
					return err
				}
			}
			progress, done := totalProgress(env, "copied")
			var tally transferTally
			client, err := o.airgapClient(env, tally.track(progress))
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := client.Export(c.Context(), ref, o.out, opts)
			elapsed := time.Since(start)
			done()
			if err != nil {
				return err
			}
			r := exportResult{
				Digest:      res.Bundle.Digest.String(),
				Reference:   res.Bundle.String(),
				File:        o.out,
				Tags:        res.Tags,
				Signed:      res.Signatures,
				Referrers:   res.Referrers,
				Images:      res.Images,
				Blobs:       res.Blobs,
				Bytes:       res.Bytes,
				Shared:      tally.skipped,
				SharedBytes: tally.skippedBytes,
				Seconds:     elapsed.Round(time.Millisecond).Seconds(),
			}
			if res.TrustedRoot != "" {
				r.TrustedRootSHA256 = res.TrustedRoot.Encoded()
			}
			if r.Tags == nil {
				r.Tags = []string{}
			}
			if o.output == "json" {
				return writeJSON(env.Stdout, r)
			}
			fmt.Fprintf(env.Stderr, "exported %s to %s: %s, %s, %d blobs, %s\n",
				r.Reference, o.out, plural(r.Signed, "signature"), plural(len(r.Images), "image"), r.Blobs, humanBytes(r.Bytes))
			fmt.Fprintf(env.Stderr, "blobs: %d copied in %s, %d more shared with another image and written once (%s)\n",
				r.Blobs, elapsed.Round(time.Millisecond), r.Shared, humanBytes(r.SharedBytes))
			if r.TrustedRootSHA256 != "" {
				fmt.Fprintf(env.Stderr, "trusted root: %s, sha256 %s\n  send this digest to the importer by a channel other than the file: import --trusted-root-sha256 %s\n",
					airgap.TrustedRootFile, r.TrustedRootSHA256, r.TrustedRootSHA256)
			}
			if r.Signed == 0 {
				fmt.Fprintf(env.Stderr, "galley: warning: %s is not signed: import cannot check where it came from\n", r.Reference)
			}
			_, err = fmt.Fprintln(env.Stdout, r.Digest)
			return err
		},
	}
	o.registryFlags.register(c.Flags())
	c.Flags().BoolVar(&o.withImages, "with-images", false, "add every container image the bundle's bundle.json lists")
	c.Flags().StringSliceVar(&o.platforms, "platform", nil, "keep only these platforms of multi-arch images (os/arch[/variant], comma-separated or repeated)")
	c.Flags().StringVar(&o.trustedRoot, "trusted-root", "", "carry this Sigstore trusted_root.json in the file, for keyless verification on the far side (import uses it only pinned by the sha256 printed here)")
	registerDestination(c.Flags(), &o.out, &o.output, "the file to write (a tar of an OCI image layout)")
	return c
}

// airgapClient is registryFlags.client for the air-gap commands: the same
// credentials and checks, and progress as a running total, since blobs move
// several at a time.
func (f *registryFlags) airgapClient(env *Env, progress func(registry.Progress)) (*airgap.Client, error) {
	opts, err := f.options(env, progress)
	if err != nil {
		return nil, err
	}
	return airgap.New(opts), nil
}

// transferTally counts, for the end summary, the blobs a transfer did not
// move: the registry had them, or the file had them already. It counts
// whether or not progress is shown.
type transferTally struct {
	mu           sync.Mutex
	skipped      int
	skippedBytes int64
}

// track counts each skipped blob, then hands every report to next (nil
// when progress is not shown).
func (t *transferTally) track(next func(registry.Progress)) func(registry.Progress) {
	return func(p registry.Progress) {
		if p.Skipped {
			t.mu.Lock()
			t.skipped++
			t.skippedBytes += p.Size
			t.mu.Unlock()
		}
		if next != nil {
			next(p)
		}
	}
}

// totalProgress draws one line with the blobs and bytes done so far on an
// interactive terminal, and nothing otherwise. done clears the line.
func totalProgress(env *Env, verb string) (progress func(registry.Progress), done func()) {
	if !env.Interactive {
		return nil, func() {}
	}
	var (
		mu          sync.Mutex
		blobs, skip int
		bytes       int64
		current     = map[string]int64{}
		drawn       bool
	)
	progress = func(p registry.Progress) {
		mu.Lock()
		defer mu.Unlock()
		key := p.Digest.String()
		switch {
		case p.Skipped:
			skip++
			delete(current, key)
		case p.Done >= p.Size:
			blobs++
			bytes += p.Size
			delete(current, key)
		default:
			current[key] = p.Done
		}
		var inFlight int64
		for _, n := range current {
			inFlight += n
		}
		line := fmt.Sprintf("  %s %d blobs, %s", verb, blobs, humanBytes(bytes+inFlight))
		if skip > 0 {
			line += fmt.Sprintf(", %d already there", skip)
		}
		fmt.Fprintf(env.Stderr, "\r%-64s", line)
		drawn = true
	}
	done = func() {
		mu.Lock()
		defer mu.Unlock()
		if drawn {
			fmt.Fprint(env.Stderr, "\r"+strings.Repeat(" ", 64)+"\r")
		}
	}
	return progress, done
}
