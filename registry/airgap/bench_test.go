package airgap_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/galley-dev/galley/bundles"
	"github.com/galley-dev/galley/internal/testregistry"
	"github.com/galley-dev/galley/registry"
	"github.com/galley-dev/galley/registry/airgap"
)

// measureEnv makes the test binary a child that runs one export or import
// and reports on stdout; see BenchmarkExportImport.
const measureEnv = "GALLEY_AIRGAP_MEASURE"

func TestMain(m *testing.M) {
	if op := os.Getenv(measureEnv); op != "" {
		os.Exit(measureChild(op))
	}
	os.Exit(m.Run())
}

// measured is what a child reports.
type measured struct {
	Seconds float64 `json:"seconds"`
	// PeakHeap is the largest HeapInuse sampled every 20ms.
	PeakHeap uint64 `json:"peakHeap"`
	// VmHWM is the peak resident set size from /proc/self/status.
	VmHWM uint64 `json:"vmHWM"`
	Bytes int64  `json:"bytes"`
}

// measureChild runs GALLEY_AIRGAP_MEASURE=export|import with its
// arguments in GALLEY_AIRGAP_ARGS (ref, file, to).
func measureChild(op string) int {
	args := strings.Fields(os.Getenv("GALLEY_AIRGAP_ARGS"))
	ctx := context.Background()
	c := airgap.New(registry.Options{PlainHTTP: true})
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		var ms runtimeMemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			ms.read()
			max = maxU(max, ms.heapInuse)
			select {
			case <-done:
				peak <- max
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	var (
		n   int64
		err error
	)
	switch op {
	case "export":
		var ref registry.Reference
		if ref, err = registry.ParseReference(args[0]); err == nil {
			var res *airgap.ExportResult
			if res, err = c.Export(ctx, ref, args[1], airgap.ExportOptions{WithImages: true}); err == nil {
				n = res.Bytes
			}
		}
	case "import":
		var to registry.Reference
		if to, err = registry.ParseReference(args[1]); err == nil {
			var res *airgap.ImportResult
			if res, err = c.Import(ctx, args[0], to, airgap.ImportOptions{Concurrency: 3}); err == nil {
				n = res.BytesPushed
			}
		}
	case "baseline":
		// Nothing: what the test binary itself takes.
	default:
		err = fmt.Errorf("unknown operation %q", op)
	}
	elapsed := time.Since(start)
	close(done)
	m := measured{Seconds: elapsed.Seconds(), PeakHeap: <-peak, VmHWM: vmHWM(), Bytes: n}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(m)
	return 0
}

type runtimeMemStats struct{ heapInuse uint64 }

func (m *runtimeMemStats) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.heapInuse = s.HeapInuse
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// vmHWM reads the peak resident set size of this process, in bytes.
func vmHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkExportImport exports and imports a bundle whose images add up
// to 256 MiB and 1 GiB of incompressible layers, each operation in a child
// process so that its peak memory is its own: peak-rss-MiB (the kernel's
// maximum resident set size of the child) should stay flat while the size
// grows fourfold. baseline-rss-MiB is a child that does nothing: the test
// binary links the compiler (Helm, CUE) for the other tests. Run it with
//
//	go test -run '^$' -bench ExportImport -benchtime 1x ./registry/airgap/
func BenchmarkExportImport(b *testing.B) {
	for _, size := range []int64{256 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			outside, inside := testregistry.Start(b), testregistry.Start(b)
			ref := pushBigStack(b, outside.Host(), size)
			dir := b.TempDir()
			var export, imp []result
			for i := range b.N {
				file := filepath.Join(dir, fmt.Sprintf("stack-%d.tar", i))
				export = append(export, runChild(b, "export", ref.String(), file))
				imp = append(imp, runChild(b, "import", file, fmt.Sprintf("oci://%s/run%d", inside.Host(), i)))
				os.Remove(file)
			}
			base := runChild(b, "baseline")
			b.ReportMetric(float64(base.maxRSS)/(1<<20), "baseline-rss-MiB")
			report(b, "export", export, size)
			report(b, "import", imp, size)
		})
	}
}

type result struct {
	measured
	maxRSS uint64 // from wait4's rusage, bytes
}

