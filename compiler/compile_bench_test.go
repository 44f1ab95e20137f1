package compiler_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/galley-dev/galley/bench/stackgen"
	"github.com/galley-dev/galley/compiler"
	"github.com/galley-dev/galley/compiler/stack"
)

// realChartsStack is the stack `make bench` builds: the six real charts of
// ../shared/charts.
func realChartsStack(b *testing.B) string {
	sharedCharts(b)
	return filepath.Join(repoRoot(b), "testdata", "stacks", "real-charts")
}

// BenchmarkCompileRealCharts compiles the six real charts: every chart
// rendered (twice, for the determinism check) without a cache; with an
// empty cache (rendered, then stored); and from a warm cache.
func BenchmarkCompileRealCharts(b *testing.B) {
	benchCompile(b, realChartsStack(b))
}

// realChartsOpts are opts with the root the real-charts stack needs.
func realChartsOpts(b *testing.B) compiler.Options {
	o := opts()
	o.Root = realChartsRoot(b)
	return o
}

func benchCompile(b *testing.B, dir string) {
	ctx := context.Background()
	b.Run("nocache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mustCompile(b, ctx, dir, realChartsOpts(b))
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			o := realChartsOpts(b)
			o.CacheDir = b.TempDir()
			b.StartTimer()
			mustCompile(b, ctx, dir, o)
		}
	})
	b.Run("warm", func(b *testing.B) {
		o := realChartsOpts(b)
		o.CacheDir = b.TempDir()
		mustCompile(b, ctx, dir, o)
		b.ReportAllocs()
		for b.Loop() {
			mustCompile(b, ctx, dir, o)
		}
	})
}

func mustCompile(b *testing.B, ctx context.Context, dir string, o compiler.Options) *compiler.Result {
	b.Helper()
	res, err := compiler.Compile(ctx, dir, o)
	if err != nil {
		b.Fatal(stack.FormatError(err, dir))
	}
	return res
}

// BenchmarkLoadRealCharts is the CUE part of a build: loading and
// validating the stack, which a warm build pays in full.
func BenchmarkLoadRealCharts(b *testing.B) {
	dir := realChartsStack(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stack.Load(context.Background(), dir, stack.WithRoot(realChartsRoot(b))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileScaling compiles synthetic stacks of 10, 50 and 200
// apps (bench/stackgen) and reports the time per app, which should not
// grow with the number of apps.
func BenchmarkCompileScaling(b *testing.B) {
	for _, n := range []int{10, 50, 200} {
		dir := filepath.Join(b.TempDir(), "stack")
		if err := stackgen.Write(dir, stackgen.Options{Apps: n}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			for _, mode := range []string{"nocache", "warm"} {
				b.Run(mode, func(b *testing.B) {
					ctx := context.Background()
					o := opts()
					if mode == "warm" {
						o.CacheDir = b.TempDir()
						mustCompile(b, ctx, dir, o)
					}
					b.ReportAllocs()
					for b.Loop() {
						res := mustCompile(b, ctx, dir, o)
						if len(res.Index.Apps) != n {
							b.Fatalf("%d apps compiled, want %d", len(res.Index.Apps), n)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/app")
				})
			}
		})
	}
}
