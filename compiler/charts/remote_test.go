package charts_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/compiler/stack"
	"github.com/galley-dev/galley/internal/testregistry"
)

func oneChart(t *testing.T, chart string) string {
	return writeStack(t, t.TempDir(), "\t\tbi: {namespace: \"bi\", chart: "+chart+"}", map[string]string{})
}

func setChart(t *testing.T, dir, chart string) {
	writeStack(t, dir, "\t\tbi: {namespace: \"bi\", chart: "+chart+"}", map[string]string{})
}

// TestStaleLock: a stack that moved away from its lock fails at the app,
// naming what changed, until it is locked again or built with UpdateLock.
func TestStaleLock(t *testing.T) {
	reg := startRegistry(t)
	reg.push(t, packageChart(t, "metabase", "2.26.0"), nil)
	reg.push(t, packageChart(t, "metabase", "2.26.1"), nil)
	reg.push(t, packageChart(t, "metabase", "2.27.0"), nil)
	opts := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}
	dir := oneChart(t, fmt.Sprintf("{oci: %q, version: \"2.26.0\"}", reg.URL("metabase")))
	if _, err := charts.LockStack(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	mustBuild(t, dir, opts)
	locked, err := os.ReadFile(filepath.Join(dir, charts.LockFile))
	if err != nil {
		t.Fatal(err)
	}

	setChart(t, dir, fmt.Sprintf("{oci: %q, version: \"~2.26.0\"}", reg.URL("metabase")))
	_, _, err = build(t, dir, opts)
	if !errors.Is(err, charts.ErrStale) {
		t.Fatalf("build after a version change: got %v, want ErrStale", err)
	}
	want := regexp.MustCompile("^stack.cue:7:25: stack.apps.bi.chart: chart metabase ~2.26.0 from oci://127.0.0.1:\\d+/charts/metabase: galley.lock has metabase 2.26.0 for version \"2.26.0\", but the stack now asks for \"~2.26.0\"; run `galley lock`$")
	if msg := stack.FormatError(err, dir); !want.MatchString(msg) {
		t.Errorf("stale error:\n%s\nwant match for %s", msg, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, charts.LockFile)); string(b) != string(locked) {
		t.Error("a failed build changed galley.lock")
	}

	// UpdateLock resolves the range and adds its entry.
	o := opts
	o.UpdateLock = true
	_, apps := mustBuild(t, dir, o)
	if !strings.HasPrefix(apps["bi"], "metabase 2.26.1 ") {
		t.Errorf("update-lock build used %s, want metabase 2.26.1", apps["bi"])
	}
	l := readLock(t, dir)
	if len(l.Charts) != 2 || l.Charts[0].Constraint != "2.26.0" || l.Charts[1].Constraint != "~2.26.0" || l.Charts[1].Version != "2.26.1" {
		t.Errorf("lock after update-lock: %+v", l.Charts)
	}
	// galley lock keeps only what the stack names.
	if _, err := charts.LockStack(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	if l := readLock(t, dir); len(l.Charts) != 1 || l.Charts[0].Constraint != "~2.26.0" {
		t.Errorf("lock after galley lock: %+v", l.Charts)
	}

	// A hand-edited lock whose version does not satisfy the range.
	b, err := os.ReadFile(filepath.Join(dir, charts.LockFile))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), `"version": "2.26.1"`, `"version": "2.27.0"`, 1)
	if err := os.WriteFile(filepath.Join(dir, charts.LockFile), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := build(t, dir, opts); !errors.Is(err, charts.ErrStale) || !strings.Contains(err.Error(), `galley.lock pins version 2.27.0, which does not satisfy "~2.26.0"`) {
		t.Errorf("build with a hand-edited lock: %v", err)
	}

	// Another source for the same chart.
	hr := startRepo(t, "", "")
	setChart(t, dir, fmt.Sprintf("{repository: %q, name: \"metabase\", version: \"~2.26.0\"}", hr.URL()))
	if _, _, err := build(t, dir, opts); !errors.Is(err, charts.ErrStale) || !strings.Contains(err.Error(), "galley.lock has metabase from oci://") {
		t.Errorf("build after a source change: %v", err)
	}

	// An unreadable lock is an error that names it.
	if err := os.WriteFile(filepath.Join(dir, charts.LockFile), []byte(`{"lockVersion": 1, "charts": [], "extra": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := build(t, dir, opts); !errors.Is(err, charts.ErrInvalidLock) || !strings.Contains(err.Error(), "galley.lock: invalid lock file: json: unknown field \"extra\"") {
		t.Errorf("build with a broken lock: %v", err)
	}
}

// TestUpstreamChanged: content published again under a locked version is
// refused by the next lock; a locked build is not affected, since it
// fetches by digest.
func TestUpstreamChanged(t *testing.T) {
	reg := startRegistry(t)
	hr := startRepo(t, "", "")
	reg.push(t, packageChart(t, "metabase", "2.26.0"), nil)
	hr.add(t, packageChart(t, "metabase", "2.26.0"), nil, true)
	opts := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}

	ociDir := oneChart(t, fmt.Sprintf("{oci: %q, version: \"2.26.0\"}", reg.URL("metabase")))
	repoDir := oneChart(t, fmt.Sprintf("{repository: %q, name: \"metabase\", version: \"2.26.0\"}", hr.URL()))
	var firsts []string
	for _, dir := range []string{ociDir, repoDir} {
		if _, err := charts.LockStack(ctx, dir, opts); err != nil {
			t.Fatal(err)
		}
		d, _ := mustBuild(t, dir, opts)
		firsts = append(firsts, d)
	}
	if e := entry(t, readLock(t, repoDir), "metabase"); e.URL != hr.URL()+"/metabase-2.26.0.tgz" {
		t.Errorf("absolute index URL: locked %s", e.URL)
	}

	// The same version, packaged again (another archive), pushed over it.
	reg.push(t, packageVariant(t, "metabase", "2.26.0", " (again)"), nil)
	hr.add(t, packageVariant(t, "metabase", "2.26.0", " (again)"), nil, true)
	for _, dir := range []string{ociDir, repoDir} {
		before, _ := os.ReadFile(filepath.Join(dir, charts.LockFile))
		_, err := charts.LockStack(ctx, dir, opts)
		if !errors.Is(err, charts.ErrUpstreamChanged) || !strings.Contains(err.Error(), "version 2.26.0 changed upstream: galley.lock has sha256:") {
			t.Errorf("relock of a changed version: %v", err)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, charts.LockFile)); string(after) != string(before) {
			t.Error("a failed lock changed galley.lock")
		}
	}

	// With an empty cache the OCI build fetches the locked manifest by
	// digest, not the moved tag, and gives the first bundle again.
	o := opts
	o.CacheDir = t.TempDir()
	if d, _ := mustBuild(t, ociDir, o); d != firsts[0] {
		t.Errorf("build from the locked manifest digest: %s, want %s", d, firsts[0])
	}
	// The repository serves other bytes at the locked URL: refused. (A
	// cache of its own: both archives may be byte for byte the same, and
	// the cache is content-addressed.)
	o.CacheDir = t.TempDir()
	if _, _, err := build(t, repoDir, o); !errors.Is(err, charts.ErrDigestMismatch) || !strings.Contains(err.Error(), "the repository now serves other content for a locked version") {
		t.Errorf("build from a changed repository: %v", err)
	}
	if _, ok, _ := charts.NewCache(o.CacheDir).Get(entry(t, readLock(t, repoDir), "metabase").Digest); ok {
		t.Error("the changed archive was cached under the locked digest")
	}

	// An index whose digest does not match the archive is refused.
	idx := filepath.Join(hr.dir, "index.yaml")
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	bad := regexp.MustCompile(`digest: [0-9a-f]{64}`).ReplaceAllString(string(b), "digest: "+strings.Repeat("f", 64))
	if err := os.WriteFile(idx, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(repoDir, charts.LockFile))
	if _, err := charts.LockStack(ctx, repoDir, o); !errors.Is(err, charts.ErrDigestMismatch) || !strings.Contains(err.Error(), "the repository's index.yaml names another archive") {
		t.Errorf("lock with a wrong index digest: %v", err)
	}
}

// TestVendor: vendored charts build with no cache and no network, and are
// checked like cached ones.
func TestVendor(t *testing.T) {
	reg := startRegistry(t)
	hr := startRepo(t, "", "")
	reg.push(t, packageChart(t, "metabase", "2.26.0"), nil)
	hr.add(t, packageChart(t, "grafana", "12.11.1"), nil, false)
	dir := twoCharts(t, reg, hr)
	opts := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}

	if _, err := charts.VendorStack(ctx, dir, opts); !errors.Is(err, charts.ErrNotLocked) {
		t.Errorf("vendor without a lock: %v", err)
	}
	if _, err := charts.LockStack(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	first, _ := mustBuild(t, dir, opts)
	vdir := filepath.Join(dir, "vendor", "charts")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vdir, "old-1.0.0.tgz"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := charts.VendorStack(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Files, ","); got != "grafana-12.11.1.tgz,metabase-2.26.0.tgz" {
		t.Errorf("vendored %s", got)
	}
	if len(res.Written) != 2 || strings.Join(res.Removed, ",") != "old-1.0.0.tgz" {
		t.Errorf("vendor result: %+v", res)
	}
	l := readLock(t, dir)
	for _, e := range l.Charts {
		if d := fileDigest(t, filepath.Join(vdir, charts.VendorFile(e))); d != e.Digest {
			t.Errorf("vendored %s: digest %s, want %s", e.Name, d, e.Digest)
		}
	}
	if res, err := charts.VendorStack(ctx, dir, opts); err != nil || len(res.Written) != 0 {
		t.Errorf("vendor again: %+v %v", res, err)
	}

	// No servers, an empty cache, offline: the vendored charts suffice.
	reg.Stop()
	hr.Stop()
	o := opts
	o.CacheDir, o.Offline = t.TempDir(), true
	if d, _ := mustBuild(t, dir, o); d != first {
		t.Errorf("build from vendored charts: %s, want %s", d, first)
	}
	if _, err := os.Stat(filepath.Join(o.CacheDir, "charts")); !os.IsNotExist(err) {
		t.Errorf("a build from vendored charts wrote the cache: %v", err)
	}

	// A changed vendored chart is an error even though the cache has the
	// right one: vendored copies win, so they must be right.
	p := filepath.Join(vdir, "metabase-2.26.0.tgz")
	if err := os.WriteFile(p, []byte("not a chart"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = build(t, dir, opts)
	if !errors.Is(err, charts.ErrDigestMismatch) || !strings.Contains(err.Error(), "vendored chart "+p+" has digest") || !strings.Contains(err.Error(), "run `galley charts vendor` to copy the locked chart again") {
		t.Errorf("build with a changed vendored chart: %v", err)
	}
	// vendor repairs it from the cache, offline.
	if res, err := charts.VendorStack(ctx, dir, charts.Options{CacheDir: opts.CacheDir, Offline: true}); err != nil || strings.Join(res.Written, ",") != "metabase-2.26.0.tgz" {
		t.Errorf("vendor repair: %+v %v", res, err)
	}
	if d, _ := mustBuild(t, dir, o); d != first {
		t.Errorf("build after vendor repair: %s, want %s", d, first)
	}
}

// TestCosign: an OCI chart signed with the real cosign CLI locks with
// verify: key:, and is refused with another key or no signature.
func TestCosign(t *testing.T) {
	reg := startRegistry(t)
	desc := reg.push(t, packageChart(t, "metabase", "2.26.0"), nil)
	reg.push(t, packageChart(t, "grafana", "12.11.1"), nil)
	keys := t.TempDir()
	priv, pub := cosignKeys(t, keys, "cosign")
	_, otherPub := cosignKeys(t, keys, "other")
	cosignSign(t, priv, reg.Ref("charts/metabase@"+desc.Digest.String()))
	opts := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}

	dir := writeStack(t, t.TempDir(), fmt.Sprintf(`		bi: {namespace: "bi", chart: {oci: %q, version: "2.26.0", verify: key: "keys/cosign.pub"}}`, reg.URL("metabase")),
		map[string]string{"keys/cosign.pub": string(must(os.ReadFile(pub))), "keys/other.pub": string(must(os.ReadFile(otherPub)))})
	if _, err := charts.LockStack(ctx, dir, opts); err != nil {
		t.Fatalf("lock of a signed chart: %v", err)
	}
	e := entry(t, readLock(t, dir), "metabase")
	if !strings.HasPrefix(e.Key, "sha256:") || e.Manifest != desc.Digest.String() {
		t.Errorf("signed entry: %+v", e)
	}
	mustBuild(t, dir, opts)

	// Another key: stale for a build, refused by lock.
	setChart(t, dir, fmt.Sprintf(`{oci: %q, version: "2.26.0", verify: key: "keys/other.pub"}`, reg.URL("metabase")))
	if _, _, err := build(t, dir, opts); !errors.Is(err, charts.ErrStale) || !strings.Contains(err.Error(), "galley.lock locked it verified with cosign key sha256:") {
		t.Errorf("build after a key change: %v", err)
	}
	_, err := charts.LockStack(ctx, dir, opts)
	if !errors.Is(err, charts.ErrNotSigned) || !strings.Contains(err.Error(), "no cosign signature by keys/other.pub verifies") {
		t.Errorf("lock with the wrong key: %v", err)
	}

	// No signature at all.
	setChart(t, dir, fmt.Sprintf(`{oci: %q, version: "12.11.1", verify: key: "keys/cosign.pub"}`, reg.URL("grafana")))
	_, err = charts.LockStack(ctx, dir, opts)
	if !errors.Is(err, charts.ErrNotSigned) || !strings.Contains(err.Error(), "asks for a cosign signature by keys/cosign.pub, but the chart has none") {
		t.Errorf("lock of an unsigned chart: %v", err)
	}
}

// TestProvenance: Helm provenance files, signed as `helm package --sign`
// signs them, checked with verify: keyring:, from a repository and from
// an OCI registry.
func TestProvenance(t *testing.T) {
	reg := startRegistry(t)
	hr := startRepo(t, "", "")
	keys := t.TempDir()
	signer, ring := pgpKeyring(t, keys, "release")
	_, otherRing := pgpKeyring(t, keys, "other")
	tgz := packageChart(t, "metabase", "2.26.0")
	prov := clearSign(t, signer, tgz)
	hr.add(t, tgz, prov, false)
	hr.add(t, packageChart(t, "grafana", "12.11.1"), nil, false)
	reg.push(t, tgz, prov)
	opts := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}
	files := map[string]string{"keys/release.gpg": string(must(os.ReadFile(ring))), "keys/other.gpg": string(must(os.ReadFile(otherRing)))}

	for _, chart := range []string{
		fmt.Sprintf(`{repository: %q, name: "metabase", version: "2.26.0", verify: keyring: "keys/release.gpg"}`, hr.URL()),
		fmt.Sprintf(`{oci: %q, version: "2.26.0", verify: keyring: "keys/release.gpg"}`, reg.URL("metabase")),
	} {
		dir := writeStack(t, t.TempDir(), "\t\tbi: {namespace: \"bi\", chart: "+chart+"}", files)
		if _, err := charts.LockStack(ctx, dir, opts); err != nil {
			t.Fatalf("lock of %s: %v", chart, err)
		}
		e := entry(t, readLock(t, dir), "metabase")
		if !strings.HasPrefix(e.Keyring, "sha256:") {
			t.Errorf("entry of a verified chart: %+v", e)
		}
		if e.Repository != "" && e.Provenance != hr.URL()+"/metabase-2.26.0.tgz.prov" {
			t.Errorf("provenance URL: %s", e.Provenance)
		}
		mustBuild(t, dir, opts)

		setChart(t, dir, strings.Replace(chart, "release.gpg", "other.gpg", 1))
		if _, err := charts.LockStack(ctx, dir, opts); !errors.Is(err, charts.ErrNotSigned) || !strings.Contains(err.Error(), "the provenance file does not verify with keyring keys/other.gpg") {
			t.Errorf("lock with another keyring: %v", err)
		}
	}

	// A chart without a provenance file.
	dir := writeStack(t, t.TempDir(), fmt.Sprintf(`		g: {namespace: "g", chart: {repository: %q, name: "grafana", version: "12.11.1", verify: keyring: "keys/release.gpg"}}`, hr.URL()), files)
	if _, err := charts.LockStack(ctx, dir, opts); !errors.Is(err, charts.ErrNotSigned) || !strings.Contains(err.Error(), "grafana-12.11.1.tgz.prov: not found (HTTP 404)") {
		t.Errorf("lock of a chart without provenance: %v", err)
	}
	// A provenance file for other bytes.
	if err := os.WriteFile(filepath.Join(hr.dir, "metabase-2.26.0.tgz.prov"), clearSign(t, signer, packageVariant(t, "metabase", "2.26.0", " (other)")), 0o644); err != nil {
		t.Fatal(err)
	}
	dir = writeStack(t, t.TempDir(), fmt.Sprintf(`		bi: {namespace: "bi", chart: {repository: %q, name: "metabase", version: "2.26.0", verify: keyring: "keys/release.gpg"}}`, hr.URL()), files)
	if _, err := charts.LockStack(ctx, dir, opts); !errors.Is(err, charts.ErrNotSigned) || !strings.Contains(err.Error(), "sha256 sum does not match") {
		t.Errorf("lock with the provenance of another archive: %v", err)
	}
}

// TestCredentials: private registries and repositories take the
// credentials `bundle push` takes, from the Docker config, by host.
func TestCredentials(t *testing.T) {
	reg := startRegistry(t, testregistry.WithAuth("chart-reader", "registry-secret"))
	hr := startRepo(t, "repo-reader", "repo-secret")
	reg.push(t, packageChart(t, "metabase", "2.26.0"), nil)
	hr.add(t, packageChart(t, "grafana", "12.11.1"), nil, false)
	dir := twoCharts(t, reg, hr)

	anon := charts.Options{CacheDir: t.TempDir(), PlainHTTP: true}
	_, err := charts.LockStack(ctx, dir, anon)
	for _, want := range []string{
		"unauthorized: " + reg.Host() + " wants credentials for oci://" + reg.Host() + "/charts/metabase (HTTP 401); log in with `docker login " + reg.Host() + "`",
		"GET " + hr.URL() + "/index.yaml: unauthorized: " + strings.TrimPrefix(hr.URL(), "http://") + " wants credentials (HTTP 401)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("anonymous lock: %v\nwant %q", err, want)
		}
	}

	auth := func(u, p string) map[string]string {
		return map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(u + ":" + p))}
	}
	config := filepath.Join(t.TempDir(), "config.json")
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{
		reg.Host():                              auth("chart-reader", "registry-secret"),
		strings.TrimPrefix(hr.URL(), "http://"): auth("repo-reader", "repo-secret"),
	}})
	if err := os.WriteFile(config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := credentials.NewStore(config, credentials.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	withCreds := anon
	withCreds.Credential = credentials.Credential(store)
	if _, err := charts.LockStack(ctx, dir, withCreds); err != nil {
		t.Fatalf("lock with credentials: %v", err)
	}
	// A build that must fetch uses them too.
	withCreds.CacheDir = t.TempDir()
	mustBuild(t, dir, withCreds)

	// Wrong passwords: rejected, and never shown.
	b, _ = json.Marshal(map[string]any{"auths": map[string]any{
		reg.Host():                              auth("chart-reader", "wrong-registry-secret"),
		strings.TrimPrefix(hr.URL(), "http://"): auth("repo-reader", "wrong-repo-secret"),
	}})
	if err := os.WriteFile(config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if store, err = credentials.NewStore(config, credentials.StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	wrong := anon
	wrong.Credential = credentials.Credential(store)
	_, err = charts.LockStack(ctx, dir, wrong)
	if err == nil || !strings.Contains(err.Error(), "rejected the credentials from the Docker config (HTTP 401)") || !strings.Contains(err.Error(), "(HTTP 401)") {
		t.Errorf("lock with wrong credentials: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-") {
		t.Errorf("an error shows a password: %v", err)
	}
}
