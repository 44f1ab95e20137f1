package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/largelayout"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
)

// Memory of moving a bundle whose layer is 1 GiB, measured as the peak
// resident set (getrusage ru_maxrss) of a child process doing one step, as
// a user's galley process would, against the same child doing nothing:
//
//   - push: read the layout (ReadLayout, the layer checked by streaming
//     it), check its files (CheckLayer) and push it to the real registry
//     (what `galley bundle push <layout>` does);
//   - pull: PullTo a file beside the output, then Untar from it (what
//     `galley bundle pull -d` does);
//   - pack+push: pack an in-memory tree to a layer file (PackWith with
//     LayerDir) and push it; the tree itself is in memory by design (it is
//     the compiler's output), so this one reports the peak above the
//     resident set once the tree is built.
//
// The target is a peak within 64 MiB of the idle process. The children
// are this test binary run again with largeLayerChildEnv set (TestMain).
// Run it with
//
//	go test ./registry -run '^$' -bench LargeLayer -benchtime 1x
const (
	largeLayerChildEnv = "GALLEY_LARGE_LAYER_CHILD"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(largeLayerChildEnv); spec != "" {
		largeLayerChild(spec)
	}
	os.Exit(m.Run())
}

func BenchmarkLargeLayer(b *testing.B) {
	r := testregistry.Start(b)
	work := b.TempDir()
	layout := filepath.Join(work, "layout")
	desc, err := largelayout.Write(layout)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("layer %s, %d bytes", desc.Digest, desc.Size)

	idle := runLargeChild(b, "idle")
	b.Run("push", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c := runLargeChild(b, "push", layout, r.Ref(fmt.Sprintf("bench/large-%d:1.0.0", i)))
			reportRSS(b, c, idle, 0)
		}
	})
	b.Run("pull", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c := runLargeChild(b, "pull", r.Ref("bench/large-0:1.0.0"), filepath.Join(work, fmt.Sprintf("pulled-%d", i)))
			reportRSS(b, c, idle, 0)
			if err := os.RemoveAll(filepath.Join(work, fmt.Sprintf("pulled-%d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pack+push", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c := runLargeChild(b, "pack", work, r.Ref(fmt.Sprintf("bench/packed-%d:1.0.0", i)))
			reportRSS(b, c, idle, c.treeRSS)
		}
	})
}

type largeChild struct {
	maxRSS  int64 // bytes
	treeRSS int64 // bytes resident once the tree is built (pack only)
}

func reportRSS(b *testing.B, c, idle largeChild, base int64) {
	b.ReportMetric(float64(c.maxRSS)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(idle.maxRSS)/(1<<20), "idle-MiB")
	if base == 0 {
		b.ReportMetric(float64(c.maxRSS-idle.maxRSS)/(1<<20), "over-idle-MiB")
		return
	}
	b.ReportMetric(float64(base)/(1<<20), "tree-MiB")
	b.ReportMetric(float64(c.maxRSS-base)/(1<<20), "over-tree-MiB")
}

func runLargeChild(b *testing.B, mode string, args ...string) largeChild {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), largeLayerChildEnv+"="+strings.Join(append([]string{mode}, args...), "\x1f"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		b.Fatalf("child %s: %v\n%s", mode, err, out.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	c := largeChild{maxRSS: ru.Maxrss << 10}
	for line := range strings.Lines(out.String()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "tree-rss "); ok {
			c.treeRSS, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return c
}

// largeLayerChild runs one step in a child process and exits; TestMain
// calls it when largeLayerChildEnv is set.
func largeLayerChild(spec string) {
	args := strings.Split(spec, "\x1f")
	if err := runLargeStep(context.Background(), args[0], args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runLargeStep(ctx context.Context, mode string, args []string) error {
	c := plainClient()
	switch mode {
	case "idle":
		return nil
	case "push":
		b, err := bundles.ReadLayout(args[0], "")
		if err != nil {
			return err
		}
		// As `galley bundle push <layout>` does: refuse a layer pull would
		// not unpack before publishing it.
		if err := b.CheckLayer(bundles.DefaultLimits); err != nil {
			return err
		}
		ref, err := registry.ParseReference("oci://" + args[1])
		if err != nil {
			return err
		}
		_, err = c.Publish(ctx, b, ref, registry.PublishOptions{})
		return err
	case "pull":
		ref, err := registry.ParseReference("oci://" + args[0])
		if err != nil {
			return err
		}
		b, err := c.PullTo(ctx, ref, filepath.Dir(args[1]))
		if err != nil {
			return err
		}
		defer b.Close()
		layer, err := b.OpenLayer()
		if err != nil {
			return err
		}
		defer layer.Close()
		return bundles.Untar(layer, args[1], bundles.DefaultLimits)
	case "pack":
		tree := bundles.NewTree()
		rng := rand.NewChaCha8([32]byte{1})
		for i := range largelayout.Files {
			data := make([]byte, largelayout.FileSize)
			_, _ = rng.Read(data)
			if err := tree.Add(fmt.Sprintf("data/file%02d.bin", i), data); err != nil {
				return err
			}
		}
		fmt.Printf("tree-rss %d\n", vmRSS())
		b, err := bundles.PackWith(tree, bundles.Metadata{Name: "large", Version: "1.0.0", Created: time.Unix(0, 0).UTC()}, bundles.PackOptions{LayerDir: args[0]})
		if err != nil {
			return err
		}
		defer b.Close()
		ref, err := registry.ParseReference("oci://" + args[1])
		if err != nil {
			return err
		}
		_, err = c.Publish(ctx, b, ref, registry.PublishOptions{})
		return err
	}
	return fmt.Errorf("unknown child mode %q", mode)
}

// vmRSS is the process's resident set now, from /proc/self/status.
func vmRSS() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