func runChild(b *testing.B, op string, args ...string) result {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), measureEnv+"="+op, "GALLEY_AIRGAP_ARGS="+strings.Join(args, " "))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %v: %v\n%s", op, args, err, errb.String())
	}
	var r result
	if err := json.Unmarshal(out.Bytes(), &r.measured); err != nil {
		b.Fatalf("%s: %v: %q", op, err, out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = uint64(ru.Maxrss) << 10
	}
	return r
}

func report(b *testing.B, op string, rs []result, size int64) {
	var secs float64
	var rss, heap, hwm uint64
	for _, r := range rs {
		secs += r.Seconds
		rss, heap, hwm = maxU(rss, r.maxRSS), maxU(heap, r.PeakHeap), maxU(hwm, r.VmHWM)
	}
	secs /= float64(len(rs))
	b.ReportMetric(secs, op+"-s")
	b.ReportMetric(float64(size>>20)/secs, op+"-MiB/s")
	b.ReportMetric(float64(rss)/(1<<20), op+"-peak-rss-MiB")
	b.ReportMetric(float64(heap)/(1<<20), op+"-peak-heap-MiB")
	b.Logf("%s of %d MiB: %.1fs, peak RSS %.1f MiB (VmHWM %.1f MiB), peak heap in use %.1f MiB",
		op, size>>20, secs, float64(rss)/(1<<20), float64(hwm)/(1<<20), float64(heap)/(1<<20))
}

// The layers are generated: pseudo-random bytes from a seeded ChaCha8, so
// they do not compress and never sit in memory whole.
const (
	layerSize      = 64 << 20
	layersPerImage = 4
)

type genReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newGen(seed uint64, size int64) *genReader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &genReader{rng: rand.NewChaCha8(s), left: size}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rng.Read(p)
	g.left -= int64(n)
	return n, nil
}

// pushBigStack pushes images of size bytes in total to host, and a bundle
// running them, and returns the bundle's reference.
func pushBigStack(b *testing.B, host string, size int64) registry.Reference {
	b.Helper()
	ctx := b.Context()
	var images []string
	layers := size / layerSize
	for img := int64(0); img*layersPerImage < layers; img++ {
		repo, err := orasremote.NewRepository(fmt.Sprintf("%s/big/image%d", host, img))
		if err != nil {
			b.Fatal(err)
		}
		repo.PlainHTTP = true
		var descs []ocispec.Descriptor
		var diffIDs []digest.Digest
		for l := img * layersPerImage; l < min(layers, (img+1)*layersPerImage); l++ {
			h := digest.SHA256.Digester()
			if _, err := io.Copy(h.Hash(), newGen(uint64(l), layerSize)); err != nil {
				b.Fatal(err)
			}
			d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: h.Digest(), Size: layerSize}
			if err := repo.Blobs().Push(ctx, d, newGen(uint64(l), layerSize)); err != nil {
				b.Fatal(err)
			}
			descs, diffIDs = append(descs, d), append(diffIDs, d.Digest)
		}
		config, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
		cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
		if err := repo.Blobs().Push(ctx, cd, bytes.NewReader(config)); err != nil {
			b.Fatal(err)
		}
		manifest, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: descs})
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
		if err := repo.PushReference(ctx, md, bytes.NewReader(manifest), "1.0"); err != nil {
			b.Fatal(err)
		}
		images = append(images, fmt.Sprintf("%s/big/image%d:1.0", host, img))
	}

	idx, _ := json.Marshal(bundles.Index{SchemaVersion: 1, Stack: bundles.IndexStack{Name: "big", Version: "1.0.0"}, Apps: []bundles.IndexApp{}, Images: images})
	var deploy strings.Builder
	deploy.WriteString("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: big\nspec:\n  template:\n    spec:\n      containers:\n")
	for i, im := range images {
		fmt.Fprintf(&deploy, "      - name: c%d\n        image: %s\n", i, im)
	}
	tree := bundles.NewTree()
	for p, data := range map[string]string{bundles.IndexPath: string(idx), "apps/big/deployment-big.yaml": deploy.String()} {
		if err := tree.Add(p, []byte(data)); err != nil {
			b.Fatal(err)
		}
	}
	bundle, err := bundles.Pack(tree, bundles.Metadata{Name: "big", Version: "1.0.0", Created: time.Unix(0, 0)})
	if err != nil {
		b.Fatal(err)
	}
	ref, err := registry.ParseReference("oci://" + host + "/platform/big:1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := registry.New(registry.Options{PlainHTTP: true}).Push(ctx, bundle, ref); err != nil {
		b.Fatal(err)
	}
	return ref
}
