package charts_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/compiler/stack"
)

var ctx = context.Background()

// twoCharts is a stack with metabase from an OCI registry, pinned, and
// grafana from a classic repository, by range.
func twoCharts(t *testing.T, reg *ociRegistry, hr *helmRepo) string {
	return writeStack(t, t.TempDir(), fmt.Sprintf(`
		bi: {namespace: "bi", chart: {oci: %q, version: "2.26.0"}}
		grafana: {
			namespace: "monitoring"
			chart: {repository: %q, name: "grafana", version: "~12.11.0"}
			values: adminPassword: "test-only-admin-password"
			secrets: allowPlaintext: true
		}`, reg.URL("metabase"), hr.URL()), map[string]string{})
}

// TestLockedBuild is the life of a locked stack: lock, build, a new
// upstream version that changes nothing until the next lock, then
// builds with the servers gone, and a tampered cache.
func TestLockedBuild(t *testing.T) {
	reg := startRegistry(t)
	hr := startRepo(t, "", "")
	metabase := packageChart(t, "metabase", "2.26.0")
	grafana := packageChart(t, "grafana", "12.11.1")
	reg.push(t, metabase, nil)
	hr.add(t, grafana, nil, false)
	dir := twoCharts(t, reg, hr)
	opts := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}

	// Unlocked: every remote app is an error at its chart, saying what
	// to do.
	_, _, err := build(t, dir, opts)
	if !errors.Is(err, charts.ErrNotLocked) {
		t.Fatalf("build without a lock: got %v, want ErrNotLocked", err)
	}
	msg := stack.FormatError(err, dir)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile("(?m)^stack.cue:8:25: stack.apps.bi.chart: chart metabase 2.26.0 from oci://127.0.0.1:\\d+/charts/metabase is not locked: there is no galley.lock beside the stack; run `galley lock`$"),
		regexp.MustCompile(`(?m)^stack.cue:11:4: stack.apps.grafana.chart: chart grafana ~12.11.0 from http://127.0.0.1:\d+ is not locked`),
	} {
		if !want.MatchString(msg) {
			t.Errorf("build without a lock: error\n%s\ndoes not match %s", msg, want)
		}
	}

	res, err := charts.LockStack(ctx, dir, opts)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	l := readLock(t, dir)
	mb, gf := entry(t, l, "metabase"), entry(t, l, "grafana")
	if mb.Version != "2.26.0" || mb.Digest != fileDigest(t, metabase) || mb.OCI != reg.URL("metabase") || !strings.HasPrefix(mb.Manifest, "sha256:") {
		t.Errorf("metabase entry: %+v", mb)
	}
	if gf.Version != "12.11.1" || gf.Digest != fileDigest(t, grafana) || gf.URL != hr.URL()+"/grafana-12.11.1.tgz" || gf.Constraint != "~12.11.0" {
		t.Errorf("grafana entry: %+v", gf)
	}
	if len(res.Changes) != 2 || res.Changes[0].Previous != nil {
		t.Errorf("first lock changes: %+v", res.Changes)
	}
	if _, ok, err := charts.NewCache(opts.CacheDir).Get(mb.Digest); !ok || err != nil {
		t.Errorf("lock did not fill the cache: %v %v", ok, err)
	}

	first, apps := mustBuild(t, dir, opts)
	if want := "metabase 2.26.0 " + mb.Digest; apps["bi"] != want {
		t.Errorf("bundle index: bi chart %q, want %q", apps["bi"], want)
	}
	if want := "grafana 12.11.1 " + gf.Digest; apps["grafana"] != want {
		t.Errorf("bundle index: grafana chart %q, want %q", apps["grafana"], want)
	}

	// New versions upstream change nothing for a locked build, which does
	// not even ask.
	indexReads := hr.served("/index.yaml")
	reg.push(t, packageChart(t, "metabase", "2.26.1"), nil)
	hr.add(t, packageChart(t, "grafana", "12.11.2"), nil, false)
	if again, _ := mustBuild(t, dir, opts); again != first {
		t.Errorf("a new upstream version changed the locked build: %s, then %s", first, again)
	}
	if n := hr.served("/index.yaml"); n != indexReads {
		t.Errorf("the locked build read index.yaml (%d reads, then %d)", indexReads, n)
	}

	// The next lock takes the new version in the range, not the pinned one.
	lockedBytes, err := os.ReadFile(filepath.Join(dir, charts.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	res, err = charts.LockStack(ctx, dir, opts)
	if err != nil {
		t.Fatalf("second lock: %v", err)
	}
	l2 := readLock(t, dir)
	if e := entry(t, l2, "grafana"); e.Version != "12.11.2" {
		t.Errorf("relock: grafana %s, want 12.11.2", e.Version)
	}
	if e := entry(t, l2, "metabase"); e != mb {
		t.Errorf("relock changed the pinned metabase: %+v, was %+v", e, mb)
	}
	for _, c := range res.Changes {
		if c.Previous == nil || c.Removed {
			t.Errorf("relock change %+v: want an update of an existing entry", c)
		}
	}
	relocked, apps2 := mustBuild(t, dir, opts)
	if relocked == first || !strings.HasPrefix(apps2["grafana"], "grafana 12.11.2 ") {
		t.Errorf("build after relock: %s %v", relocked, apps2)
	}
	// Back to the first lock: the first bundle again.
	if err := os.WriteFile(filepath.Join(dir, charts.LockFile), lockedBytes, 0o644); err != nil {
		t.Fatal(err)
	}

	// With both servers gone, the cache is enough, offline or not.
	reg.Stop()
	hr.Stop()
	for _, offline := range []bool{false, true} {
		o := opts
		o.Offline = offline
		if d, _ := mustBuild(t, dir, o); d != first {
			t.Errorf("build with the servers stopped (offline=%v): %s, want %s", offline, d, first)
		}
	}
	// Offline and without a cache, nothing to build from.
	o := opts
	o.Offline, o.CacheDir = true, t.TempDir()
	if _, _, err := build(t, dir, o); !errors.Is(err, charts.ErrOffline) {
		t.Errorf("offline build with an empty cache: got %v, want ErrOffline", err)
	}

	// A changed cache file is an error, and stays as it is: never a
	// silent download (which would fail here anyway).
	cached := charts.NewCache(opts.CacheDir).Path(mb.Digest)
	tampered := append([]byte{}, must(os.ReadFile(cached))...)
	tampered[len(tampered)/2] ^= 0xff
	if err := os.WriteFile(cached, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = build(t, dir, opts)
	if !errors.Is(err, charts.ErrDigestMismatch) {
		t.Fatalf("build with a tampered cache: got %v, want ErrDigestMismatch", err)
	}
	want := regexp.MustCompile(`^stack.cue:8:25: stack.apps.bi.chart: chart metabase 2.26.0: cached chart .*/charts/sha256/[0-9a-f]{64}\.tgz has digest sha256:[0-9a-f]{64}, not ` + mb.Digest + `: the file changed after galley stored it; delete it to fetch the chart again$`)
	if msg := stack.FormatError(err, dir); !want.MatchString(msg) {
		t.Errorf("tampered cache error:\n%s\nwant match for %s", msg, want)
	}
	var me *charts.MismatchError
	if !errors.As(err, &me) || me.Want != mb.Digest || me.Path != cached {
		t.Errorf("tampered cache: %#v", me)
	}
	if fileDigest(t, cached) == mb.Digest {
		t.Error("the tampered cache file was replaced")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
