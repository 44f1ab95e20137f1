package charts_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/galley-dev/galley/compiler/charts"
	"github.com/galley-dev/galley/internal/golden"
)

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	d3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func sampleLock() *charts.Lock {
	// Deliberately out of order: Marshal sorts.
	return &charts.Lock{Charts: []charts.Entry{
		{Name: "metabase", OCI: "oci://registry.example.com/charts/metabase", Constraint: "2.26.0", Key: d3,
			Version: "2.26.0", Manifest: d1, Digest: d2},
		{Name: "airflow", Repository: "https://airflow.apache.org", Constraint: "~1.15.0",
			Version: "1.15.3", URL: "https://airflow.apache.org/airflow-1.15.3.tgz", Digest: d1},
		{Name: "airflow", Repository: "https://airflow.apache.org", Constraint: "1.14.0",
			Version: "1.14.0", URL: "https://airflow.apache.org/airflow-1.14.0.tgz", Digest: d3},
	}}
}

// TestLockFormat pins the lock file's bytes: sorted entries, one field per
// line, the same bytes for the same lock. Run with -update to accept a
// deliberate change.
func TestLockFormat(t *testing.T) {
	got, err := sampleLock().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "galley.lock.golden"), got)
	back, err := charts.ParseLock(got, "galley.lock")
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(got) {
		t.Errorf("parse and marshal changed the lock:\n%s", again)
	}

	// WriteLock and ReadLock round-trip through the file.
	dir := t.TempDir()
	if l, err := charts.ReadLock(dir); l != nil || err != nil {
		t.Errorf("no lock file: got %v, %v", l, err)
	}
	if err := charts.WriteLock(dir, back); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, charts.LockFile)); string(b) != string(got) {
		t.Errorf("WriteLock wrote\n%s", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("WriteLock left %d files behind", len(entries))
	}
}

func TestParseLockErrors(t *testing.T) {
	valid := `{"name": "m", "oci": "oci://r.example/c/m", "constraint": "1.0.0", "version": "1.0.0", "manifest": "` + d1 + `", "digest": "` + d2 + `"}`
	repo := `{"name": "a", "repository": "https://r.example", "constraint": "~1.0.0", "version": "1.0.1", "url": "https://r.example/a-1.0.1.tgz", "digest": "` + d2 + `"}`
	for _, tc := range []struct {
		name, lock, want string
	}{
		{"not json", `lockVersion: 1`, "invalid character"},
		{"unknown field", `{"lockVersion": 1, "charts": [], "pins": []}`, `unknown field "pins"`},
		{"other version", `{"lockVersion": 2, "charts": []}`, "lockVersion 2, this galley reads 1"},
		{"trailing data", `{"lockVersion": 1, "charts": []} {}`, "data after the lock object"},
		{"bad digest", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, d2, "sha256:abc", 1) + `]}`, `charts[0] (m): digest "sha256:abc" is not sha256:<64 hex digits>`},
		{"no manifest", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, `"manifest": "`+d1+`", `, "", 1) + `]}`, `charts[0] (m): manifest "" is not`},
		{"two sources", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, `"name": "m",`, `"name": "m", "repository": "https://x",`, 1) + `]}`, "needs one of oci and repository"},
		{"name not in oci", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, `"name": "m"`, `"name": "n"`, 1) + `]}`, `oci "oci://r.example/c/m" is not oci://<registry>/<repository>/n`},
		{"path in name", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, `"name": "m"`, `"name": "../m"`, 1) + `]}`, `name "../m" is not a chart name`},
		{"bad version", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, `"version": "1.0.0"`, `"version": "latest"`, 1) + `]}`, `version "latest" is not a semantic version`},
		{"bad constraint", `{"lockVersion": 1, "charts": [` + strings.Replace(valid, `"constraint": "1.0.0"`, `"constraint": "~~1"`, 1) + `]}`, `version "~~1" is neither a version nor a range`},
		{"repo url", `{"lockVersion": 1, "charts": [` + strings.Replace(repo, `https://r.example/a-1.0.1.tgz`, `ftp://r.example/a.tgz`, 1) + `]}`, `url "ftp://r.example/a.tgz" is not an http(s) URL`},
		{"duplicate", `{"lockVersion": 1, "charts": [` + repo + `,` + repo + `]}`, "charts[1] (a): same source and constraint as charts[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := charts.ParseLock([]byte(tc.lock), "dir/galley.lock")
			if !errors.Is(err, charts.ErrInvalidLock) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "reading dir/galley.lock: invalid lock file: ") {
				t.Errorf("got %v, want ErrInvalidLock with %q", err, tc.want)
			}
		})
	}
}

// TestFind: what a stack asks for is found only in an entry resolved for
// exactly that, and the error says what differs.
func TestFind(t *testing.T) {
	l := sampleLock()
	airflow := charts.Source{Repository: "https://airflow.apache.org", Name: "airflow", Constraint: "~1.15.0"}
	metabase := charts.Source{OCI: "oci://registry.example.com/charts/metabase", Name: "metabase", Constraint: "2.26.0",
		Key: &charts.Key{Path: "cosign.pub", Fingerprint: d3}}
	for _, tc := range []struct {
		name    string
		src     func() charts.Source
		version string
		kind    error
		want    string
	}{
		{"found", func() charts.Source { return airflow }, "1.15.3", nil, ""},
		{"found with key", func() charts.Source { return metabase }, "2.26.0", nil, ""},
		{"new range", func() charts.Source { s := airflow; s.Constraint = "~1.16.0"; return s }, "", charts.ErrStale,
			`galley.lock has airflow 1.15.3 for version "~1.15.0", but the stack now asks for "~1.16.0"; run ` + "`galley lock`"},
		{"other key", func() charts.Source { s := metabase; s.Key = &charts.Key{Fingerprint: d1}; return s }, "", charts.ErrStale,
			"galley.lock locked it verified with cosign key sha256:333333333333, but the stack now asks for cosign key sha256:111111111111"},
		{"no key", func() charts.Source { s := metabase; s.Key = nil; return s }, "", charts.ErrStale,
			"verified with cosign key sha256:333333333333, but the stack now asks for no cosign key"},
		{"other source", func() charts.Source {
			return charts.Source{OCI: "oci://mirror.example.com/airflow", Name: "airflow", Constraint: "~1.15.0"}
		}, "", charts.ErrStale, "galley.lock has airflow from https://airflow.apache.org, not from oci://mirror.example.com/airflow"},
		{"unknown", func() charts.Source {
			return charts.Source{Repository: "https://x.example", Name: "x", Constraint: "1.0.0"}
		}, "", charts.ErrNotLocked,
			"chart x 1.0.0 from https://x.example is not in galley.lock; run `galley lock`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := l.Find(tc.src())
			if tc.kind == nil {
				if err != nil || e.Version != tc.version {
					t.Fatalf("got %+v, %v", e, err)
				}
				return
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %v with %q", err, tc.kind, tc.want)
			}
		})
	}
	var none *charts.Lock
	if _, err := none.Find(airflow); !errors.Is(err, charts.ErrNotLocked) || !strings.Contains(err.Error(), "there is no galley.lock beside the stack") {
		t.Errorf("no lock: %v", err)
	}
}
